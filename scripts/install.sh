#!/usr/bin/env bash
# Install kb-service into a virtualenv: `install.sh` for running it, `install.sh --dev` for
# its tests too. The Dockerfile runs this same script, so CI exercises the image's install path.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${KB_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
MODE="${1:-}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

# torch first and pinned, so nothing later pulls a CUDA build. TORCH_INDEX_URL (set in the
# Dockerfile) points at PyTorch's CPU-only wheels; without it pip's configured index is used.
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${PIP[@]}" --index-url "$TORCH_INDEX_URL" torch==2.13.0
else
    "${PIP[@]}" torch==2.13.0
fi

# Debian packages for the dev tests, as root: a fresh machine may have no package lists yet,
# so a failed install fetches them once and tries again.
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

case "$MODE" in
    --dev)
        "${PIP[@]}" -e ".[dev]"
        # Real offline text for the benchmarks and their tests (WordNet glosses).
        if [ ! -d /usr/share/wordnet ]; then
            if can_apt; then
                apt_install wordnet-base
            else
                echo "note: 'sudo apt-get install wordnet-base' enables the benchmark tests" >&2
            fi
        fi
        # Headless Chromium and its driver for the browser tests (pytest -m browser).
        if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
            if can_apt; then
                apt_install chromium chromium-driver
            else
                echo "note: 'sudo apt-get install chromium chromium-driver' enables the browser tests" >&2
            fi
        fi
        # nginx for the proxy tests (tests/integration/test_proxy.py: deploy/nginx.conf). Where
        # systemd runs, Debian also starts its own nginx on port 80; the tests start theirs.
        if [ ! -x /usr/sbin/nginx ]; then
            if can_apt; then
                apt_install nginx
            else
                echo "note: 'sudo apt-get install nginx' enables the proxy tests" >&2
            fi
        fi
        ;;
    --image) "${PIP[@]}" . ;;
    "") "${PIP[@]}" -e . ;;
    *) echo "usage: $0 [--dev|--image]" >&2; exit 2 ;;
esac
echo "kb-service installed in $VENV"
