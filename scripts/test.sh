#!/usr/bin/env bash
# The project's test command: sets up .venv with requirements-test.txt and
# runs the whole pytest suite. Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-test.txt
# Test extra: PyTorch (CPU) for the AlexNet-vs-PyTorch and .pth reader checks; those tests
# skip without it. Installed only where pip finds a local CPU wheel (find-links, as on this
# project's machines: ~50 s); from the index alone torch would pull GBs of CUDA packages.
if ! .venv/bin/python -c "import torch" 2>/dev/null \
   && .venv/bin/python -m pip install -q --disable-pip-version-check --dry-run --no-index --no-deps \
        torch==2.13.0 >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
fi
# Data from ../shared (or $ONEPIXEL_CIFAR10) is optional: tests that need it skip without it.
# Two workers (pytest-xdist): on two cores the suite is mostly single-threaded XLA compilation.
exec .venv/bin/python -m pytest -q -n 2 "$@"
