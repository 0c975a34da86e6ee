#!/usr/bin/env bash
# Creates .venv (if missing) and installs a requirements file into it.
# Usage: bash scripts/setup.sh [requirements.txt|requirements-test.txt]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r "${1:-requirements.txt}"
