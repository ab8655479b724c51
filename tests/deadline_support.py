"""Running a piece of test work that might hang, so that the test fails instead of the suite."""

from __future__ import annotations

import threading
from collections.abc import Callable


def within(seconds: float, work: Callable[[], object]) -> object:
    """``work()``'s result, failing the test (not hanging it) if it takes longer than ``seconds``."""
    outcome: list[object] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # handed to the test's thread below
            failure.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    if failure:
        raise failure[0]
    return outcome[0]
