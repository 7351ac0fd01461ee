import threading
import time

from domain.locking import ReadWriteLock


def test_readers_share_the_lock():
    lock = ReadWriteLock()
    inside = threading.Barrier(3, timeout=2)

    def reader():
        with lock.reading():
            inside.wait()  # all three readers must be inside at once, or this times out

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not inside.broken


def test_a_writer_excludes_readers_and_other_writers():
    lock = ReadWriteLock()
    active: list[str] = []
    overlaps: list[list[str]] = []
    guard = threading.Lock()

    def work(kind: str) -> None:
        context = lock.writing() if kind == "w" else lock.reading()
        with context:
            with guard:
                active.append(kind)
                if "w" in active and len(active) > 1:
                    overlaps.append(list(active))
            time.sleep(0.002)
            with guard:
                active.remove(kind)

    threads = [threading.Thread(target=work, args=("w" if i % 3 == 0 else "r",)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_a_waiting_writer_is_not_starved_by_new_readers():
    lock = ReadWriteLock()
    first_reader_in = threading.Event()
    release_first_reader = threading.Event()
    order: list[str] = []

    def long_reader():
        with lock.reading():
            first_reader_in.set()
            release_first_reader.wait(2)

    def writer():
        with lock.writing():
            order.append("writer")

    def late_reader():
        with lock.reading():
            order.append("late reader")

    t1 = threading.Thread(target=long_reader)
    t1.start()
    first_reader_in.wait(2)
    t2 = threading.Thread(target=writer)
    t2.start()
    time.sleep(0.05)
    t3 = threading.Thread(target=late_reader)
    t3.start()
    time.sleep(0.05)
    release_first_reader.set()
    for t in (t1, t2, t3):
        t.join(2)
    assert order == ["writer", "late reader"]
