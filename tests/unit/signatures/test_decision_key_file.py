"""gate's own decision key: created once, private, and never read half-written."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from gate._signature_service import load_or_create_signing_key
from gate.signatures import load_private_key


def test_a_new_key_is_a_private_p256_pem_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "decisions.pem"

    pem = load_or_create_signing_key(path)

    assert path.read_bytes() == pem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    load_private_key(pem)  # a complete key, not a prefix of one
    assert load_or_create_signing_key(path) == pem
    assert sorted(p.name for p in path.parent.iterdir()) == ["decisions.pem"]


def test_processes_starting_at_once_all_get_the_one_key_that_was_written(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "decisions.pem"
    start = threading.Barrier(8)
    got: list[bytes] = []

    def create() -> None:
        start.wait()
        got.append(load_or_create_signing_key(path))

    racers = [threading.Thread(target=create) for _ in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()

    assert len(got) == 8
    assert set(got) == {path.read_bytes()}
    load_private_key(got[0])
    assert sorted(p.name for p in path.parent.iterdir()) == ["decisions.pem"]
