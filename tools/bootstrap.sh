#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install the pinned requirements.
# Usage: source-free; prints the venv's python path on its last line.
#   tools/bootstrap.sh [--test]     (--test adds the test-only oracles)
# Re-installs only when a requirements file changed (a hash stamp lives in the venv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FACEXAI_VENV:-$root/.venv}"
python_bin="${PYTHON:-python3}"
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

if [[ ! -x "$venv/bin/python" ]]; then
  echo "[bootstrap] creating virtual environment in $venv" >&2
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
req="$root/requirements"
files=("$req/base.txt" "$req/nodeps.txt" "$req/constraints.txt" "$root/pyproject.toml")
(( want_test )) && files+=("$req/test.txt" "$req/test-nodeps.txt")
stamp="$venv/.facexai-stamp$([[ $want_test == 1 ]] && echo -test)"
hash="$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
  echo "[bootstrap] environment up to date ($venv)" >&2
  echo "$py"; exit 0
fi
pip_install() { "$py" -m pip install --disable-pip-version-check -q "$@" >&2; }
echo "[bootstrap] installing pinned requirements into $venv (first run: a few minutes)" >&2
# torch first, alone: on a CPU-only machine with a local CPU wheel in pip's find-links this takes it,
# elsewhere it takes the registry's build of the same version.
pip_install -c "$req/constraints.txt" "torch==2.13.0"
pip_install -c "$req/constraints.txt" -r "$req/base.txt"
pip_install --no-deps -r "$req/nodeps.txt"
if (( want_test )); then
  pip_install -c "$req/constraints.txt" -r "$req/test.txt"
  pip_install --no-deps -r "$req/test-nodeps.txt"
fi
pip_install --no-deps -e "$root"
"$py" -m ipykernel install --sys-prefix --name facexai --display-name "facexai (venv)" >&2
echo "$hash" > "$stamp"
echo "[bootstrap] done" >&2
echo "$py"
