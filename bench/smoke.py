"""Run every bench of ``make bench`` in its ``--quick`` form and fail if one is broken.

CI runs this (``make bench-check``, from ``.ci/run``) so that no bench can rot unseen. A bench
that breaks does not always exit non-zero: bench_recorder's ticks raised in the mixer's thread
while it printed ``nan`` and exited 0. So a run also fails on a traceback in its output or on a
``nan`` figure. The figures are not judged (CI machines are noisy); the benches print them for
people. It runs outside the test suite, which has its own time budget.

    .venv/bin/python bench/smoke.py [bench_fanout.py ...]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAN = re.compile(r"(?<![\w.])nan(?![\w.])", re.IGNORECASE)


def problems(returncode: int, stdout: str, stderr: str) -> list[str]:
    found = []
    if returncode != 0:
        found.append(f"exit status {returncode}")
    if "Traceback" in stdout + stderr:
        found.append("a traceback in its output")
    if NAN.search(stdout):
        found.append("a nan figure")
    return found


def main(argv: list[str]) -> int:
    names = argv or sorted(path.name for path in (ROOT / "bench").glob("bench_*.py"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    failed = []
    for name in names:
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, f"bench/{name}", "--quick"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        found = problems(run.returncode, run.stdout, run.stderr)
        took = time.monotonic() - started
        print(f"{name:<28} {'FAILED: ' + ', '.join(found) if found else 'ok'} ({took:.0f} s)")
        if found:
            failed.append(name)
            print((run.stdout + run.stderr)[-4000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
