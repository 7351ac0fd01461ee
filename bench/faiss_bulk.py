"""FaissVectorIndex alone: memory of a bulk load told its size (`expect`) against one that is not.

    python -m bench.faiss_bulk [--vectors 100000] [--dimension 384] [--batch 500]
                               [--ann-threshold 50000]

Runs each way in a fresh Python process (so each peak is its own): `FaissVectorIndex` with the
default KB_ANN_THRESHOLD gets `--vectors` clustered unit vectors in batches of `--batch`, as a
restore adds them, with and without `expect(count)` first, and waits for any
background rebuild. Prints the process's resident size (VmRSS) before and after, its peak
(VmHWM) above the start, the time, and the index it ended with. No model is needed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np

from adapters.faiss.index import DEFAULT_ANN_THRESHOLD, FaissVectorIndex
from adapters.heap import release_free_memory

CLUSTERS = 2000


def status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def load(hint: bool, count: int, dimension: int, batch: int, threshold: int) -> str:
    """One load in this process; a line of figures."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((CLUSTERS, dimension)).astype(np.float32)
    before = status_mb("VmRSS")
    started = time.perf_counter()
    index = FaissVectorIndex(dimension, ann_threshold=threshold)
    if hint:
        index.expect(count)
    for start in range(0, count, batch):
        size = min(batch, count - start)
        rows = centres[rng.integers(0, CLUSTERS, size)]
        rows = rows + 0.3 * rng.standard_normal((size, dimension)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        index.add(np.arange(start, start + size, dtype=np.int64), rows)
    index.wait_for_rebuild()
    seconds = time.perf_counter() - started
    release_free_memory()
    after, peak = status_mb("VmRSS"), status_mb("VmHWM")
    return (
        f"{'expect' if hint else 'no hint':8} {count:>9,} {seconds:7.1f} {after - before:+9.0f} "
        f"{peak - before:+8.0f}   {'IVF' if index.approximate else 'exact'}, {index.lists} lists, "
        f"{index.probes} probes"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faiss_bulk", description=__doc__)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--ann-threshold", type=int, default=DEFAULT_ANN_THRESHOLD)
    parser.add_argument("--one", choices=("expect", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        hint = args.one == "expect"
        print(load(hint, args.vectors, args.dimension, args.batch, args.ann_threshold))
        return 0
    print("way       vectors  seconds  MB after  MB peak   index (MB: above the start)")
    for way in ("expect", "plain"):
        sys.stdout.flush()
        subprocess.run(
            [sys.executable, "-m", "bench.faiss_bulk", "--one", way, "--vectors",
             str(args.vectors), "--dimension", str(args.dimension), "--batch", str(args.batch),
             "--ann-threshold", str(args.ann_threshold)],
            check=True,
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
