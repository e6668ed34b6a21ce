"""Where sweeps keep their studies: an Optuna RDB storage (a SQLite file, or PostgreSQL for workers on
several hosts), opened once per process and file, with SQLite's transactions made serialisable so that two
workers never take the same waiting trial. Imports neither torch nor the rest of invlab: a process that only
reads or feeds a study (a queue, a report's reader) starts in a fraction of a second.

The names are :mod:`invlab.experiments.sweep`'s (and ``invlab.sweep``'s) too."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

DEFAULT_STORAGE = "sqlite:///runs/sweeps.db"
#: how long a SQLite worker waits for another one's transaction before giving up
SQLITE_BUSY_TIMEOUT_MS = 60_000


def _optuna():
    try:
        import optuna
    except ImportError as err:  # pragma: no cover - optuna is a dependency
        raise ImportError("invlab sweep needs optuna: pip install 'optuna>=5'") from err
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and stale-trial handling are marked experimental; they are what makes workers fault tolerant
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def storage_url(url: str | None) -> str:
    """The storage URL, the SQLite default under ``runs/`` when none is given."""
    if not url:
        Path("runs").mkdir(exist_ok=True)
        return DEFAULT_STORAGE
    return url


def _rdb(url: str, **kwargs):
    """``RDBStorage(url)``; for a SQLite file, made under a file lock beside it: workers started together on a
    new file would otherwise each declare its tables at once, and all but one fail."""
    from optuna.storages import RDBStorage

    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return RDBStorage(url, **kwargs)
    from filelock import FileLock

    path = Path(url[len(prefix):])
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        return RDBStorage(url, **kwargs)


def open_storage(url: str | None, heartbeat: int = 60, grace: int | None = None, max_retry: int = 3):
    """An Optuna RDB storage with a heartbeat (a worker's running trials are failed when it
    stops beating for ``grace`` seconds, default twice the interval) and retries of such
    trials (``RetryHeartbeatStaleTrialCallback``, Optuna 5's name for the former
    ``RetryFailedTrialCallback``; at most ``max_retry`` times)."""
    _optuna()
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    return _serialised(_rdb(storage_url(url), heartbeat_interval=heartbeat, grace_period=grace or 2 * heartbeat,
                            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry)))


@contextlib.contextmanager
def opened(url: str | None, **kwargs):
    """An RDB storage whose database connections are closed on exit (``with opened(url) as storage:``;
    keywords as :func:`open_storage`'s, for a storage with a heartbeat).

    Setting up an ``RDBStorage`` (declaring its tables, checking the schema's version with
    alembic) costs a fifth of a second, more than most of the calls made with it; a study
    opens its storage hundreds of times. So a SQLite storage is kept for the process and
    reused while its file is the same one (same device and inode: a file deleted and made
    anew gets a new storage); its connections are still closed on every exit."""
    key = _storage_key(url, kwargs)
    storage = _STORAGES.get(key) if key else None
    if storage is None:
        storage = open_storage(url, **kwargs) if kwargs else _plain_storage(url)
        key = _storage_key(url, kwargs)
        if key:
            while len(_STORAGES) >= _STORAGES_KEPT:
                _STORAGES.pop(next(iter(_STORAGES))).engine.dispose()
            _STORAGES[key] = storage
    try:
        yield storage
    finally:
        storage.engine.dispose()


#: SQLite storages kept by :func:`opened`, keyed by :func:`_storage_key`
_STORAGES: dict = {}
_STORAGES_KEPT = 16


def _storage_key(url: str | None, kwargs: dict):
    """Who may share a storage: this process, this SQLite file as it is now, these options.
    None for other databases and for a SQLite file that does not exist (yet)."""
    resolved = storage_url(url)
    if not resolved.startswith("sqlite:///"):
        return None
    path = Path(resolved[len("sqlite:///"):])
    try:
        stat = path.stat()
    except OSError:
        return None
    return os.getpid(), str(path.resolve()), stat.st_dev, stat.st_ino, tuple(sorted(kwargs.items()))


def _plain_storage(url: str | None):
    _optuna()
    return _serialised(_rdb(storage_url(url)))


def _serialised(storage):
    """Make a SQLite storage's transactions serialisable, so that two workers never take
    the same waiting trial.

    Optuna takes a waiting trial by reading its row ``SELECT ... FOR UPDATE`` and setting
    it running only if it still waits. SQLite ignores ``FOR UPDATE``, and Python's sqlite3
    starts its (deferred) transaction only at the write, after the read: two workers that
    read the row at the same moment both set it running and both train it (Optuna issue
    #4002; with four workers popping sixty waiting trials, up to a quarter were taken twice).
    Beginning every transaction with ``BEGIN IMMEDIATE`` takes SQLite's write lock before
    the read (SQLAlchemy's recipe for serialisable SQLite), so the second worker reads the
    row after the first one's commit and moves on. Other databases lock the row as asked."""
    from sqlalchemy import event

    engine = storage.engine
    if engine.dialect.name != "sqlite":
        return storage
    engine.dispose()  # connections opened while the storage set itself up predate the hooks

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # sqlite3 must not issue its own deferred BEGIN
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return storage
