# kb-service: CPU-only torch, the embedding model baked in at build time, gunicorn as a non-root user.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    KB_VENV=/opt/kb/venv \
    TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu \
    HF_HOME=/opt/kb/huggingface \
    XDG_CACHE_HOME=/opt/kb/cache \
    KB_EMBEDDING_MODEL=sentence-transformers/all-MiniLM-L12-v2

WORKDIR /opt/kb/src
COPY pyproject.toml README.md ./
COPY scripts/ scripts/
COPY src/ src/

# The same script CI runs (scripts/check_image_install.sh), then the model download and its
# ONNX export (into XDG_CACHE_HOME, read by the runtime user), so the container starts offline
# and at once.
RUN bash scripts/install.sh --image \
    && /opt/kb/venv/bin/kb download-model

RUN useradd --system --uid 10001 --home-dir /opt/kb --shell /usr/sbin/nologin kb \
    && mkdir -p /data \
    && chown kb /data

# KB_HOST: `kb serve` binds 127.0.0.1 unless told otherwise; a container must listen on its own
# network. The compose stacks publish only nginx, so only the proxy reaches this port.
ENV PATH=/opt/kb/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    KB_HOST=0.0.0.0 \
    KB_PORT=8000

USER 10001
WORKDIR /data
EXPOSE 8000
# Ready, not just alive (/readyz is 503 until the model is loaded), on the port KB_PORT sets.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('KB_PORT', '8000') + '/readyz', timeout=4)"]
CMD ["kb", "serve"]
