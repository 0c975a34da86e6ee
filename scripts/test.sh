#!/usr/bin/env bash
# The project's test command: creates its own virtual environment (.venv),
# installs requirements-test.txt into it, and runs the whole pytest suite.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
# Data from ../shared (or ONEPIXEL_CIFAR10) is optional: tests that need it skip without it.
exec .venv/bin/python -m pytest -q "$@"
