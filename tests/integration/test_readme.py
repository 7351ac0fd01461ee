"""The README's commands and library example are the ones that work."""

import contextlib
import io
import re
from pathlib import Path

import pytest

from model_folder import l6_folder

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.mark.model
def test_the_library_example_runs_and_finds_the_cat():
    example = re.search(r"### As a library.*?```python\n(.*?)```", README, re.S).group(1)
    runnable = example.replace('"sentence-transformers/all-MiniLM-L12-v2"', repr(l6_folder()))
    assert runnable != example
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(runnable, "README.md", "exec"), {})
    first = printed.getvalue().split()
    assert first[0] == "cat" and 0.3 < float(first[1]) <= 1.0


def test_the_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    commands = re.findall(r"^(bash scripts/install\.sh.*)$", README, re.M)
    assert commands[:2] == [
        "bash scripts/install.sh && .venv/bin/kb serve",
        "bash scripts/install.sh --dev && bash scripts/test.sh",
    ]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_every_setting_is_documented_with_its_default():
    from entrypoints.settings import Settings

    table = (ROOT / "docs" / "configuration.md").read_text()
    assert "docs/configuration.md" in README
    for name, default in Settings().as_dict().items():
        row = re.search(rf"^\| `KB_{name.upper()}` \| `([^`]*)` \|", table, re.M)
        assert row, f"KB_{name.upper()} is not in docs/configuration.md"
        assert row.group(1) == str(default), f"KB_{name.upper()} default differs"
