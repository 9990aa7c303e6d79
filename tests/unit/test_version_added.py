"""version_added of every module, plugin and role, against changelogs/changelog.yaml and galaxy.yml: what a release
announced carries that release's version, and what no release announced yet carries a version after the last one
and no later than galaxy.yml's, so `antsibull-changelog release` announces it (it lists a plugin or role whose
version_added lies in (previous release, this release])."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from ansible.module_utils.compat.version import LooseVersion

REPO = Path(__file__).resolve().parents[2]


def _documentation(path):
    """The DOCUMENTATION string of a plugin's Python file, as YAML."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(node.value.value)
    raise AssertionError("{0} has no DOCUMENTATION".format(path))


def version_added():
    """{(kind, name): version_added} of the modules, filters, lookups and roles."""
    found = {}
    for path in sorted((REPO / "plugins" / "modules").glob("*.py")):
        found[("module", path.stem)] = _documentation(path).get("version_added")
    for path in sorted((REPO / "plugins" / "lookup").glob("*.py")):
        found[("lookup", path.stem)] = _documentation(path).get("version_added")
    for path in sorted((REPO / "plugins" / "filter").glob("*.yml")):
        found[("filter", path.stem)] = yaml.safe_load(path.read_text())["DOCUMENTATION"].get("version_added")
    for path in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        main = yaml.safe_load(path.read_text())["argument_specs"]["main"]
        found[("role", path.parts[-3])] = main.get("version_added")
    return found


def announced():
    """{(kind, name): release} of what changelogs/changelog.yaml announced."""
    releases = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())["releases"]
    out = {}
    for release, data in releases.items():
        for module in data.get("modules", []):
            out[("module", module["name"])] = release
        for kind, plugins in data.get("plugins", {}).items():
            for plugin in plugins:
                out[(kind, plugin["name"])] = release
        for kind, objects in data.get("objects", {}).items():
            for item in objects:
                out[(kind, item["name"])] = release
    return out, max(releases, key=LooseVersion)


def test_what_a_release_announced_carries_its_version_and_what_is_new_the_next_one():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    releases, last = announced()
    assert LooseVersion(galaxy) > LooseVersion(last), "galaxy.yml still names the released {0}".format(last)
    wrong = []
    for item, added in version_added().items():
        if item in releases:
            if str(added) != releases[item]:
                wrong.append("{0} {1}: version_added {2}, announced in {3}".format(*item, added, releases[item]))
        elif added is None or not LooseVersion(last) < LooseVersion(str(added)) <= LooseVersion(galaxy):
            wrong.append("{0} {1}: version_added {2}, not after {3} and up to {4} (galaxy.yml): "
                         "antsibull-changelog would not announce it".format(*item, added, last, galaxy))
    assert wrong == [], "\n".join(wrong)
