"""Decision batches committed by an event loop that must not wait (``decisions.writer: loop``).

On a SQLite file a batch of decisions commits in a fraction of a millisecond, all of it CPU:
cheaper to do on the event loop that made the decisions than to hand it to a writer thread and
be woken back, which costs the GIL hand-overs and wake-ups of every batch (benchmarks/README.md,
"Decisions committed on the event loop"). The loop may never wait, though, so this path gives
up instead of waiting whenever it would have to:

* another connection (the writer thread, a second serving process, a ``gate`` command) holds
  the write lock: the connection's ``busy_timeout`` is 0, so ``BEGIN IMMEDIATE`` fails at once;
* the connection is in use by another thread (only while the store closes).

The caller then hands the batch to its writer thread, which waits where waiting is allowed.

A WAL checkpoint copies the log into the database file and syncs it: milliseconds, not to be
spent on a loop. Automatic checkpoints are therefore off on this connection, and a thread of
this module runs a passive one (it neither waits for nor blocks writers) after every
:data:`CHECKPOINT_EVERY` decisions committed here.

SQLite starts the log file over only once a checkpoint has copied all of it and no reader still
uses it. A passive checkpoint running beside a steady stream of commits never catches up, so the
log grew without bound: 1.2 GB in 30 s of Decide load on two serving processes, 290 MB in 20 s on
one, where the writer thread's own automatic checkpoints had kept it at 16 MB. Once the log holds
more than :data:`WAL_LIMIT` bytes of pages, the thread therefore asks for a RESTART checkpoint: it
waits (at most :data:`RESTART_WAIT` seconds) until no commit is in progress and every reader has
the latest snapshot, copies what is left, and the next commit writes the file from its start again.
Writers wait meanwhile: commits here decline (the event loop tries again, then hands the batch to
the writer thread, which waits). After one that could not finish, the next waits a while, longer
after each further one (up to :data:`RESTART_BACKOFF` seconds).

The file is reused, not emptied: truncating 64 MB took 8 ms here, and writers waited through it
(TRUNCATE checkpoints stalled them 20-45 ms each, under webhook load about every 0.75 s). A passive
checkpoint just before the restart copies most of what came in since the last one, so that the
writers wait for little more than a sync: 0.1-22 ms, median 5 (benchmarks/README.md, "The log
started over instead of emptied"). A file already past twice the limit (grown by an older gate,
or while a reader held the log) is emptied instead.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gate.errors import Conflict
from gate.store._engine import sqlite_pragmas
from gate.store._errors import store_error

log = logging.getLogger("gate.store")

# Decisions committed here between two passive checkpoints: ~2-4 MB of log (a pipeline
# decision's row is ~3 KB, an admission review's ~7 KB, with their pages), about what SQLite's
# own automatic checkpoint lets accumulate (1,000 pages).
CHECKPOINT_EVERY = 512

# Past this many bytes of pages in the log, the checkpoint thread has SQLite start the file over
# (see the module docstring): 16,000 pages of 4 KiB (4,000 of a database on an older gate's 16 KiB
# pages), where SQLite's own automatic checkpoint runs at 1,000.
WAL_LIMIT = 64 * 1024 * 1024
# Seconds the restarting checkpoint waits for commits and readers: writers wait as long, so it is
# short. After one that could not finish, the next comes RESTART_WAIT seconds later at the
# earliest, and twice as long after each further one, up to RESTART_BACKOFF: a steady stream of
# short reads makes an attempt miss now and then (the log then grew for 5 s at the full write
# rate), while a long read stalls writers ever less often, in the end 5 % of the time.
RESTART_WAIT = 0.25
RESTART_BACKOFF = 5.0

# The pool's connections' settings, but never waiting for a lock and no checkpoint at commit.
_PRAGMAS = (*sqlite_pragmas(busy_ms=0), "wal_autocheckpoint = 0")
_UNIQUE = (sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE)


class NoWaitCommits:
    """One SQLite connection that commits decision batches or declines at once; see the module."""

    def __init__(
        self,
        path: str,
        insert_decisions: str,
        insert_links: str,
        *,
        checkpoint_every: int = CHECKPOINT_EVERY,
        wal_limit: int = WAL_LIMIT,
    ) -> None:
        self._path = path
        self._insert_decisions = insert_decisions
        self._insert_links = insert_links
        self._checkpoint_every = checkpoint_every
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._since_checkpoint = 0
        self._checkpoints = _Checkpoints(path, wal_limit)
        self._closed = False

    def commit(self, rows: Sequence[tuple[Any, ...]], links: Sequence[tuple[str, str]], what: str) -> bool:
        """Insert ``rows`` into decisions and ``links`` into decision_artifacts in one transaction.

        Returns False, having changed nothing, when that would mean waiting for a lock.

        Raises:
            Conflict: a decision with one of these ids exists (``what`` names it).
            StoreUnavailable: the database failed otherwise.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._closed:
                return False
            connection = self._connection or self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return False
                raise store_error(error) from error
            try:
                connection.executemany(self._insert_decisions, rows)
                if links:
                    connection.executemany(self._insert_links, links)
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                connection.execute("ROLLBACK")
                if isinstance(error, sqlite3.IntegrityError) and error.sqlite_errorcode in _UNIQUE:
                    raise Conflict(f"decision {what!r} already exists") from error
                raise store_error(error) from error
            self._since_checkpoint += len(rows)
            if self._since_checkpoint >= self._checkpoint_every:
                self._since_checkpoint = 0
                self._checkpoints.request()
            return True
        except sqlite3.Error as error:  # connecting, or a ROLLBACK that failed
            raise store_error(error) from error
        finally:
            self._lock.release()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level None: the module issues no BEGIN of its own; this class does.
        connection = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        for pragma in _PRAGMAS:
            connection.execute(f"PRAGMA {pragma}")
        self._connection = connection
        return connection

    def close(self) -> None:
        """Close the connection (waiting for a commit in progress) and stop the checkpoint thread."""
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self._checkpoints.close()


class _Checkpoints:
    """A thread that runs a passive WAL checkpoint when asked (starting the log over past its limit).

    Started at the first request.
    """

    def __init__(self, path: str, wal_limit: int) -> None:
        self._path = path
        self._log = Path(f"{path}-wal")
        self._wal_limit = wal_limit
        self._restart_after = 0.0  # time.monotonic() reading: no restart before it
        self._missed = 0  # restarts that could not finish since the last one that did
        self._wanted = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def request(self) -> None:
        with self._start:
            if self._thread is None and not self._stop:
                thread = threading.Thread(target=self._run, name="gate-checkpoints", daemon=True)
                try:
                    thread.start()
                except RuntimeError as error:  # no thread to be had: the next request tries again
                    log.warning("cannot start the WAL checkpoint thread: %s", error)
                    return
                self._thread = thread
        self._wanted.set()

    def _run(self) -> None:
        # A passive checkpoint never waits; the busy timeout bounds the restarting one's wait.
        connection = sqlite3.connect(
            self._path, timeout=RESTART_WAIT, isolation_level=None, check_same_thread=False
        )
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stop:
                    return
                try:
                    self._checkpoint(connection)
                except sqlite3.Error as error:
                    # The next request tries again; the writer thread's own automatic checkpoints
                    # still run meanwhile.
                    log.warning("WAL checkpoint of %s failed: %s", self._path, error)
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        # The frames the log holds (-1 outside WAL mode), counted since it last started over.
        frames = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        page_bytes = connection.execute("PRAGMA page_size").fetchone()[0]
        oversized = self._log_bytes() > 2 * self._wal_limit
        if not (frames * page_bytes > self._wal_limit or oversized) or time.monotonic() < self._restart_after:
            return
        # What came in during that one: copied now, without waiting, the writers then wait for less.
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        mode = "TRUNCATE" if oversized else "RESTART"
        if not connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0]:
            self._missed = 0
            return
        delay = min(RESTART_BACKOFF, RESTART_WAIT * 2**self._missed)
        self._missed += 1
        self._restart_after = time.monotonic() + delay
        log.debug("starting the WAL of %s over waited in vain; tried again in %g s", self._path, delay)

    def _log_bytes(self) -> int:
        try:
            return self._log.stat().st_size
        except OSError:  # no log file (yet)
            return 0

    def close(self) -> None:
        with self._start:
            self._stop = True
            thread = self._thread
        if thread is not None:
            self._wanted.set()
            thread.join(10)
