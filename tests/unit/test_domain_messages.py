"""Domain messages speak of the domain: no setting name, no HTTP status (the edge adds those)."""

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
SETTING = re.compile(r"\bKB_[A-Z_]+")
STATUS = re.compile(r"\((?:HTTP )?[45]\d\d\)|\bHTTP [45]\d\d\b")


def message_texts(source: str) -> list[str]:
    """Every string literal in the code, f-string parts included, docstrings left out."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def leaks(source: str) -> list[str]:
    return [text for text in message_texts(source) if SETTING.search(text) or STATUS.search(text)]


def test_no_domain_message_names_a_setting_or_an_http_status():
    found = {
        path.name: leaked
        for path in (SRC / "domain").rglob("*.py")
        if (leaked := leaks(path.read_text()))
    }
    assert found == {}


def test_the_check_sees_a_setting_and_a_status_in_a_message_but_not_in_a_docstring():
    source = '''
def f(model):
    """Mentions KB_EMBEDDING_MODEL and (409) harmlessly."""
    log.error("refused (409)")
    raise ValueError(f"start it with KB_EMBEDDING_MODEL={model!r}")
'''
    assert leaks(source) == ["refused (409)", "start it with KB_EMBEDDING_MODEL="]
