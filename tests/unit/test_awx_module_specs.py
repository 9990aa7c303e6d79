"""controller/ against the argument specs of awx.awx's own modules (what infra.aap_configuration hands each item to).

PyPI's `ansible` package ships neither awx.awx nor infra.aap_configuration, so this runs only where awx.awx is
installed: on ANSIBLE_COLLECTIONS_PATH, or in the directory CERNIQ_AWX_COLLECTIONS names (e.g. after
`ansible-galaxy collection install awx.awx -p /tmp/awx`). `ansible-doc --json` gives each module's options.
"""

import json
import os
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


def _collections_path():
    paths = [p for p in os.environ.get("CERNIQ_AWX_COLLECTIONS", "").split(os.pathsep) if p]
    paths += [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    paths += [str(Path.home() / ".ansible" / "collections"), "/usr/share/ansible/collections"]
    found = [p for p in paths if (Path(p) / "ansible_collections" / "awx" / "awx" / "plugins" / "modules").is_dir()]
    return found[0] if found else None


AWX = _collections_path()
pytestmark = pytest.mark.skipif(AWX is None, reason="awx.awx is not installed (PyPI's ansible package does not ship "
                                                    "it); set CERNIQ_AWX_COLLECTIONS to a collections path with it")


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


@pytest.mark.parametrize("file_name, variable, module", OBJECTS, ids=[o[1] for o in OBJECTS])
def test_definitions_fit_the_awx_modules_argument_specs(docs, file_name, variable, module):
    items = yaml.load((REPO_ROOT / "controller" / file_name).read_text(), Loader=_Loader)[variable]
    errors = []
    for item in items:
        _check_keys(item, docs[module], "{0} {1}".format(variable, item["name"]), errors)
    assert not errors, "\n".join(errors)
