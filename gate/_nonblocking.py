"""Work on an event loop that must not wait: answered from memory, or refused with :class:`WouldBlock`.

The webhook evaluates a small review on its event loop when everything the review
needs (evidence, waivers, verifications, room in the decision queue) is already in
memory: that spares the hand-offs to a review thread and back, which cost more CPU
than the evaluation itself. Nothing on that path may wait for a database, a
registry or a full queue, since the loop serves every other connection meanwhile.

The ports that would wait call :func:`may_block` first. Inside :func:`nonblocking`
it raises :class:`WouldBlock`; the caller drops what it computed (nothing has been
recorded or sent) and runs the whole call again where waiting is allowed. Outside
the block :func:`may_block` does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_ACTIVE: ContextVar[bool] = ContextVar("gate_nonblocking", default=False)


class WouldBlock(Exception):
    """A call inside :func:`nonblocking` needed I/O or a wait; run it again where it may block.

    Not a :class:`~gate.errors.GateError`: it never reaches a caller of gate, only the
    code that opened the :func:`nonblocking` block.
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not in memory")
        self.what = what


@contextlib.contextmanager
def nonblocking() -> Iterator[None]:
    """Within the block, :func:`may_block` raises :class:`WouldBlock` instead of letting a port wait."""
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def may_block(what: str) -> None:
    """Called by a port just before it would wait on ``what`` (a store, a registry, a queue).

    Raises:
        WouldBlock: inside :func:`nonblocking`.
    """
    if _ACTIVE.get():
        raise WouldBlock(what)
