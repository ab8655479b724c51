"""Fixtures for the SBOM generation tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.sbom import GeneratedSbom, Subject, generate

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "sbom"
FIXED_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def subject() -> Subject:
    """An image subject with a fixed digest."""
    return Subject("registry.example/team/app", "sha256:" + "5" * 64, version="1.4.2")


@pytest.fixture
def generate_asset(subject: Subject) -> Callable[[str], GeneratedSbom]:
    """Generate an SBOM for one folder under tests/assets/sbom, with a fixed timestamp."""

    def run(name: str) -> GeneratedSbom:
        return generate(ASSETS / name, subject=subject, timestamp=FIXED_TIME)

    return run


def by_purl(sbom: GeneratedSbom) -> dict[str, object]:
    """Components keyed by purl without qualifiers."""
    return {c.component.purl.split("?")[0]: c for c in sbom.components if c.component.purl}
