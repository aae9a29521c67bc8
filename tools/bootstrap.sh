#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install the pinned requirements.
# Usage: source-free; prints the venv's python path on its last line.
#   tools/bootstrap.sh [--test]     (--test adds the test-only oracles)
# Re-installs only when a requirements file changed (a hash stamp lives in the venv).
# Supported Python: 3.11 only (the pins in requirements/ are made and tested with it; the Dockerfile and
# environment.yml use the same). Without $PYTHON it takes python3.11, else python3, and checks the version.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FACEXAI_VENV:-$root/.venv}"
supported="3.11"
python_bin="${PYTHON:-$(command -v "python$supported" || command -v python3 || echo python3)}"
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "none"; }
if [[ ! -x "$venv/bin/python" ]]; then
  found="$(version_of "$python_bin")"
  if [[ "$found" != "$supported" ]]; then
    echo "[bootstrap] this study needs Python $supported (its pinned requirements are tested with it);" \
         "'$python_bin' is ${found/none/not a working Python}. Install Python $supported and rerun, or name one:" \
         "PYTHON=/path/to/python$supported $0" >&2
    exit 1
  fi
  echo "[bootstrap] creating virtual environment in $venv (Python $found)" >&2
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
found="$(version_of "$py")"
if [[ "$found" != "$supported" ]]; then
  echo "[bootstrap] the environment $venv runs Python $found, but this study needs Python $supported:" \
       "remove that folder (or set FACEXAI_VENV to another) and rerun" >&2
  exit 1
fi
req="$root/requirements"
pip_install() { "$py" -m pip install --disable-pip-version-check -q "$@" >&2; }
stamp_ok() { [[ -f "$venv/.facexai-$1" && "$(cat "$venv/.facexai-$1")" == "$2" ]]; }
base_hash="$(cat "$req/base.txt" "$req/nodeps.txt" "$req/constraints.txt" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
test_hash="$(cat "$req/test.txt" "$req/test-nodeps.txt" | sha256sum | cut -d' ' -f1)"

if ! stamp_ok base "$base_hash"; then
  echo "[bootstrap] installing pinned requirements into $venv (first run: a few minutes)" >&2
  # torch first, alone: with a local CPU wheel in pip's find-links this takes it,
  # elsewhere the registry's build of the same version.
  pip_install -c "$req/constraints.txt" "torch==2.13.0"
  pip_install -c "$req/constraints.txt" -r "$req/base.txt"
  pip_install --no-deps -r "$req/nodeps.txt"
  pip_install --no-deps -e "$root"
  "$py" -m ipykernel install --sys-prefix --name facexai --display-name "facexai (venv)" >&2
  echo "$base_hash" > "$venv/.facexai-base"
fi
if (( want_test )) && ! stamp_ok test "$test_hash"; then
  echo "[bootstrap] installing test-only requirements" >&2
  pip_install -c "$req/constraints.txt" -r "$req/test.txt"
  pip_install --no-deps -r "$req/test-nodeps.txt"
  echo "$test_hash" > "$venv/.facexai-test"
fi
echo "[bootstrap] environment ready ($venv)" >&2
echo "$py"
