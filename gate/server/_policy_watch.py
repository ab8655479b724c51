"""``gate serve`` follows its policy sources: a changed file reloads the bundle, a bad one is refused.

Polling (inode, size and modification time of every policy file, following
symlinks) rather than inotify: it sees kubelet's ConfigMap updates, which
swap a ``..data`` symlink to a new directory without touching the visible
file names, and it works the same on every filesystem a volume may be. Each
replica watches its own mount, so an update reaches every replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from gate._files import file_identity
from gate.core import Gate
from gate.errors import EvidenceError
from gate.server._metrics import POLICY_RELOAD_ERRORS, POLICY_RELOADS

log = logging.getLogger("gate.policies")

# Files stamped at most (a policy directory holds tens; this bounds a mistaken mount of a big tree).
MAX_WATCHED_FILES = 10_000

Stamp = tuple[tuple[str, ...], ...]


def sources_stamp(sources: Sequence[Path]) -> Stamp:
    """What the sources hold now: the policy files the loader would read, each with its identity.

    Any change of a file's content or of which file a name leads to (a rewrite,
    a rename over it, a symlink swap) changes the stamp.
    """
    from policies import PolicyLoadError
    from policies._loader import policy_files

    entries: list[tuple[str, ...]] = []
    for source in sources:
        try:
            files = policy_files([source])
        except PolicyLoadError as error:
            entries.append((str(source), "unreadable", error.problem))
            continue
        except OSError as error:
            entries.append((str(source), "unreadable", str(error.errno)))
            continue
        for path, _explicit in files[:MAX_WATCHED_FILES]:
            try:
                identity = file_identity(path)
            except OSError as error:
                entries.append((str(path), "unreadable", str(error.errno)))
                continue
            entries.append((str(path), *map(str, identity)))
    return tuple(entries)


class PolicyWatch:
    """Reloads a core's policies when its sources change; a failed load keeps the bundle in force."""

    def __init__(self, core: Gate, interval: float, *, initial: Stamp | None = None) -> None:
        """Watch ``core.policy_sources`` every ``interval`` seconds.

        ``initial`` is the sources' stamp when the bundle in force was loaded (None: stamp them now).
        """
        self._core = core
        self._interval = interval
        self._initial = initial

    async def run(self) -> None:
        """Poll until cancelled."""
        sources = self._core.policy_sources
        last = self._initial
        if last is None:
            last = await asyncio.to_thread(sources_stamp, sources)
        while True:
            await asyncio.sleep(self._interval)
            try:
                stamp = await asyncio.to_thread(sources_stamp, sources)
            except Exception:
                log.exception("reading the policy sources failed; trying again in %g s", self._interval)
                continue
            if stamp == last:
                continue
            last = stamp
            try:
                await asyncio.to_thread(self.reload)
            except Exception:  # a bug below must not end the watch: later changes still count
                log.exception("policy reload failed unexpectedly; watching on")

    def reload(self) -> bool:
        """Load the sources now; on failure log the file, line and field and keep the bundle in force.

        An unexpected error (a bug, not a bad file) is handled the same way: counted, logged with
        its traceback and shown as the reload error, the bundle in force kept.
        """
        core = self._core
        in_force = core.policies
        previous = in_force.digest
        try:
            bundle = core.reload_policies()
        except EvidenceError as error:
            POLICY_RELOAD_ERRORS.inc()
            log.error(
                "policy reload failed; bundle %s stays in force: %s",
                previous,
                error.message,
                extra={
                    "source": getattr(error, "source", ""),
                    "line": getattr(error, "line", None),
                    "field": getattr(error, "field", ""),
                },
            )
            return False
        except Exception as error:
            if core.policies is not in_force:
                # Loaded and in force: what failed came after (telling the worker processes).
                log.exception("policies reloaded, but a listener of the reload failed")
                return True
            POLICY_RELOAD_ERRORS.inc()
            problem = f"unexpected {type(error).__name__} while loading the policy sources: {error}"
            core.policy_reload_error = (problem[:1024], core.clock())
            log.exception("policy reload failed; bundle %s stays in force: %s", previous, problem[:1024])
            return False
        POLICY_RELOADS.inc()
        log.info(
            "policies reloaded",
            extra={"bundle_digest": bundle.digest, "previous": previous, "policies": len(bundle.policies)},
        )
        return True
