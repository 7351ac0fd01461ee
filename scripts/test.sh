#!/usr/bin/env bash
# Lint, type-check and test: what CI runs (.ci/run) after `scripts/install.sh --dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${KB_VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"

ruff check src tests bench
ruff format --check src tests bench
mypy
hadolint Dockerfile
bash scripts/check_image_install.sh
pytest "$@"
