#!/usr/bin/env bash
# Before/after on this machine, in one run: the code of COMMIT (default
# 31d21e1, the code issue 13 timed) against the work tree, alternated in
# separate processes: PAIRS pairs of AllConv training steps at batch 128
# (scripts/step_time.py), then each network's 1-pixel attack benchmark
# (bundled weights of each tree, full budget, 3 generations). One JSON line
# per measurement on stdout, each with "code": "before" or "after".
#
#   bash scripts/before_after.sh [COMMIT] [PAIRS] > before_after.jsonl
#   MODELS="allconv" bash scripts/before_after.sh   # fewer attack benchmarks (MODELS="": none)
set -euo pipefail
commit=${1:-31d21e1}
pairs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
tmp=$(mktemp -d)
before=$tmp/before
git -C "$root" worktree add -q --detach "$before" "$commit"
trap 'git -C "$root" worktree remove --force "$before"; rm -rf "$tmp"' EXIT

tag() { sed -n "s/^{/{\"code\": \"$1\", /p"; }
for _ in $(seq "$pairs"); do
  (cd "$before" && PYTHONPATH=. "$py" "$root/scripts/step_time.py" before 6 2>/dev/null)
  (cd "$root" && PYTHONPATH=. "$py" scripts/step_time.py after 6 2>/dev/null)
done
for m in ${MODELS-allconv nin vgg16}; do
  for side in before after; do
    dir=$root; [ "$side" = before ] && dir=$before
    (cd "$dir" && "$py" -m experiments.benchmark --model="$m" --trained --generations=3 --peak=false 2>/dev/null | tag "$side")
  done
done
