"""What keeps a run's folder whole: a graceful stop on SIGINT/SIGTERM, one writer per folder,
a checkpoint cadence, and file-system faults named for what they are.

* :class:`GracefulInterrupt` — while a run trains, the first Ctrl-C (SIGINT) or SIGTERM (a
  batch scheduler, a container runtime, a closed terminal) asks the loop to stop after the
  current step; the trainer then writes a checkpoint at that step and returns. A second
  signal aborts at once. Installed only from the main thread (a widget's training thread
  has its own Stop button).
* :class:`RunLock` — an exclusive lock (``filelock``, the lock of pip, tox and the Hugging
  Face hub) on ``DIR/.lock`` for the whole run, the holder (host, PID, since when) beside it
  in ``DIR/.lock.json``. The lock is the kernel's (``flock``): a process killed with
  ``kill -9`` releases it, and the next run takes it over.
* :func:`checkpoint_cadence` — ``--checkpoint-every``: steps (``500``) or minutes (``10m``).
* :func:`named_fault` — a full disk, a read-only folder or a permission error while writing
  the run's files, as one line that names the cause, the folder and the last good checkpoint.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import re
import signal
import socket
import threading
from pathlib import Path

#: the exit status of a process stopped by a signal, as shells report it (128 + the signal)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
LOCK, HOLDER = ".lock", ".lock.json"


class GracefulInterrupt:
    """Context manager: SIGINT and SIGTERM set :attr:`signum` instead of ending the process;
    a second signal restores the previous handlers and raises ``KeyboardInterrupt`` at once."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():
            for s in EXIT_CODES:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # the second signal: stop now, without a checkpoint
            self._restore()
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: aborted without a checkpoint")
        self.signum = signum

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def __exit__(self, *exc) -> None:
        self._restore()

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name


class RunInterrupted(KeyboardInterrupt):
    """A run of a study (:func:`~invlab.experiments.runs.run_resumable`) stopped by a signal
    after writing its checkpoint: the worker marks the trial for retry and exits."""

    def __init__(self, signal_name: str, step: int, folder: Path):
        super().__init__(f"{signal_name} at step {step}; checkpoint in {folder}")
        self.signal_name, self.step, self.folder = signal_name, step, folder

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[signal.Signals[self.signal_name]]


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock."""


class RunLock:
    """One writer per run folder (see the module docstring). ``acquire`` fails at once, with
    the holder's host, PID and start time and the fix, when another process holds it."""

    def __init__(self, folder: str | os.PathLike):
        from filelock import FileLock

        self.folder = Path(folder)
        self._lock = FileLock(self.folder / LOCK, timeout=0)

    def holder(self) -> dict | None:
        try:
            return json.loads((self.folder / HOLDER).read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> "RunLock":
        from filelock import Timeout

        from invlab.io import save_json

        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            h = self.holder() or {}
            who = (f"process {h.get('pid', '?')} on {h.get('host', '?')}, running since {h.get('since', '?')}"
                   if h else "another process")
            raise RunFolderBusy(f"{self.folder} is in use by {who}: wait for it to finish (or stop it), "
                                "or choose another --out folder") from None
        save_json({"host": socket.gethostname(), "pid": os.getpid(),
                   "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}, self.folder / HOLDER)
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            (self.folder / HOLDER).unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def checkpoint_cadence(value: str | int | None) -> tuple[int | None, float | None]:
    """``--checkpoint-every``: ``(steps, None)`` for a number of steps, ``(None, seconds)`` for
    minutes written ``10m``, ``(None, None)`` for the default (every evaluation, and at least
    every 5 minutes of training)."""
    if value is None:
        return None, None
    if isinstance(value, int) or re.fullmatch(r"\d+", str(value).strip()):
        steps = int(value)
        if steps < 1:
            raise ValueError(f"--checkpoint-every must be at least 1 step, got {value!r}")
        return steps, None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*m(in)?", str(value).strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"--checkpoint-every takes steps (500) or minutes (10m), got {value!r}")
    return None, 60.0 * float(m.group(1))


_CAUSES = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
           errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied"}


def named_fault(err: OSError, what: Path, last_step: int | None, checkpoint: Path | None) -> str:
    """One line for a failed write of ``what``: the cause, the folder, the last good checkpoint."""
    cause = _CAUSES.get(err.errno, err.strerror or str(err))
    fix = ("free some space there" if err.errno in (errno.ENOSPC, errno.EDQUOT)
           else "make it writable" if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else "check the folder")
    last = (f"the last good checkpoint is step {last_step} ({checkpoint}): continue with --resume once fixed"
            if last_step is not None and checkpoint is not None else "no checkpoint was written yet")
    return f"cannot write {what.name} in {what.parent}: {cause}; {fix}; {last}"


__all__ = [
    "EXIT_CODES",
    "GracefulInterrupt",
    "RunFolderBusy",
    "RunInterrupted",
    "RunLock",
    "checkpoint_cadence",
    "named_fault",
]
