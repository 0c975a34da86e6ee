#!/usr/bin/env bash
# The project's test command: sets up .venv with requirements-test.txt and
# runs the whole pytest suite. Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-test.txt
# Data from ../shared (or $ONEPIXEL_CIFAR10) is optional: tests that need it skip without it.
exec .venv/bin/python -m pytest -q "$@"
