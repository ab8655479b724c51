"""The SBOM component index on both backends: normalised purl search, version ranges, paging, bulk loads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gate.core import Gate
from gate.errors import Conflict, InvalidArgument
from gate.model import Component, ComponentMatch, Page, Sbom, SbomFormat
from gate.store import ComponentQuery, EvidenceStore, NewSbom

START = datetime(2026, 1, 1, tzinfo=UTC)


def record(number: int, components: int) -> Sbom:
    return Sbom(
        id=f"00000000-0000-4000-8000-{number:012d}",
        artifact_digest="sha256:" + f"{number:064x}",
        format=SbomFormat.CYCLONEDX_JSON,
        spec_version="1.6",
        generator="test",
        created_at=START + timedelta(seconds=number),
        component_count=components,
        document_digest="sha256:" + "0" * 64,
    )


def lib(name: str, version: str, purl: str, *licenses: str) -> Component:
    return Component(type="library", name=name, version=version, purl=purl, licenses=licenses)


# Three tools' spellings of the same packages, plus other versions.
SBOMS = [
    [
        lib(
            "bsdutils", "1:2.38.1-5+deb12u3", "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?distro=debian-12"
        ),
        lib("requests", "2.30.0", "pkg:pypi/requests@2.30.0", "Apache-2.0"),
        lib("musl", "1.2.5-r0", "pkg:apk/alpine/musl@1.2.5-r0?distro=3.20.3", "MIT"),
    ],
    [
        lib(
            "bsdutils",
            "2.38.1-5+deb12u3",
            "pkg:deb/debian/bsdutils@2.38.1-5%2Bdeb12u3?distro=debian-12.15&epoch=1",
        ),
        lib("Requests", "2.31.0", "pkg:pypi/Requests@2.31.0"),
        lib("code-frame", "7.23.5", "pkg:npm/%40babel/code-frame@7.23.5"),
    ],
    [
        lib("bsdutils", "2.36.1-8", "pkg:deb/debian/bsdutils@1:2.36.1-8?distro=debian-11"),
        lib("requests", "2.31.0rc1", "pkg:pypi/requests@2.31.0rc1"),
        lib("@babel/code-frame", "7.24.0", "pkg:npm/@babel/code-frame@7.24.0"),
        lib("musl", "1.2.4_git20230717-r4", "pkg:apk/alpine/musl@1.2.4_git20230717-r4"),
        lib("no-purl", "1.0", ""),
    ],
]


@pytest.fixture
def loaded(store: EvidenceStore) -> EvidenceStore:
    store.add_sboms([NewSbom(record(n, len(c)), f'{{"n":{n}}}'.encode(), c) for n, c in enumerate(SBOMS)])
    return store


def found(page: Page[ComponentMatch]) -> list[tuple[str, str]]:
    return [(m.component.version, m.sbom_id[-1]) for m in page.items]


def test_one_purl_finds_a_package_however_each_tool_spelled_it(loaded: EvidenceStore) -> None:
    gate = Gate(loaded)
    page = gate.search_components(ComponentQuery(purl="pkg:deb/debian/bsdutils"))
    # Ordered by identity, normalised version text, SBOM.
    assert found(page) == [("2.36.1-8", "2"), ("1:2.38.1-5+deb12u3", "0"), ("2.38.1-5+deb12u3", "1")]
    # The original purl is kept, the epoch qualifier and the version epoch both match.
    exact = gate.search_components(ComponentQuery(purl="pkg:deb/debian/bsdutils@2.38.1-5+deb12u3?epoch=1"))
    assert [m.component.purl for m in exact.items] == [SBOMS[0][0].purl, SBOMS[1][0].purl]
    scoped = gate.search_components(ComponentQuery(purl="pkg:npm/%40babel/"))
    assert found(scoped) == [("7.23.5", "1"), ("7.24.0", "2")]
    assert found(gate.search_components(ComponentQuery(purl="pkg:pypi/REQUESTS"))) == [
        ("2.30.0", "0"),
        ("2.31.0", "1"),
        ("2.31.0rc1", "2"),
    ]


@pytest.mark.parametrize(
    ("purl", "version_range", "expected"),
    [
        ("pkg:pypi/requests", ">=2.0,<2.31.0", [("2.30.0", "0"), ("2.31.0rc1", "2")]),
        ("pkg:pypi/requests", "==2.31", [("2.31.0", "1")]),
        ("pkg:pypi/requests", "<2.30|>=2.31.0", [("2.31.0", "1")]),
        ("pkg:deb/debian/bsdutils", ">=1:2.37", [("1:2.38.1-5+deb12u3", "0"), ("2.38.1-5+deb12u3", "1")]),
        ("pkg:deb/debian/bsdutils", "<1:2.37", [("2.36.1-8", "2")]),
        ("pkg:apk/alpine/musl", ">=1.2.5", [("1.2.5-r0", "0")]),
        ("pkg:apk/alpine/musl", "<1.2.5_rc1", [("1.2.4_git20230717-r4", "2")]),
        ("pkg:npm/@babel/code-frame", ">=7.24.0-beta.1", [("7.24.0", "2")]),
        ("pkg:npm/@babel/code-fram", ">=0", []),  # with a range the purl names one package
        ("pkg:pypi/requests", ">=9", []),
    ],
)
def test_version_ranges_use_each_ecosystems_order(
    loaded: EvidenceStore, purl: str, version_range: str, expected: list[tuple[str, str]]
) -> None:
    page = Gate(loaded).search_components(ComponentQuery(purl=purl), version_range=version_range)
    assert found(page) == expected


def test_name_search_with_a_range_compares_in_each_components_ecosystem(loaded: EvidenceStore) -> None:
    page = Gate(loaded).search_components(ComponentQuery(name="*code-frame"), version_range=">=7.24")
    assert found(page) == [("7.24.0", "2")]
    page = Gate(loaded).search_components(ComponentQuery(name="no-purl"), version_range=">=1.0")
    assert found(page) == [("1.0", "2")]


def test_pages_of_a_range_search_follow_each_other_without_gaps(store: EvidenceStore) -> None:
    items = [
        NewSbom(record(n, 4), b"{}", [lib("x", f"1.{n % 7}.0", f"pkg:npm/x@1.{n % 7}.0")] * 4)
        for n in range(40)
    ]
    store.add_sboms(items)
    gate = Gate(store)
    seen: list[tuple[str, str]] = []
    token = ""
    while True:
        page = gate.search_components(
            ComponentQuery(purl="pkg:npm/x", page_size=7, page_token=token), version_range=">=1.2.0,<1.5.0"
        )
        seen.extend((m.sbom_id, m.component.version) for m in page.items)
        token = page.next_token
        if not token:
            break
    expected = [(record(n, 4).id, f"1.{n % 7}.0") for n in range(40) if 2 <= n % 7 < 5 for _ in range(4)]
    # Purl pages are ordered by version text, then SBOM.
    assert seen == sorted(expected, key=lambda item: (item[1], item[0]))
    # The token of a range search is not valid for a name search.
    page = gate.search_components(ComponentQuery(purl="pkg:npm/x", page_size=7), version_range=">=1.2.0")
    with pytest.raises(InvalidArgument, match="page_token"):
        gate.search_components(ComponentQuery(name="x", page_token=page.next_token))


def test_documents_are_stored_compressed_and_read_back_verbatim(loaded: EvidenceStore) -> None:
    assert loaded.get_sbom_document(record(1, 0).id) == b'{"n":1}'
    big = b'{"components":[' + b",".join(b'{"name":"x"}' for _ in range(20_000)) + b"]}"
    loaded.add_sbom(record(7, 0), big, [])
    assert loaded.get_sbom_document(record(7, 0).id) == big


def test_a_batch_with_a_stored_id_is_refused_whole(loaded: EvidenceStore) -> None:
    with pytest.raises(Conflict):
        loaded.add_sboms([NewSbom(record(8, 0), b"{}", []), NewSbom(record(0, 0), b"{}", [])])
    assert loaded.get_sbom(record(8, 0).id) is None
