"""controller/ against what loads it: the argument specs of awx.awx's own modules (what infra.aap_configuration hands
each item to) and infra.aap_configuration's roles (which variable each role reads, which keys of an item it passes on).

PyPI's `ansible` package ships neither awx.awx nor infra.aap_configuration, so these run only where they are found:

- awx.awx: on ANSIBLE_COLLECTIONS_PATH, ~/.ansible/collections, or in the collections path CERNIQ_AWX_COLLECTIONS
  names - `ansible-galaxy collection install awx.awx -p DIR`, or github.com/ansible/awx's awx_collection/ copied to
  DIR/ansible_collections/awx/awx. `ansible-doc --json` gives each module's options.
- infra.aap_configuration: likewise, CERNIQ_AAP_CONFIGURATION_COLLECTIONS - `ansible-galaxy collection install
  infra.aap_configuration -p DIR`, or github.com/redhat-cop/infra.aap_configuration copied to
  DIR/ansible_collections/infra/aap_configuration. Its dispatch role's defaults and its roles' tasks are read as text.

  CERNIQ_AWX_COLLECTIONS=DIR CERNIQ_AAP_CONFIGURATION_COLLECTIONS=DIR \\
    .venv/bin/pytest tests/unit/test_awx_module_specs.py
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.services import REPO_ROOT

BIN = Path(sys.executable).parent

# controller/ file, variable -> the awx.awx module its infra.aap_configuration role calls
OBJECTS = [
    ("organizations.yml", "aap_organizations", "organization"),
    ("credential_types.yml", "controller_credential_types", "credential_type"),
    ("credentials.yml", "controller_credentials", "credential"),
    ("execution_environments.yml", "controller_execution_environments", "execution_environment"),
    ("notifications.yml", "controller_notifications", "notification_template"),
    ("projects.yml", "controller_projects", "project"),
    ("inventories.yml", "controller_inventories", "inventory"),
    ("inventories.yml", "controller_hosts", "host"),
    ("inventories.yml", "controller_groups", "group"),
    ("job_templates.yml", "controller_templates", "job_template"),
    ("workflows.yml", "controller_workflows", "workflow_job_template"),
    ("schedules.yml", "controller_schedules", "schedule"),
]


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _collections_path(variable, collection, marker):
    """The first collections path holding ansible_collections/<collection>/<marker>: `variable`'s, then Ansible's."""
    paths = [p for p in os.environ.get(variable, "").split(os.pathsep) if p]
    paths += [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    paths += [str(Path.home() / ".ansible" / "collections"), "/usr/share/ansible/collections"]
    found = [p for p in paths if (Path(p) / "ansible_collections" / collection / marker).is_dir()]
    return found[0] if found else None


HOW = ("PyPI's ansible package does not ship it; run `ansible-galaxy collection install {0} -p DIR` (or copy {1} to "
       "DIR/ansible_collections/{2}), then `{3}=DIR .venv/bin/pytest tests/unit/test_awx_module_specs.py`")
AWX = _collections_path("CERNIQ_AWX_COLLECTIONS", "awx/awx", "plugins/modules")
needs_awx = pytest.mark.skipif(AWX is None, reason="awx.awx is not installed: " + HOW.format(
    "awx.awx", "github.com/ansible/awx's awx_collection/", "awx/awx", "CERNIQ_AWX_COLLECTIONS"))
AAP = _collections_path("CERNIQ_AAP_CONFIGURATION_COLLECTIONS", "infra/aap_configuration", "roles/dispatch")
needs_aap = pytest.mark.skipif(AAP is None, reason="infra.aap_configuration is not installed: " + HOW.format(
    "infra.aap_configuration", "github.com/redhat-cop/infra.aap_configuration", "infra/aap_configuration",
    "CERNIQ_AAP_CONFIGURATION_COLLECTIONS"))


@pytest.fixture(scope="module")
def docs():
    modules = sorted({"awx.awx." + module for _file, _var, module in OBJECTS})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=AWX)
    proc = subprocess.run([str(BIN / "ansible-doc"), "--json", *modules], capture_output=True, text=True, env=env,
                          timeout=300, check=True)
    return {name.split(".")[-1]: doc["doc"]["options"] for name, doc in json.loads(proc.stdout).items()}


TYPES = {"str": str, "bool": bool, "int": int, "dict": dict, "list": list, "raw": object, "json": (dict, list, str),
         "path": str, "float": (int, float)}


def _check(value, option, where, errors):
    kind = option.get("type", "str")
    templated = isinstance(value, str) and "{{" in value  # the configuring play's variable (a secret, a host)
    if (not templated and not isinstance(value, TYPES[kind])) or (kind == "int" and isinstance(value, bool)):
        errors.append("{0}: {1!r} is not {2}".format(where, value, kind))
        return
    if option.get("choices") and not templated:
        values = value if isinstance(value, list) else [value]
        for item in values:
            if str(item) not in [str(c) for c in option["choices"]]:
                errors.append("{0}: {1!r} not in {2}".format(where, item, option["choices"]))
    suboptions = option.get("suboptions")
    if suboptions and not templated:
        items = value if kind == "list" else [value]
        for index, item in enumerate(items):
            _check_keys(item, suboptions, "{0}[{1}]".format(where, index), errors)


def _check_keys(item, options, where, errors):
    names = {}
    for name, option in options.items():
        for alias in [name] + list(option.get("aliases") or []):
            names[alias] = option
    for key, value in item.items():
        if key not in names:
            errors.append("{0}: no option {1!r}".format(where, key))
        else:
            _check(value, names[key], "{0}.{1}".format(where, key), errors)
    for name, option in options.items():
        if option.get("required") and name not in item:
            errors.append("{0}: required option {1!r} missing".format(where, name))


@needs_awx
@pytest.mark.parametrize("file_name, variable, module", OBJECTS, ids=[o[1] for o in OBJECTS])
def test_definitions_fit_the_awx_modules_argument_specs(docs, file_name, variable, module):
    items = yaml.load((REPO_ROOT / "controller" / file_name).read_text(), Loader=_Loader)[variable]
    errors = []
    for item in items:
        _check_keys(item, docs[module], "{0} {1}".format(variable, item["name"]), errors)
    assert not errors, "\n".join(errors)


# --- infra.aap_configuration: what its dispatch role loads and what each role passes on ----------------------------


def _dispatched():
    """{variable: [role, ...]} as controller/configure.yml has the dispatch role run them: the collection's
    controller list, plus what configure.yml adds to it (the inventory groups, absent from 3.0.0's list)."""
    collection = Path(AAP) / "ansible_collections" / "infra" / "aap_configuration"
    defaults = yaml.safe_load((collection / "roles" / "dispatch" / "defaults" / "main.yml").read_text())
    play_vars = yaml.load((REPO_ROOT / "controller" / "configure.yml").read_text(), Loader=_Loader)[0]["vars"]
    entries = list(defaults["controller_configuration_dispatcher_roles"])
    if not any(e["var"] == "controller_groups" for e in entries):
        entries.append(play_vars["cerniq_host_groups_dispatch"])
    roles = {}
    for entry in entries:
        roles.setdefault(entry["var"], []).append(entry["role"])
    return roles


def _keys_read(role):
    """The keys of a loop item a role's tasks read (`__<anything>_item.<key>`), found in its tasks' text."""
    tasks = Path(AAP) / "ansible_collections/infra/aap_configuration/roles" / role / "tasks"
    assert tasks.is_dir(), "the dispatch role names {0}, which the collection lacks".format(role)
    text = "".join(path.read_text() for path in sorted(tasks.glob("*.yml")))
    return set(re.findall(r"__\w+_item\.(\w+)", text))


CONTROLLER_VARIABLES = sorted({(file_name, variable) for file_name, variable, _module in OBJECTS})


@needs_aap
def test_every_controller_variable_is_one_the_dispatch_role_loads():
    on_disk = set()
    for path in sorted((REPO_ROOT / "controller").glob("*.yml")):
        if path.name not in ("configure.yml", "requirements.yml"):
            on_disk |= {(path.name, variable) for variable in yaml.load(path.read_text(), Loader=_Loader)}
    assert on_disk == set(CONTROLLER_VARIABLES)
    dispatched = _dispatched()
    assert [v for _f, v in CONTROLLER_VARIABLES if v not in dispatched] == []


@needs_aap
@pytest.mark.parametrize("file_name, variable", CONTROLLER_VARIABLES, ids=[v for _f, v in CONTROLLER_VARIABLES])
def test_every_key_of_an_item_is_one_its_role_passes_on(file_name, variable):
    items = yaml.load((REPO_ROOT / "controller" / file_name).read_text(), Loader=_Loader)[variable]
    for role in _dispatched()[variable]:
        read = _keys_read(role)
        ignored = {item["name"]: sorted(set(item) - read) for item in items if set(item) - read}
        assert not ignored, "{0} ignores these keys of {1}: {2}".format(role, variable, ignored)
