"""Dependencies point inward: domain <- adapters <- entrypoints, read from the imports."""

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
STDLIB = set(sys.stdlib_module_names)


def imported_roots(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.name)
    return found


def test_the_domain_imports_only_the_standard_library_numpy_and_itself():
    outside = {
        root: files
        for root, files in imported_roots("domain").items()
        if root not in STDLIB and root not in {"numpy", "domain", "__future__"}
    }
    assert outside == {}


def test_adapters_never_import_entrypoints():
    assert "entrypoints" not in imported_roots("adapters")


@pytest.mark.parametrize("path", sorted((SRC / "entrypoints").rglob("*.py")), ids=lambda p: p.name)
def test_only_the_container_and_its_backends_name_concrete_adapters(path):
    allowed = path.name == "container.py" or path.parent.name == "backends"
    tree = ast.parse(path.read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    if not allowed:
        assert not any(m.split(".")[0] == "adapters" for m in modules)


def test_the_architecture_check_would_notice_an_outward_import(tmp_path, monkeypatch):
    fake_src = tmp_path / "src"
    (fake_src / "domain").mkdir(parents=True)
    (fake_src / "domain" / "leak.py").write_text("from adapters.faiss_index import X\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake_src)
    assert "adapters" in imported_roots("domain")


def test_the_client_imports_nothing_of_the_service():
    service = {"domain", "adapters", "entrypoints"}
    assert service.isdisjoint(imported_roots("kb_client"))


@pytest.mark.parametrize("name", ["cli_commands.py", "cli_import.py", "cli_sources.py"])
def test_the_client_commands_reach_the_service_only_through_kb_client(name):
    tree = ast.parse((SRC / "entrypoints" / name).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.split(".")[0] in {"domain", "adapters"} for m in modules)
