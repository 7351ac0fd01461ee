"""docs/files.md's library example runs: a file's text and layout into the domain core."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from domain import KnowledgeBaseService, by_dimension
from fakes import FakeDocumentRepository, FakeEmbedder, FakeVectorIndex

DOC = (Path(__file__).resolve().parents[2] / "docs" / "files.md").read_text()


def test_the_files_library_example_runs():
    example = re.search(r"### From Python, without HTTP.*?```python\n(.*?)```", DOC, re.S)
    assert example
    service = KnowledgeBaseService(
        FakeEmbedder(), FakeDocumentRepository(), by_dimension(FakeVectorIndex)
    )
    service.create_knowledge_base("notes")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example.group(1), "docs/files.md", "exec"), {"service": service})
    assert printed.getvalue().split() == ["handbook.md", "Bikes", "None"]
    assert service.get_document("notes", "handbook.md").layout.sections == (0,)
