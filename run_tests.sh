#!/usr/bin/env bash
# Run the test suite in the project's own environment (created or reused by tools/bootstrap.sh).
#   ./run_tests.sh            # everything, including the smoke run of all notebooks
#   ./run_tests.sh -k data    # any pytest arguments
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$root/tools/bootstrap.sh" --test)"
cd "$root"
exec "$py" -m pytest "$@"
