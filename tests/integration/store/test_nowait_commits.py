"""Decisions committed without waiting (decisions.writer loop): a SQLite file commits or declines at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from gate.errors import Conflict
from gate.model import Decision
from gate.store import SqlStore, open_store
from gate.store._nowait import WAL_LIMIT, NoWaitCommits
from tests.unit.decisions.test_recorder import decision as recorded


def decision(n: int) -> Decision:
    """The recorder tests' decision, odd ones denied, each naming an image (a decision_artifacts row)."""
    return replace(recorded(n), allowed=n % 2 == 0, artifact_digests=("sha256:" + f"{n:x}" * 64,))


def log_database(tmp_path: Path) -> Path:
    """A WAL database with the two tables NoWaitCommits writes, cut down to a few columns."""
    path = tmp_path / "log.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE decisions (id TEXT PRIMARY KEY, body TEXT)")
        setup.execute("CREATE TABLE decision_artifacts (digest TEXT, decision_id TEXT)")
        setup.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def log_commits(path: Path, *, checkpoint_every: int, wal_limit: int = WAL_LIMIT) -> NoWaitCommits:
    return NoWaitCommits(
        str(path),
        "INSERT INTO decisions VALUES (?, ?)",
        "INSERT INTO decision_artifacts VALUES (?, ?)",
        checkpoint_every=checkpoint_every,
        wal_limit=wal_limit,
    )


def log_generation(log: Path) -> int:
    """The log's checkpoint sequence number (its header's bytes 12-15): one more each time it starts over."""
    with log.open("rb") as header:
        return int.from_bytes(header.read(16)[12:16], "big")


def rows_stored(path: Path) -> int:
    """How many decision rows the database at ``path`` holds, read through a connection of its own."""
    with sqlite3.connect(path) as check:
        count: int = check.execute("SELECT count(*) FROM decisions").fetchone()[0]
    return count


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``condition`` until it holds or ``seconds`` pass (the checkpoint thread works on its own)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def commit_until_taken(commits: NoWaitCommits, n: int) -> float:
    """Commit row ``n`` (8 KB), again while declined (the log being started over); seconds it was declined."""
    declined_at = None
    while not commits.commit([(f"id-{n}", "x" * 8000)], [], f"id-{n}"):
        declined_at = declined_at or time.monotonic()
        time.sleep(0.001)
    return 0.0 if declined_at is None else time.monotonic() - declined_at


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    opened = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    assert isinstance(opened, SqlStore)
    return opened


def test_a_batch_commits_without_waiting_and_reads_back_as_any_decision(store: SqlStore) -> None:
    try:
        assert store.commits_without_waiting
        assert store.add_decisions_now([decision(1), decision(2)])
        kept = store.get_decision(decision(2).id)
        assert kept is not None
        assert (kept.allowed, kept.request, kept.artifact_digests) == (
            True,
            {"uid": "2"},
            ("sha256:" + "2" * 64,),
        )
        denied = store.get_decision(decision(1).id)
        assert denied is not None
        assert denied.allowed is False
    finally:
        store.close()


def test_while_another_connection_holds_the_write_lock_it_declines_at_once(
    store: SqlStore, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "gate.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # a gate command or a second serving process writing
        started = time.monotonic()
        assert store.add_decisions_now([decision(3)]) is False
        assert time.monotonic() - started < 0.5, "waited for the lock"
        other.execute("COMMIT")
        assert store.get_decision(decision(3).id) is None, "declined, yet stored"
        assert store.add_decisions_now([decision(3)])
        assert store.get_decision(decision(3).id) is not None
    finally:
        other.close()
        store.close()


def test_a_decision_id_stored_before_is_a_conflict_and_nothing_of_the_batch_is_kept(store: SqlStore) -> None:
    try:
        store.add_decisions([decision(4)])
        with pytest.raises(Conflict, match=r"already exists"):
            store.add_decisions_now([decision(5), decision(4)])
        assert store.get_decision(decision(5).id) is None
        assert store.add_decisions_now([decision(5)]), "the connection was left in a transaction"
    finally:
        store.close()


def test_an_in_memory_database_never_commits_without_waiting() -> None:
    memory = open_store("sqlite://")
    assert isinstance(memory, SqlStore)
    try:
        assert not memory.commits_without_waiting
        assert memory.add_decisions_now([decision(6)]) is False
        assert memory.get_decision(decision(6).id) is None
    finally:
        memory.close()


def test_the_log_is_checkpointed_by_a_thread_after_enough_commits(tmp_path: Path) -> None:
    # Commits here never checkpoint themselves (that syncs the file: milliseconds on a loop);
    # every few decisions a thread copies the log into the database file.
    path = log_database(tmp_path)
    size = path.stat().st_size
    commits = log_commits(path, checkpoint_every=40)
    try:
        for n in range(39):
            assert commits.commit([(f"id-{n}", "x" * 4000)], [], f"id-{n}")
        assert path.stat().st_size == size, "a commit checkpointed on its own"
        assert commits.commit([(f"id-{39}", "x" * 4000)], [("sha256:1", "id-39")], "id-39")
        wait_for(lambda: path.stat().st_size != size)
        assert path.stat().st_size > size + 39 * 4000, "the log was not copied into the database file"
    finally:
        commits.close()
    assert rows_stored(path) == 40


def test_past_its_limit_the_log_file_is_written_from_its_start_again_though_reads_never_stop(
    tmp_path: Path,
) -> None:
    # SQLite reuses the log from its start only after a checkpoint copied all of it. A passive one
    # copies no further than the oldest snapshot a reader holds, so while reads and commits overlap
    # (an auditor's queries beside the decisions of a busy gate) it never does, and the file only
    # grew. A restarting checkpoint waits for the readers of the moment, and then it does.
    path = log_database(tmp_path)
    log = Path(f"{path}-wal")
    limit = 256 * 1024
    reading = threading.Event()
    reading.set()

    def reads() -> None:
        with sqlite3.connect(path, isolation_level=None) as reader:
            while reading.is_set():
                reader.execute("BEGIN")
                reader.execute("SELECT count(*) FROM decisions").fetchone()
                time.sleep(0.02)
                reader.execute("COMMIT")

    reader = threading.Thread(target=reads, daemon=True)
    commits = log_commits(path, checkpoint_every=20, wal_limit=limit)
    reader.start()
    try:
        largest = 0
        starts: set[int] = set()
        for n in range(1000):  # 8 MB of rows, as decisions come
            commit_until_taken(commits, n)
            largest = max(largest, log.stat().st_size)
            starts.add(log_generation(log))
            time.sleep(0.001)
    finally:
        reading.clear()
        reader.join(10)
        commits.close()
    assert largest > limit, "the log never passed its limit: nothing was tested"
    # ~20 MB of pages went into the log: past its limit every 15 commits or so.
    assert len(starts) >= 10, f"the log started over {len(starts) - 1} times"
    # Past the limit by what commits add until a restart that missed the readers is tried again.
    assert largest <= 32 * limit, f"the log file grew to {largest} bytes"
    assert rows_stored(path) == 1000


def test_a_log_file_already_past_twice_its_limit_is_emptied(tmp_path: Path) -> None:
    # Started over, a log keeps its size: one grown large before (by an older gate, or while a
    # reader held it) would keep that disk space for good.
    path = log_database(tmp_path)
    log = Path(f"{path}-wal")
    with sqlite3.connect(path, isolation_level=None) as grower:
        grower.execute("PRAGMA wal_autocheckpoint = 0")
        grower.execute("BEGIN")
        rows = ((f"old-{n}", "x" * 8000) for n in range(200))
        grower.executemany("INSERT INTO decisions VALUES (?, ?)", rows)
        grower.execute("COMMIT")
    grown = log.stat().st_size
    limit = 256 * 1024
    assert grown > 2 * limit, f"the log file holds {grown} bytes: nothing to test"
    commits = log_commits(path, checkpoint_every=5, wal_limit=limit)
    try:
        for n in range(5):
            commit_until_taken(commits, n)
        wait_for(lambda: log.stat().st_size <= limit)
        assert log.stat().st_size <= limit, f"the log file kept {log.stat().st_size} of {grown} bytes"
    finally:
        commits.close()
    assert rows_stored(path) == 205


def test_a_long_read_that_keeps_the_log_from_starting_over_stalls_writers_ever_less_often(
    tmp_path: Path,
) -> None:
    path = log_database(tmp_path)
    commits = log_commits(path, checkpoint_every=10, wal_limit=64 * 1024)
    for n in range(40):  # the log past its limit before the reader starts
        commit_until_taken(commits, n)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM decisions").fetchone()  # a snapshot held: an auditor's export
        stalled = 0.0
        for n in range(40, 240):  # ~20 checkpoints asked for over ~1 s, each could start the log over
            stalled += commit_until_taken(commits, n)
            time.sleep(0.005)  # decisions as they come, not in one burst
        # Each attempt to start the log over holds writers for up to RESTART_WAIT (0.25 s); after
        # one that failed, the next waits 0.25 s, then 0.5, 1, 2: three or four attempts in all
        # here, against one per checkpoint asked for (~5 s of stalls) without that wait.
        assert stalled < 1.5, f"writers stalled {stalled:.2f} s in all"
    finally:
        reader.close()
        commits.close()
