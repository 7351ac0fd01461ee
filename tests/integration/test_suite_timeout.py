"""The suite's per-test timeout: a hanging test fails the run with every thread's stack."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"

HANGING = """
import threading

def wait_for_ever_in_a_helper(release):
    release.wait()

def test_that_hangs():
    release = threading.Event()
    helper = threading.Thread(target=wait_for_ever_in_a_helper, args=(release,), daemon=True)
    helper.start()
    helper.join()  # never returns: the helper waits for an event nobody sets
"""


def test_every_test_has_a_timeout_that_prints_every_thread():
    options = tomllib.loads(PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < int(options["timeout"]) <= 600
    assert options["timeout_method"] == "thread"


def test_a_hanging_test_fails_with_every_threads_stack_instead_of_hanging_the_run(tmp_path):
    (tmp_path / "test_hang.py").write_text(HANGING)
    # The suite's own settings (-c), with the limit shortened so the test is quick.
    command = [sys.executable, "-m", "pytest", "-c", str(PYPROJECT), "-o", "timeout=2"]
    command += ["-p", "no:cacheprovider", str(tmp_path / "test_hang.py")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Timeout" in output, output
    # Both the test's own thread and the one it waits for are shown where they are stuck.
    assert "in test_that_hangs" in output and "in wait_for_ever_in_a_helper" in output, output
