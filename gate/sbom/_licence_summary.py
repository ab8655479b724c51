"""Which licences ship in an SBOM: components per licence, and those with none stated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gate.model import Component


@dataclass(frozen=True, slots=True)
class LicenceCount:
    """One licence (SPDX id, expression or free-text name) and the components that carry it."""

    license: str
    components: tuple[Component, ...]

    @property
    def count(self) -> int:
        """How many components carry it."""
        return len(self.components)


@dataclass(frozen=True, slots=True)
class LicenceSummary:
    """Licences of one SBOM, most common first, plus the components without any.

    A component with several licence entries counts once under each of them
    (CycloneDX does not say whether several entries mean "and" or "or"); an
    expression such as ``MIT OR Apache-2.0`` is one entry.
    """

    sbom_id: str
    component_count: int
    licenses: tuple[LicenceCount, ...]
    unknown: tuple[Component, ...]


def summarize(sbom_id: str, components: Sequence[Component]) -> LicenceSummary:
    """Group ``components`` by licence."""
    grouped: dict[str, list[Component]] = {}
    unknown: list[Component] = []
    for component in components:
        licences = [value for value in component.licenses if value.strip()]
        if not licences:
            unknown.append(component)
        for value in dict.fromkeys(licences):
            grouped.setdefault(value, []).append(component)
    ordered = sorted(grouped.items(), key=lambda item: (-len(item[1]), item[0]))
    return LicenceSummary(
        sbom_id=sbom_id,
        component_count=len(components),
        licenses=tuple(LicenceCount(name, tuple(items)) for name, items in ordered),
        unknown=tuple(unknown),
    )
