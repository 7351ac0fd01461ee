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


# Each adapter package imports the domain, the standard library, numpy, its own package and its
# own technology; anything else from another adapter package is listed here, file by file.
TECHNOLOGY = {
    "faiss": {"faiss"},
    "sqlite": set(),  # sqlite3 is in the standard library
    "postgres": {"psycopg", "psycopg_pool", "pgvector"},
    "memory": set(),
    "embedding": {"tokenizers", "onnxruntime", "sentence_transformers", "torch", "huggingface_hub"},
    "extraction": {"pypdf", "bs4", "docx", "markdown_it"},
}
CROSS_PACKAGE = {
    # release_free_memory hands freed index and cache memory back to the operating system.
    ("faiss", "index.py"): {"adapters.heap"},
    # The SQLite repository composes the in-memory one as its cache and loads packed records.
    ("sqlite", "repository.py"): {
        "adapters.heap",
        "adapters.memory.repository",
        "adapters.memory.document_records",
    },
    # The start-up scan builds those packed records straight from the rows.
    ("sqlite", "scans.py"): {"adapters.memory.document_records"},
    # Texts filled into the cache's documents, which were validated when stored (`trusted`).
    ("sqlite", "texts.py"): {"adapters.memory.document_records"},
    # Records read back from the database were validated when stored (`trusted`).
    ("postgres", "rows.py"): {"adapters.memory.document_records"},
    # The ONNX encoder maps large allocations apart and hands its burst's memory back.
    ("embedding", "onnx_encoder.py"): {"adapters.heap"},
}


def imported_names(path: Path) -> set[str]:
    """Every absolute import of `path` as a dotted name (`from a.b import c` gives `a.b.c`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def stray_imports(package: str) -> dict[str, set[str]]:
    """The imports of `adapters/<package>` that break its direction, by file name."""
    allowed_roots = STDLIB | {"__future__", "numpy", "domain"} | TECHNOLOGY[package]
    stray: dict[str, set[str]] = {}
    for path in sorted((SRC / "adapters" / package).rglob("*.py")):
        excepted = CROSS_PACKAGE.get((package, path.name), set())
        for name in imported_names(path):
            own = name.startswith(f"adapters.{package}.")
            listed = any(name == e or name.startswith(f"{e}.") for e in excepted)
            if name.split(".")[0] not in allowed_roots and not own and not listed:
                stray.setdefault(path.name, set()).add(name)
    return stray


@pytest.mark.parametrize("package", sorted(TECHNOLOGY))
def test_an_adapter_package_imports_only_the_domain_its_technology_and_listed_exceptions(package):
    assert stray_imports(package) == {}


def test_every_adapter_package_is_checked():
    packages = {p.parent.name for p in (SRC / "adapters").glob("*/__init__.py")}
    assert packages <= set(TECHNOLOGY)


def test_the_package_check_would_notice_a_new_cross_package_import(tmp_path, monkeypatch):
    fake_faiss = tmp_path / "src" / "adapters" / "faiss"
    fake_faiss.mkdir(parents=True)
    (fake_faiss / "index.py").write_text(
        "import faiss\nfrom adapters.faiss import ivf\nfrom adapters.heap import x\n"
        "from adapters.postgres.database import PostgresDatabase\nimport psycopg\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "src")
    assert stray_imports("faiss") == {
        "index.py": {"adapters.postgres.database.PostgresDatabase", "psycopg"}
    }


@pytest.mark.parametrize("name", ["catalog.py", "knowledge_bases.py", "documents.py", "ranking.py"])
def test_a_part_of_the_service_takes_repository_roles_not_the_whole_repository(name):
    # Only the facade (services.py) holds the whole DocumentRepository; it hands each part
    # the roles (KnowledgeBaseStore, DocumentStore, ...) that part uses.
    assert "domain.ports.DocumentRepository" not in imported_names(SRC / "domain" / name)


BATCHING = ("batching", "coalescer", "batch_plan")


def batching_imports(path: Path) -> set[str]:
    """What `path` imports of the embedding package's batching modules."""
    modules = [f"adapters.embedding.{name}" for name in BATCHING]
    return {n for n in imported_names(path) for m in modules if n == m or n.startswith(f"{m}.")}


@pytest.mark.parametrize("name", ["onnx_encoder.py", "sentence_transformer_encoder.py"])
def test_an_encoder_knows_nothing_of_the_batching_that_wraps_it(name):
    assert batching_imports(SRC / "adapters" / "embedding" / name) == set()


def test_the_encoder_check_would_notice_an_import_of_the_coalescer(tmp_path):
    leak = tmp_path / "onnx_encoder.py"
    leak.write_text(
        "import adapters.embedding.batch_plan\nfrom adapters.embedding.coalescer import C\n"
    )
    assert batching_imports(leak) == {
        "adapters.embedding.batch_plan",
        "adapters.embedding.coalescer.C",
    }


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
    (fake_src / "domain" / "leak.py").write_text("from adapters.faiss.index import X\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake_src)
    assert "adapters" in imported_roots("domain")


def test_the_client_imports_nothing_of_the_service():
    service = {"domain", "adapters", "entrypoints"}
    assert service.isdisjoint(imported_roots("kb_client"))


CLIENT_COMMANDS = ["cli_commands.py", "cli_import.py", "cli_sources.py", "cli_archive.py"]


@pytest.mark.parametrize("name", [*CLIENT_COMMANDS, "cli_progress.py"])
def test_the_client_commands_reach_the_service_only_through_kb_client(name):
    tree = ast.parse((SRC / "entrypoints" / name).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.split(".")[0] in {"domain", "adapters"} for m in modules)


def private_reaches_into(path: Path, field: str) -> set[str]:
    """Private names read through `self.<field>`: `self._cache._shelves` gives `_shelves`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        inner = node.value if isinstance(node, ast.Attribute) else None
        if isinstance(inner, ast.Attribute) and inner.attr == field and node.attr.startswith("_"):
            found.add(node.attr)
    return found


def test_the_sqlite_repository_composes_the_memory_cache_through_its_public_methods():
    path = SRC / "adapters" / "sqlite" / "repository.py"
    classes = [n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)]
    assert [(c.name, c.bases) for c in classes] == [("SqliteDocumentRepository", [])]
    assert private_reaches_into(path, "_cache") == set()


def test_the_composition_check_would_notice_a_reach_into_a_private_field(tmp_path):
    leak = tmp_path / "repository.py"
    leak.write_text("class R:\n    def f(self):\n        return self._cache._shelves\n")
    assert private_reaches_into(leak, "_cache") == {"_shelves"}
