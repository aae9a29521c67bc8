#!/usr/bin/env bash
# Run the whole study: every notebook in notebooks/ (jupytext sources), in order, with papermill.
#   ./run_all.sh                 # the default 'quick' profile on the shipped LFW sample -> figures/quick/
#   ./run_all.sh --help          # every option (lib/facexai/cli.py parses and checks them)
# This wrapper only makes sure the pinned environment exists (tools/bootstrap.sh) and hands the
# arguments, unchanged, to the command line in facexai.cli. It does not change directory: relative
# paths in the arguments are relative to where you call it from.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$root/tools/bootstrap.sh")"
# -P: do not put the caller's directory on sys.path (a stray numpy.py there must not shadow a package)
exec "$py" -P -m facexai.cli "$@"
