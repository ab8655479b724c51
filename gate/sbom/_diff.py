"""What changed between two SBOMs, by normalised package identity.

Components are matched by :func:`gate.sbom._purl_key.normalise` identity (so
``pkg:deb/debian/bsdutils@2.38.1?epoch=1`` from one tool and
``pkg:deb/debian/bsdutils@1:2.38.1`` from another are the same package in
the same version), falling back to type, group and name without a purl.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gate.model import Component
from gate.sbom._purl_key import fallback_identity, normalise


@dataclass(frozen=True, slots=True)
class ComponentChange:
    """One package in both SBOMs whose version or licences differ."""

    base: Component
    head: Component


@dataclass(frozen=True, slots=True)
class SbomDiff:
    """Components only in head (added), only in base (removed), and changed ones.

    Each list is sorted by identity, then version.
    """

    added: tuple[Component, ...]
    removed: tuple[Component, ...]
    changed: tuple[ComponentChange, ...]


def identity_of(component: Component) -> tuple[str, str]:
    """The (identity, version) a component is compared by."""
    key = normalise(component.purl) if component.purl else None
    if key is None:
        return fallback_identity(component.type, component.group, component.name), component.version
    return key.identity, key.version


def _index(components: Sequence[Component]) -> dict[str, dict[str, Component]]:
    index: dict[str, dict[str, Component]] = {}
    for component in components:
        identity, version = identity_of(component)
        # The same package found twice (two paths, two tools) is one entry.
        index.setdefault(identity, {}).setdefault(version, component)
    return index


def diff(base: Sequence[Component], head: Sequence[Component]) -> SbomDiff:
    """Compare two component lists.

    A package present on both sides in exactly one version each, and that
    version or its licences differ, is *changed*; a package in several
    versions on either side has its versions added and removed one by one.
    """
    before, after = _index(base), _index(head)
    added: list[Component] = []
    removed: list[Component] = []
    changed: list[ComponentChange] = []
    for identity in sorted(before.keys() | after.keys()):
        old, new = before.get(identity, {}), after.get(identity, {})
        gone = [old[v] for v in sorted(old.keys() - new.keys())]
        came = [new[v] for v in sorted(new.keys() - old.keys())]
        if len(gone) == 1 and len(came) == 1 and len(old) == 1 and len(new) == 1:
            changed.append(ComponentChange(gone[0], came[0]))
            continue
        removed.extend(gone)
        added.extend(came)
        for version in sorted(old.keys() & new.keys()):
            if sorted(old[version].licenses) != sorted(new[version].licenses):
                changed.append(ComponentChange(old[version], new[version]))
    return SbomDiff(added=tuple(added), removed=tuple(removed), changed=tuple(changed))
