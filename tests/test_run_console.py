"""ems run's status lines and log records survive Pyomo capturing the output of a solve.

Pyomo's HiGHS interface redirects file descriptors 1 and 2, and swaps ``sys.stdout``, for the
length of every solve; the controller solves in worker threads while the main thread prints.
Run in a subprocess so the test sees the real descriptors, not pytest's capture.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO

SCRIPT = textwrap.dedent("""
    import logging, sys, threading
    from pyomo.common.tee import capture_output
    from ems.cli.run import own_stream, _own_log_streams

    logging.basicConfig(level="INFO", format="%(message)s")
    _own_log_streams()
    console = own_stream(sys.stdout)
    inside, leave = threading.Event(), threading.Event()

    def solve():  # what the solver thread does around every HiGHS call
        with capture_output(capture_fd=True):
            inside.set()
            leave.wait(5)

    worker = threading.Thread(target=solve)
    worker.start()
    inside.wait(5)
    print("status line during the solve", file=console, flush=True)
    logging.getLogger("ems").warning("log record during the solve")
    leave.set()
    worker.join()
    print("status line after the solve", file=console, flush=True)
""")


def test_status_and_log_lines_written_while_a_solve_captures_output_reach_the_terminal():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["status line during the solve", "status line after the solve"]
    assert "log record during the solve" in done.stderr.splitlines()


def test_without_an_own_stream_the_line_is_lost_to_the_capture():
    """The check can fail: the plain stdout's line disappears into the capture."""
    plain = SCRIPT.replace("console = own_stream(sys.stdout)", "console = sys.stdout")
    done = subprocess.run([sys.executable, "-c", plain], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "status line during the solve" not in done.stdout
