"""galaxy-importer, the code Galaxy and Automation Hub run on an upload, imports the built artifact (`ansible-galaxy
collection build`) with no error and no warning we can fix.

Offline configuration (GALAXY_IMPORTER_CONFIG, written below):
- run_ansible_test=false: the importer would run `ansible-test sanity` in a container image pulled from a registry;
  `make sanity` (tools/ansible-test-sanity) runs the same sanity tests on the tree, without a container.
- run_ansible_lint=false: `make lint` runs ansible-lint with the stricter production profile on the same files; the
  importer's own run repeats it for minutes and hits the importer's time limit on a loaded machine.
- run_flake8=false: ruff (`make lint`) covers it.
- run_ansible_doc=true, check_required_tags=true, check_changelog=true: kept - every plugin's documentation must load
  as Galaxy renders it, galaxy.yml must carry tags, and the changelog must be there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".build" / "galaxy-import"
CONFIG = """\
[galaxy-importer]
run_ansible_test = False
ansible_test_local_image = False
local_image_docker = False
run_ansible_lint = False
offline_ansible_lint = True
run_flake8 = False
run_ansible_doc = True
check_required_tags = True
check_changelog = True
require_v1_or_greater = False
log_level_main = INFO
"""
# Warnings we cannot fix, each with its reason.
ACCEPTED_WARNINGS = {
    # tests/sanity/ignore-2.*.txt: the vendor's own OpenAPI document (tests/fakes/openapi/), kept byte for byte, has
    # typographic quotes; the contract tests validate against it as published.
    "WARNING: Ignore files skip ansible-test sanity tests, found ignore-2.19.txt with 1 statement(s)",
    "WARNING: Ignore files skip ansible-test sanity tests, found ignore-2.21.txt with 1 statement(s)",
}


def test_galaxy_importer_imports_the_built_artifact_without_fixable_warnings(tmp_path):
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    subprocess.run(
        ["ansible-galaxy", "collection", "build", "--force", "--output-path", str(BUILD_DIR), str(ROOT)],
        check=True, capture_output=True, text=True, env=env, timeout=300,
    )
    artifact = BUILD_DIR / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert artifact.is_file()

    config = tmp_path / "galaxy-importer.cfg"
    config.write_text(CONFIG, encoding="utf-8")
    env["GALAXY_IMPORTER_CONFIG"] = str(config)
    result = subprocess.run(
        [sys.executable, "-m", "galaxy_importer.main", str(artifact)],
        check=False, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Importer processing completed successfully" in output, output[-4000:]
    problems = [
        line for line in output.splitlines()
        if line.startswith(("ERROR", "WARNING", "CRITICAL")) and line not in ACCEPTED_WARNINGS
    ]
    assert problems == [], "\n".join(problems)

    # What Galaxy would list: every module and every role of the tree, with its documentation.
    data = json.loads((tmp_path / "importer_result.json").read_text(encoding="utf-8"))
    contents = {(item["content_type"], item["name"]) for item in data["contents"]}
    modules = {p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_")}
    roles = {p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir()}
    assert {("module", m) for m in modules} <= contents, sorted({m for m in modules if ("module", m) not in contents})
    assert {("role", r) for r in roles} <= contents, sorted({r for r in roles if ("role", r) not in contents})
    docs = {(d["content_type"], d["content_name"]): d for d in data["docs_blob"]["contents"]}
    wa_phone = docs[("module", "wa_phone")]["doc_strings"]["doc"]
    assert "phone_id" in {option["name"] for option in wa_phone["options"]}
    assert data["requires_ansible"] == ">=2.19.0"
