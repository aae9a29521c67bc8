#!/usr/bin/env bash
# Run the whole study: every notebook in notebooks/ (jupytext .py sources), in order, with Papermill.
#
#   ./run_all.sh                       # the default 'quick' profile on the shipped LFW sample
#   ./run_all.sh --profile paper --data-root /path/to/lfw-deepfunneled --pairs /path/to/pairs.txt
#
# Options (all optional; empty means "the profile's value", see lib/facexai/profiles.toml):
#   --profile smoke|quick|paper   --data-root DIR   --pairs FILE   --models A,B,...
#   --device cpu|cuda             --cache-dir DIR   --seed N       --run-name NAME
#   --only 00,01,...  (run a subset, by number prefix)     --out DIR (executed notebooks)
# Executed notebooks go to outputs/<run-name>/notebooks/, figures and tables to figures/<run-name>/.
# Stops at the first failing notebook, naming it and printing its error.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
profile=quick data_root="" pairs="" models="" device="cpu" cache_dir="" seed=0 run_name="" only="" out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --data-root) data_root="$2"; shift 2 ;;
    --pairs) pairs="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --cache-dir) cache_dir="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --run-name) run_name="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
run_name="${run_name:-$profile}"
out="${out:-$root/outputs/$run_name/notebooks}"
py="$("$root/tools/bootstrap.sh")"
bin="$(dirname "$py")"
"$py" -c "from facexai import profiles; print(profiles.announce('$profile', '$models'))" || exit 2
mkdir -p "$out"

notebooks=()
for src in "$root"/notebooks/[0-9][0-9]_*.py; do
  stem="$(basename "$src" .py)"
  if [[ -n "$only" && ",$only," != *",${stem:0:2},"* ]]; then continue; fi
  notebooks+=("$src")
done
[[ ${#notebooks[@]} -gt 0 ]] || { echo "run_all.sh: no notebook matches --only '$only'" >&2; exit 2; }

i=0
for src in "${notebooks[@]}"; do
  i=$((i + 1)); stem="$(basename "$src" .py)"
  start=$SECONDS
  echo "[run_all] ($i/${#notebooks[@]}) $stem ... (progress: tail -f $out/$stem.log)"
  "$bin/jupytext" --quiet --to ipynb --output "$out/$stem.input.ipynb" "$src"
  if ! "$bin/papermill" --no-progress-bar --log-output --kernel facexai --cwd "$root/notebooks" \
      -p profile "$profile" -p data_root "$data_root" -p pairs "$pairs" -p models "$models" \
      -p device "$device" -p cache_root "$cache_dir" -p seed "$seed" -p run_name "$run_name" \
      "$out/$stem.input.ipynb" "$out/$stem.ipynb" 2> "$out/$stem.log"; then
    echo "[run_all] FAILED in notebook $stem (executed copy: $out/$stem.ipynb, log: $out/$stem.log):" >&2
    # the traceback papermill prints last (cell outputs before it are in the log)
    awk '/PapermillExecutionError|Traceback|Error/ {found=1} found' "$out/$stem.log" | grep -v "^\s*$" | tail -n 30 >&2
    exit 1
  fi
  rm -f "$out/$stem.input.ipynb"
  echo "[run_all] ($i/${#notebooks[@]}) $stem done in $((SECONDS - start)) s"
done
echo "[run_all] finished. Executed notebooks: $out"
echo "[run_all] figures and tables: $root/figures/$run_name/"
