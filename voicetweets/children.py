"""The one runner for bounded child processes: voice-tweet processing and replay joining.

Work that decodes strangers' files, or takes minutes, runs in a child of the worker so that only
the child dies when it goes wrong. The runner gives every such child the same treatment: a
minimal environment, limits on its memory (address space) and CPU time that the child sets on
itself before it imports anything heavy (:func:`enter_child`), a wall-clock deadline, its stderr
(a traceback) back to the parent, and a heartbeat the parent beats while it waits. The
heartbeat renews the work's lease (config.leases); when it says the lease is gone (another
worker took the work over) the child is killed, so two workers never write the same result.

No Django here, and nothing heavy to import: the children import it too (die_with_parent) and
must start fast. It lives in this package, whose ``__init__`` is empty, for that reason.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ChildExit:
    """A child that ran to its end, successfully or not (``returncode`` < 0: killed by that
    signal)."""

    returncode: int
    stdout: bytes
    stderr: bytes

    def stderr_tail(self, limit: int = 8000) -> str:
        return self.stderr.decode(errors="replace")[-limit:]


class ChildTimedOut(Exception):
    """The child ran past its deadline and was killed."""


class ChildAbandoned(Exception):
    """The heartbeat said the work is no longer ours; the child was killed."""


def run_child(
    module: str,
    args: Sequence[str],
    *,
    timeout: float,
    memory_bytes: int,
    cpu_seconds: int | None = None,
    heartbeat: Callable[[], bool] | None = None,
    heartbeat_seconds: float = 10.0,
) -> ChildExit:
    """Run ``python -m module *args`` and wait for it, at most ``timeout`` seconds.

    The module's ``main`` starts with :func:`enter_child`, which applies ``memory_bytes`` (its
    address space) and ``cpu_seconds`` (default: the deadline plus 5 s, so the deadline acts
    first and a child spinning in C code still ends).

    ``heartbeat`` is called every ``heartbeat_seconds`` while the child runs; returning False
    abandons the work. A heartbeat that raises (its database is away) is logged and the wait
    goes on: the lease then lapses on its own, and whoever takes the work over fences us out.
    """
    cpu_seconds = cpu_seconds or int(timeout) + 5
    argv = [
        sys.executable, "-m", module, "--parent-pid", str(os.getpid()),
        "--memory", str(memory_bytes), "--cpu", str(cpu_seconds), *args,
    ]  # fmt: skip
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT_ROOT),
        # One thread each: the limits are per process, and BLAS pools reserve memory per thread.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    deadline = time.monotonic() + timeout
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        while True:
            remaining = deadline - time.monotonic()
            try:
                stdout, stderr = child.communicate(
                    timeout=max(0.0, min(heartbeat_seconds, remaining))
                )
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise ChildTimedOut(f"{module} ran longer than {timeout:g} s") from None
                if heartbeat is not None and not _beat(heartbeat):
                    raise ChildAbandoned(f"{module}: the work was taken over") from None
                continue
            return ChildExit(returncode=child.returncode, stdout=stdout, stderr=stderr)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def _beat(heartbeat: Callable[[], bool]) -> bool:
    try:
        return heartbeat()
    except Exception:
        logger.exception("heartbeat failed; the child keeps running")
        return True


def enter_child(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None):
    """In the child, first thing: parse the runner's options with the module's own, die with
    the parent, and set the limits. Returns the parsed arguments."""
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--memory", type=int, required=True, help="address space, bytes")
    parser.add_argument("--cpu", type=int, required=True, help="CPU time, seconds")
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    limit_self(memory_bytes=args.memory, cpu_seconds=args.cpu)
    return args


def limit_self(*, memory_bytes: int, cpu_seconds: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def die_with_parent(parent_pid: int) -> None:
    """In the child, first thing: be killed when the worker that started us dies.

    A worker killed with SIGKILL cannot stop its children; without this one would run on,
    unwatched, writing into a work folder that the sweep is about to remove. Linux sends the
    signal when the parent *thread* ends: the workers' threads (Celery's, the embedded pool's)
    live as long as their process.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl took effect: then we were reparented already.
    if os.getppid() != parent_pid:
        os._exit(1)
