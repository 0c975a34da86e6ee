#!/usr/bin/env bash
# The main job on a CPU in a few minutes: sets up .venv, then attacks the bundled
# AllConv on the 20 lossless CIFAR-10 sample images (non-targeted, one pixel).
# The DE budget is reduced from the paper's 100 generations to DEMO_GENERATIONS
# so that it ends in minutes; every other setting is the paper's.
# Usage: bash scripts/demo.sh [OUT_DIR]   (default runs/demo; rerun to resume)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
exec .venv/bin/python -m experiments.attack --model=allconv --data=samples --notargeted \
  --generations="${DEMO_GENERATIONS:-10}" --out="${1:-runs/demo}"
