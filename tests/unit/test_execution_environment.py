"""The AWX execution environment and the EDA decision environment render, and the collection artifact is clean.

No image is built here (no container registry is reachable, and an image build takes minutes): these tests prove
what `ansible-builder create` renders - the Containerfile and the build context - and what the artifact holds.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.support.services import REPO_ROOT

BIN = Path(sys.executable).parent
TOOLS_ENV = dict(os.environ, PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""))
GALAXY = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
TARBALL = "{0}-{1}-{2}.tar.gz".format(GALAXY["namespace"], GALAXY["name"], GALAXY["version"])

# Files a checkout (or a machine that ran the tests, the stack, the bench) has and the artifact must not carry.
MACHINE_LOCAL = [
    ".venv/bin/python", ".venv-2.19/bin/python", ".stack/redis.pid", ".collections/ansible_collections/x",
    ".build/collection/old.tar.gz", ".cache/x", ".pytest_cache/v/cache/lastfailed", "tests/.pytest_cache/x",
    ".ruff_cache/x", "reports/bench.json", "reports/check_morning-2027-03-28.json", "bench/results/run.json",
    "bench/bench.json", "tests/node/node_modules/bullmq/package.json", "node_modules/x/index.js",
    "plugins/modules/__pycache__/wa_phone.cpython-312.pyc", "tests/output/junit.xml", ".molecule-logs/x.log",
    ".ansible/tmp/x", "cerniq-outreach-0.0.9.tar.gz", ".env", "stack.log",
]
MUST_HAVE = ["MANIFEST.json", "FILES.json", "meta/runtime.yml", "plugins/modules/wa_phone.py",
             "plugins/module_utils/_contract.py", "roles/check_morning/tasks/main.yml",
             "roles/check_morning/meta/argument_specs.yml", "playbooks/check_morning.yml",
             "playbooks/stack_health.yml", "extensions/eda/rulebooks/cerniq_alerts.yml",
             "extensions/eda/plugins/event_source/alertmanager.py", "requirements.txt", "bindep.txt",
             "meta/execution-environment.yml"]


def _run(cmd, cwd=REPO_ROOT):
    proc = subprocess.run(cmd, cwd=cwd, env=TOOLS_ENV, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, "{0} failed:\n{1}\n{2}".format(cmd, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def _members(path):
    with tarfile.open(path) as tar:
        return [m.name for m in tar.getmembers()]


def test_artifact_keeps_machine_local_files_out(tmp_path):
    # A copy of the tracked files plus the machine-local files a used checkout has, built as `make` would.
    tree = tmp_path / "checkout"
    tracked = _run(["git", "ls-files", "-z"]).stdout.split("\0")
    for name in filter(None, tracked):
        source = REPO_ROOT / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    for name in MACHINE_LOCAL:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("machine-local\n")
    out = tmp_path / "out"
    _run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(tree)])
    members = _members(out / TARBALL)
    for name in MACHINE_LOCAL:
        top = name.split("/", maxsplit=1)[0]
        assert name not in members, name
        if top.startswith(".") or top in ("reports", "node_modules"):
            assert top not in members and not any(m.startswith(top + "/") for m in members), top
    assert not [m for m in members if "__pycache__" in m or m.endswith(".pyc") or "node_modules" in m]
    assert not [m for m in members if m.startswith("bench/results") or m.endswith(".tar.gz")]
    for name in MUST_HAVE:
        assert name in members, name
    # Every playbook and every role's tasks ship.
    for name in tracked:
        if name.startswith("playbooks/") or (name.startswith("roles/") and name.endswith("/tasks/main.yml")):
            assert name in members, name


def test_artifact_of_the_checkout_lists_like_its_git_files(tmp_path):
    """The artifact built from this very checkout (whatever .venv, .stack, reports it has) holds git's files only."""
    _run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), "."])
    listing = subprocess.run(["tar", "tzf", str(tmp_path / TARBALL)], capture_output=True, text=True, check=True,
                             timeout=60).stdout.split()
    files = {m for m in listing if not m.endswith("/")} - {"MANIFEST.json", "FILES.json"}
    # What git tracks or would track (other helpers' new files): every file git ignores (.gitignore names the
    # machine-local ones) stays out.
    listed = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard"]).stdout
    known = set(filter(None, listed.split("\n")))
    extra = sorted(files - known)
    assert not extra, extra[:20]
    for name in ("meta/runtime.yml", "plugins/modules/wa_phone.py", "roles/platform/defaults/main.yml",
                 "playbooks/check_morning.yml"):
        assert name in files


def _final_stage(containerfile):
    text = containerfile.read_text()
    assert "FROM base AS final" in text
    return text, text.split("FROM base AS final", 1)[1]


def _base_image(definition):
    data = yaml.safe_load((REPO_ROOT / definition).read_text())
    image = data["images"]["base_image"]["name"]
    assert not image.endswith(":latest") and (re.search(r":[\w][\w.-]*$", image) or "@sha256:" in image), image
    return image


def test_ansible_runner_is_pinned_to_one_version_in_both_environments():
    """Supply chain (issue 11): ansible-runner is `==` one release in the EE and the DE, the same one, as
    docs/security.md says; a range, `>=` or a bare name would let a rebuild pick up another release."""
    pins = {}
    for definition in ("execution-environment.yml", "decision-environment.yml"):
        data = yaml.safe_load((REPO_ROOT / definition).read_text())
        spec = data["dependencies"]["ansible_runner"]["package_pip"]
        pinned = re.fullmatch(r"ansible-runner==(\d+\.\d+\.\d+)", spec)
        assert pinned, "{0}: ansible-runner must be pinned with ==X.Y.Z, got {1!r}".format(definition, spec)
        pins[definition] = pinned.group(1)
    assert len(set(pins.values())) == 1, pins
    assert "ansible-runner to `{0}`".format(pins["execution-environment.yml"]) in \
        (REPO_ROOT / "docs" / "security.md").read_text()


@pytest.fixture(scope="module")
def contexts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ee")
    _run(["tools/build-ee-context", "ee", str(root / "ee")])
    _run(["tools/build-ee-context", "de", str(root / "de")])
    return root


def test_execution_environment_renders_with_the_artifact_lock_and_bindep(contexts):
    context = contexts / "ee"
    text, final = _final_stage(context / "Containerfile")
    assert 'ARG EE_BASE_IMAGE="{0}"'.format(_base_image("execution-environment.yml")) in text
    # The artifact, byte-identical to a fresh `ansible-galaxy collection build`'s listing, is in the context...
    artifact = context / "_build" / "cerniq" / TARBALL
    members = _members(artifact)
    for name in MUST_HAVE:
        assert name in members, name
    assert not [m for m in members if m.startswith((".venv", ".stack", ".git/", "reports/", ".collections"))]
    assert list((context / "_build" / "cerniq").glob("*.tar.gz")) == [artifact]
    # ... and the final stage copies it in and installs it (not the checkout).
    copy_at = final.index("COPY _build/cerniq/ /tmp/cerniq/")
    install = re.search(r"RUN ansible-galaxy collection install --offline --collections-path "
                        r"/usr/share/ansible/collections /tmp/cerniq/cerniq-outreach-\*\.tar\.gz", final)
    assert install and install.start() > copy_at
    assert "/build/collection" not in text and "COPY . " not in text
    # The runtime Python requirements: requirements.lock byte for byte, installed hash-checked.
    assert (context / "_build" / "cerniq" / "requirements.lock").read_bytes() == \
        (REPO_ROOT / "requirements.lock").read_bytes()
    pip = final.index("pip install --no-cache-dir --require-hashes -r /tmp/cerniq/requirements.lock")
    assert copy_at < pip < install.start()
    lock = (REPO_ROOT / "requirements.lock").read_text()
    for name in ("redis", "psycopg2-binary", "requests", "bullmq", "hiredis"):
        entry = re.search(r"^{0}==\S+ \\\n\s+--hash=sha256:[0-9a-f]{{64}}".format(re.escape(name)), lock, re.M)
        assert entry, name
    # The system packages: bindep.txt, PostgreSQL's client of the major the base stage enables.
    bindep = (context / "_build" / "bindep.txt").read_text()
    assert bindep == (REPO_ROOT / "bindep.txt").read_text()
    packages = [line.split()[0] for line in bindep.splitlines() if line.strip() and not line.startswith("#")]
    assert packages == ["postgresql", "postgresql-client"]
    assert re.search(r"^ARG CERNIQ_PG_MAJOR=1[4-9]$", text, re.M)
    assert "module enable postgresql:${CERNIQ_PG_MAJOR}" in text.split("FROM base AS builder")[0]
    assert "COPY _build/bindep.txt bindep.txt" in text and "RUN /output/scripts/install-from-bindep" in final
    assert "pg_restore --version" in final and "ansible-doc -t module cerniq.outreach." in final


def test_decision_environment_renders_with_rulebook_source_and_java(contexts):
    context = contexts / "de"
    text, final = _final_stage(context / "Containerfile")
    assert 'ARG EE_BASE_IMAGE="{0}"'.format(_base_image("decision-environment.yml")) in text
    members = _members(context / "_build" / "cerniq" / TARBALL)
    assert "extensions/eda/rulebooks/cerniq_alerts.yml" in members
    assert "extensions/eda/plugins/event_source/alertmanager.py" in members
    # The event source's dependencies, through ansible-builder's own Python requirements step.
    assert (context / "_build" / "requirements.txt").read_text() == \
        (REPO_ROOT / "extensions" / "eda" / "requirements.txt").read_text()
    assert "COPY _build/requirements.txt requirements.txt" in text
    assert "java-17-openjdk-headless [platform:rpm]" in (context / "_build" / "bindep.txt").read_text()
    assert "ENV JAVA_HOME=" in final
    assert re.search(r"pip install --no-cache-dir 'ansible-rulebook>=1\.\d+,<2'", final)
    copy_at = final.index("COPY _build/cerniq/ /tmp/cerniq/")
    assert final.index("ansible-galaxy collection install --offline") > copy_at
    assert "ansible-rulebook --version" in final
