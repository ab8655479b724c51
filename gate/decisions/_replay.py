"""Replayed AdmissionReviews: a uid answered before comes back.

The API server gives every admission request its own uid and sends the same
bytes again only when it retries a call whose answer it did not get. A uid that
returns with *different* content is therefore not a retry: it is a captured
review replayed with changes, or a client forging uids. Gate answers a retry
with the answer it already gave (recorded once), and refuses a changed replay
with Conflict and an entry on the ``gate.audit.replay`` log.

The memory is per process (bounded in entries and time): a replay sent to
another replica within the window is not caught here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gate.errors import Conflict

audit = logging.getLogger("gate.audit.replay")


@dataclass(frozen=True, slots=True)
class Answered:
    """What was answered to a uid: enough to answer a retry the same way."""

    decision_id: str
    allowed: bool
    code: int
    reason: str
    warnings: tuple[str, ...]
    response: bytes


# Marks a uid whose first review is still being evaluated.
_PENDING = None


class ReplayGuard:
    """Remembers the uids of recent reviews with a fingerprint of their bytes.

    Args:
        window: Seconds a uid is remembered (retries come within the webhook's
            timeout, at most 30 s).
        capacity: Most uids remembered; the oldest are forgotten first.
    """

    def __init__(
        self, window: float = 300.0, capacity: int = 65_536, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        # uid -> (seen at, fingerprint, answer or _PENDING); oldest first.
        self._seen: OrderedDict[str, tuple[float, bytes, Answered | None]] = OrderedDict()

    def check(self, uid: str, fingerprint: bytes, *, caller: str = "") -> Answered | bool:
        """Whether ``uid`` is new (True), a retry being answered already (False), or its answer.

        Raises:
            Conflict: ``uid`` was seen within the window with other content.
        """
        now = self._clock()
        with self._lock:
            self._expire(now)
            earlier = self._seen.get(uid)
            if earlier is None:
                self._seen[uid] = (now, fingerprint, _PENDING)
                if len(self._seen) > self._capacity:
                    self._seen.popitem(last=False)
                return True
        seen_at, seen_fingerprint, answer = earlier
        if seen_fingerprint != fingerprint:
            audit.warning(
                "refused a replayed admission review: uid %s was answered %.1f s ago for other content",
                uid,
                now - seen_at,
                extra={"uid": uid, "caller": caller},
            )
            raise Conflict(
                f"request.uid: uid {uid} was already reviewed {now - seen_at:.1f} s ago "
                "with different content; expected a new uid for a new request "
                "(a retry sends the same bytes)",
            )
        return answer if answer is not None else False

    def answered(self, uid: str, fingerprint: bytes, answer: Answered) -> None:
        """Keep the answer given to ``uid`` for its retries."""
        with self._lock:
            earlier = self._seen.get(uid)
            if earlier is not None and earlier[1] == fingerprint:
                self._seen[uid] = (earlier[0], fingerprint, answer)

    def forget(self, uid: str, fingerprint: bytes) -> None:
        """Drop a uid whose review was not answered (so that a retry is evaluated afresh)."""
        with self._lock:
            earlier = self._seen.get(uid)
            if earlier is not None and earlier[1] == fingerprint and earlier[2] is None:
                del self._seen[uid]

    def _expire(self, now: float) -> None:
        horizon = now - self._window
        seen = self._seen
        while seen:
            uid, (seen_at, _, _) = next(iter(seen.items()))
            if seen_at >= horizon:
                return
            del seen[uid]
