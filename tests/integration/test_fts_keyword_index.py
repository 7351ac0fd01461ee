"""The FTS5 keyword index keeps its tables on disk: indexing texts hardly grows the process,
and with a path they are taken back at the next start."""

import gc
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.heap import release_free_memory
from adapters.sqlite import fts_file
from adapters.sqlite.fts_keyword_index import Fts5KeywordIndex
from domain.digests import content_hash

TEXTS = 2000
WORDS_PER_TEXT = 1500  # about 11 KB each: 22 MB of text, which in RAM would be 40 MB or more


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_indexing_22_mb_of_text_grows_the_process_by_less_than_a_third_of_it():
    rng = random.Random(15)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=6)) for _ in range(20000)]
    texts = [" ".join(rng.choices(vocabulary, k=WORDS_PER_TEXT)) for _ in range(TEXTS)]
    total_mb = sum(map(len, texts)) / 1e6
    index = Fts5KeywordIndex()
    release_free_memory()
    before = resident_mb()
    for start in range(0, TEXTS, 100):
        index.add([(f"d{i}", texts[i]) for i in range(start, start + 100)])
    release_free_memory()
    grown = resident_mb() - before
    assert len(index) == TEXTS
    assert index.search(texts[7].split()[0], 1)
    assert grown < total_mb / 3, f"{grown:.1f} MB resident for {total_mb:.1f} MB of text"


# The file kept between runs (Fts5KeywordIndex(path)): what a restart takes back.

VOCABULARY = [f"w{n}" for n in range(300)]
QUERIES = ["w1 w2", "w7", "w30 w31 w32", "w150 w299", "w5 w6 w7 w8 w9"]


def corpus(count: int, seed: int = 3, prefix: str = "d") -> dict[str, str]:
    rng = random.Random(seed)
    return {
        f"{prefix}{n:05d}": " ".join(rng.choices(VOCABULARY, k=rng.randint(5, 60)))
        for n in range(count)
    }


def digests(docs: dict[str, str]):
    return iter(sorted((doc_id, content_hash(text)) for doc_id, text in docs.items()))


def start(path: Path, docs: dict[str, str]) -> tuple[Fts5KeywordIndex, list[str] | None]:
    """What the catalog does at start: take back the copy, add what it lacks."""
    index = Fts5KeywordIndex(path)
    lacking = index.resume(digests(docs))
    wanted = sorted(docs) if lacking is None else lacking
    for first in range(0, len(wanted), 500):
        index.add([(doc_id, docs[doc_id]) for doc_id in wanted[first : first + 500]])
    return index, lacking


def answers(index: Fts5KeywordIndex) -> list[list[tuple[str, float]]]:
    return [sorted(index.search(q, 10_000), key=lambda hit: (-hit[1], hit[0])) for q in QUERIES]


def fresh(docs: dict[str, str]) -> Fts5KeywordIndex:
    index = Fts5KeywordIndex()
    index.add(sorted(docs.items()))
    return index


def stop(index: Fts5KeywordIndex) -> None:
    """The process ends: its connection closes (SQLite folds the log into the file)."""
    del index
    gc.collect()


def test_a_restart_takes_back_the_file_and_scores_as_a_fresh_build(tmp_path):
    path = tmp_path / "kb.1.fts"
    docs = corpus(2000)
    first, lacking = start(path, docs)
    assert lacking is None and path.exists()
    stop(first)
    second, lacking = start(path, docs)
    assert lacking == [] and len(second) == 2000
    assert answers(second) == answers(fresh(docs))  # equal scores, not merely close


@pytest.mark.parametrize("page", [7, 1000, fts_file.PAGE])
def test_changes_while_down_are_caught_by_their_content_hashes(tmp_path, monkeypatch, page):
    monkeypatch.setattr(fts_file, "PAGE", page)  # pages of either side end anywhere
    path = tmp_path / "kb.1.fts"
    docs = corpus(2000)
    stop(start(path, docs)[0])
    now = {doc_id: text for doc_id, text in docs.items() if not doc_id.endswith("7")}
    now |= {f"d{n:05d}": "w1 w2 w3 changed" for n in range(0, 2000, 50)}
    now |= corpus(30, seed=9, prefix="e")
    index, lacking = start(path, now)
    assert lacking == sorted([f"d{n:05d}" for n in range(0, 2000, 50)] + list(corpus(30, 9, "e")))
    assert len(index) == len(now)
    assert answers(index) == answers(fresh(now))
    stop(index)
    again, lacking = start(path, now)
    assert lacking == [] and answers(again) == answers(fresh(now))


@pytest.mark.parametrize("page", [3, fts_file.PAGE])
@pytest.mark.parametrize(
    "keep",
    [
        lambda doc_id: doc_id in ("d00000", "d01999"),  # long runs of rows to forget
        lambda doc_id: doc_id > "d01990",  # the first pages hold nothing kept
        lambda doc_id: doc_id < "d00010",  # nothing kept after the first page
    ],
)
def test_a_store_that_kept_few_documents_leaves_only_those(tmp_path, monkeypatch, page, keep):
    monkeypatch.setattr(fts_file, "PAGE", page)
    path = tmp_path / "kb.1.fts"
    docs = corpus(2000)
    stop(start(path, docs)[0])
    now = {doc_id: text for doc_id, text in docs.items() if keep(doc_id)}
    now |= corpus(5, seed=9, prefix="c") | corpus(5, seed=9, prefix="e")
    index, lacking = start(path, now)
    assert lacking == sorted(corpus(5, seed=9, prefix="c") | corpus(5, seed=9, prefix="e"))
    assert len(index) == len(now) and answers(index) == answers(fresh(now))


def test_too_many_lacking_rebuilds_from_scratch(tmp_path, monkeypatch):
    path = tmp_path / "kb.1.fts"
    stop(start(path, corpus(100))[0])
    monkeypatch.setattr(fts_file, "MAX_LACKING", 10)
    now = corpus(100) | corpus(20, seed=4, prefix="e")
    index, lacking = start(path, now)
    assert lacking is None
    assert len(index) == 120 and answers(index) == answers(fresh(now))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty header", "foreign", "layout"])
def test_an_unusable_file_is_deleted_and_rebuilt(tmp_path, caplog, damage):
    path = tmp_path / "kb.1.fts"
    docs = corpus(3000)
    stop(start(path, docs)[0])
    assert not Path(f"{path}-wal").exists()  # folded in: the damage below is all there is
    if damage == "truncated":
        os.truncate(path, path.stat().st_size // 2)
    elif damage == "garbage":
        path.write_bytes(b"\x07 not a database " * 4096)
    elif damage == "empty header":
        path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    elif damage == "foreign":
        path.unlink()
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE rows (doc TEXT, row INTEGER, hash BLOB)")
        other.close()
    else:
        with sqlite3.connect(path) as older:
            older.execute("PRAGMA user_version = 0")
        older.close()
    with caplog.at_level(logging.WARNING):
        index, lacking = start(path, docs)
    assert lacking is None
    assert "unusable" in caplog.text
    assert len(index) == 3000 and answers(index) == answers(fresh(docs))
    stop(index)
    assert start(path, docs)[1] == []  # the rebuilt file is taken back next time


def test_discard_deletes_the_file_and_its_log(tmp_path):
    folder = tmp_path / "indexes"
    index, _ = start(folder / "kb.1.fts", corpus(50))
    assert sorted(p.name for p in folder.iterdir()) == ["kb.1.fts", "kb.1.fts-shm", "kb.1.fts-wal"]
    index.discard()
    index.add([("late", "w1 arrives late")])
    assert [d for d, _ in index.search("w1", 100) if d == "late"] == ["late"]
    assert list(folder.iterdir()) == []


WRITER = """
import random, sys
from pathlib import Path
from adapters.sqlite.fts_keyword_index import Fts5KeywordIndex
index = Fts5KeywordIndex(Path(sys.argv[1]))
index.resume(iter([]))
for batch in range(10_000):
    rng = random.Random(batch)
    index.add([(f"d{batch:05d}-{n:03d}", " ".join(rng.choices(
        [f"w{i}" for i in range(300)], k=rng.randint(5, 60)))) for n in range(300)])
    print(batch, flush=True)
"""


def batch_docs(batches: int) -> dict[str, str]:
    """What WRITER adds in its first `batches` batches."""
    docs = {}
    for batch in range(batches):
        rng = random.Random(batch)
        for n in range(300):
            words = rng.choices(VOCABULARY, k=rng.randint(5, 60))
            docs[f"d{batch:05d}-{n:03d}"] = " ".join(words)
    return docs


@pytest.mark.parametrize("wait", [0.0, 0.013, 0.031, 0.057])
def test_a_file_left_by_a_killed_writer_opens_and_is_brought_in_line(tmp_path, wait):
    """SIGKILL in the middle of a batch (of several, by timing): the next start finds a file
    whose two tables agree, holding whole batches only, and adds the rest."""
    path = tmp_path / "kb.1.fts"
    src = Path(__file__).resolve().parents[2] / "src"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    assert writer.stdout is not None
    for _ in range(3):
        done = int(writer.stdout.readline())
    time.sleep(wait)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert Path(f"{path}-wal").exists()  # the log was never folded in
    held = Fts5KeywordIndex(path)
    whole = held.resume(digests(batch_docs(done + 3)))
    assert whole is not None and len(held) % 300 == 0 and len(held) >= (done + 1) * 300
    stop(held)
    docs = batch_docs(done + 3)  # the store holds more than the index caught
    index, lacking = start(path, docs)
    assert lacking is not None and len(index) == len(docs)
    assert answers(index) == answers(fresh(docs))


def test_a_file_holding_no_kept_text_is_rebuilt_whole(tmp_path):
    path = tmp_path / "kb.1.fts"
    stop(start(path, corpus(300))[0])
    now = corpus(300, seed=4)  # the same ids, every text another
    index, lacking = start(path, now)
    assert lacking is None
    assert len(index) == 300 and answers(index) == answers(fresh(now))


def test_an_error_of_the_disk_not_the_file_keeps_the_file(tmp_path, monkeypatch):
    path = tmp_path / "kb.1.fts"
    docs = corpus(200)
    stop(start(path, docs)[0])

    def full(db, kept):
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(fts_file, "reconcile", full)
        with pytest.raises(sqlite3.OperationalError):
            Fts5KeywordIndex(path).resume(digests(docs))
    assert start(path, docs)[1] == []  # taken back whole at the next start


def test_a_failed_commit_is_rolled_back_so_the_next_batch_can_begin(tmp_path):
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE a (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE b (a INTEGER REFERENCES a (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), fts_file.transaction(db):
        db.execute("INSERT INTO b VALUES (7)")  # refused at COMMIT, which leaves it open
    assert not db.in_transaction
    with fts_file.transaction(db):
        db.execute("INSERT INTO a VALUES (7)")
    assert db.execute("SELECT count(*) FROM b").fetchone() == (0,)
    db.close()


def test_writes_the_disk_refuses_wait_in_ram_and_searches_leave_them_out(tmp_path, monkeypatch):
    index = Fts5KeywordIndex(tmp_path / "kb.1.fts")
    index.resume(iter(()))
    index.add([("old", "alpha beta"), ("gone", "alpha gamma")])
    real, forget = fts_file.transaction, fts_file.forget
    full = {"now": True}

    def refusing(db):
        if full["now"]:
            raise sqlite3.OperationalError("database or disk is full")
        return real(db)

    monkeypatch.setattr(fts_file, "transaction", refusing)
    monkeypatch.setattr(fts_file, "forget", lambda db, doomed: refusing(db))
    index.add([("new", "alpha delta")])  # no error: the journal answered for it already
    index.remove(["gone"])
    assert [doc for doc, _ in index.search("alpha", 10)] == ["old"]
    assert index.term_matches("alpha", ["old", "gone", "new"]).matched.keys() == {"old"}
    full["now"] = False
    monkeypatch.setattr(fts_file, "forget", forget)
    index.add([("later", "alpha epsilon")])  # room again: the waiting changes go first
    assert sorted(doc for doc, _ in index.search("alpha", 10)) == ["later", "new", "old"]
    assert len(index) == 3
