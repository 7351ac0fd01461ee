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


def hammer(lock: ReadWriteLock, stop: threading.Event, writers: int = 8) -> list[threading.Thread]:
    """Writers back to back: each takes the lock again as soon as it let go."""

    def write() -> None:
        while not stop.is_set():
            with lock.writing():
                time.sleep(0.001)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    return threads


def test_readers_make_progress_while_eight_writers_hammer():
    lock = ReadWriteLock()
    stop = threading.Event()
    writers = hammer(lock, stop)
    reads: list[int] = []

    def read() -> None:
        for number in range(20):
            with lock.reading():
                reads.append(number)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(5)
    done = len(reads)  # counted while the writers still hammer
    stop.set()
    for thread in [*writers, reader]:
        thread.join()
    assert done == 20  # a writer-preferring lock lets none in until the writers stop


def test_readers_waiting_when_a_writer_releases_go_before_the_next_writer():
    lock = ReadWriteLock()
    order: list[str] = []
    first_in, release_first = threading.Event(), threading.Event()

    def first_writer():
        with lock.writing():
            first_in.set()
            release_first.wait(2)
            order.append("writer 1")

    def reader():
        with lock.reading():
            order.append("reader")

    def second_writer():
        with lock.writing():
            order.append("writer 2")

    threads = [threading.Thread(target=first_writer)]
    threads[0].start()
    first_in.wait(2)
    for target in (reader, second_writer, reader):
        threads.append(threading.Thread(target=target))
        threads[-1].start()
        time.sleep(0.05)
    release_first.set()
    for thread in threads:
        thread.join(2)
    assert order == ["writer 1", "reader", "reader", "writer 2"]


def test_writers_still_get_in_while_readers_come_back_to_back():
    lock = ReadWriteLock()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with lock.reading():
                time.sleep(0.001)

    readers = [threading.Thread(target=read) for _ in range(8)]
    for thread in readers:
        thread.start()
    writes: list[int] = []

    def write() -> None:
        for number in range(20):
            with lock.writing():
                writes.append(number)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(5)
    done = len(writes)
    stop.set()
    for thread in [*readers, writer]:
        thread.join()
    assert done == 20
