# Sourced by tools/ansible-test-sanity and tools/ansible-test-units: the setup both share.
#
#   ansible_test_prepare NAME    copies the collection to ${XDG_CACHE_HOME:-~/.cache}/cerniq-outreach-NAME (or
#                                $ANSIBLE_TEST_BUILD_DIR) as ansible_collections/cerniq/outreach, cds into the copy,
#                                puts the venv first on PATH and runs everything after under a private HOME.
#
# ansible-test only runs on a collection at .../ansible_collections/<namespace>/<name>, and lists the files to test with
# git; the checkout is neither, so it works on a copy of exactly what git would ship (tracked files plus new ones not
# ignored). The copy is outside the checkout, so ansible-test's virtual environments (in tests/output) outlive a clone.
#
# ansible-test bootstraps pip into its virtual environments with a get-pip.py it downloads from a host that is not
# reachable here. It looks in its cache first, so we put a stand-in there: it installs pip from the interpreter's
# own bundled wheel (ensurepip) and then runs the requested pip command against PyPI. That cache is under ~, so
# ansible-test runs with a private HOME (beside its build copy): the user's own ~/.ansible/test/cache (used by every
# other ansible-test run) is never written.

ansible_test_prepare() {
  local name=$1 checkout pip_version cache dest conf
  checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv_bin="$checkout/${VENV:-.venv}/bin"
  python="$venv_bin/python"
  py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  build_root="${ANSIBLE_TEST_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cerniq-outreach-$name}"
  private_home="$build_root/home"

  pip_version=$("$python" - <<'PY'
import re, ansible_test, pathlib
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
PY
  )
  cache="$private_home/.ansible/test/cache/get_pip_${pip_version//./_}.py"
  mkdir -p "$(dirname "$cache")"
  cat > "$cache" <<'PY'
"""Stand-in for get-pip.py, written by cerniq.outreach's tools/ansible-test-common.sh: pip from ensurepip, then pip."""
import ensurepip
import os
import subprocess
import sys

# get-pip.py takes what to install plus its own --no-setuptools/--no-wheel; pip install takes the rest.
ensurepip.bootstrap()
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
# The bundled pip ignores the machine's configured CA bundle; the pip it installs reads it again.
bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
if os.path.exists(bundle):
    args = ["--cert", bundle] + args
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PY

  dest="$build_root/ansible_collections/cerniq/outreach"
  # Keep tests/output between runs: ansible-test caches its virtual environments there.
  if [ -d "$dest" ]; then
    find "$dest" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
    find "$dest/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
  fi
  mkdir -p "$dest"
  # (A tracked file deleted in the work tree is not shipped either.)
  (cd "$checkout" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' file; do
    if [ -e "$file" ] || [ -L "$file" ]; then printf '%s\0' "$file"; fi
  done | tar --null -T - -cf -) | tar -xf - -C "$dest"
  cd "$dest"
  rm -rf .git && git init -q && git add -A
  export PATH="$venv_bin:$PATH"
  # The user's pip settings (indexes, certificates) still apply under the private HOME.
  for conf in "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" "$HOME/.pip/pip.conf"; do
    if [ -z "${PIP_CONFIG_FILE:-}" ] && [ -f "$conf" ]; then export PIP_CONFIG_FILE="$conf"; fi
  done
  export HOME="$private_home"
}
