"""Version orderings per ecosystem and version ranges."""

from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate.errors import InvalidArgument
from gate.sbom._versions import compare, ordering_of, parse_range, sort_key

# Each list is in ascending order, as the ecosystem's own tool sorts it
# (dpkg --compare-versions, apk version -t, PEP 440, SemVer 2.0 section 11).
KNOWN_ORDERS = {
    "debian": [
        "0.9",
        "1.0~~",
        "1.0~~a",
        "1.0~",
        "1.0~rc1",
        "1.0",
        "1.0-1",
        "1.0-1+deb12u1",
        "1.0-2",
        "1.0a",
        "1.0+dfsg",
        "1.0.1",
        "1.10",
        "2.38.1-5+deb12u2",
        "2.38.1-5+deb12u3",
        "1:0.1",
        "1:2.38.1-5+deb12u3",
        "2:0.0.1",
    ],
    "alpine": [
        "1.0_alpha",
        "1.0_alpha1",
        "1.0_beta2",
        "1.0_pre1",
        "1.0_rc1",
        "1.0",
        "1.0-r1",
        "1.0_cvs1",
        "1.0_git20240101",
        "1.0_p1",
        "1.0a",
        "1.0b",
        "1.0.1",
        "1.2.5-r0",
        "1.2.5-r10",
        "1.10",
    ],
    "pep440": ["1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.1", "2.0", "2.31.0", "10.0"],
    "semver": [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "v1.2.3",
        "1.2.10",
        "1.10.0",
        "2.0.0",
    ],
    "generic": ["1.0", "1.0.1", "1.2", "1.10", "2.0"],
}


@pytest.mark.parametrize("ordering", sorted(KNOWN_ORDERS))
def test_each_ordering_sorts_known_versions_like_its_ecosystem(ordering: str) -> None:
    versions = KNOWN_ORDERS[ordering]
    shuffled = list(reversed(versions))
    assert sorted(shuffled, key=lambda v: sort_key(ordering, v)) == versions
    for left, right in itertools.pairwise(versions):
        assert compare(ordering, left, right) == -1, (left, right)


def test_equal_versions_compare_equal_per_ecosystem_rules() -> None:
    assert compare("debian", "1.0", "1.00") == 0
    assert compare("debian", "0:1.0", "1.0") == 0
    assert compare("pep440", "1.0", "1.0.0") == 0
    assert compare("semver", "1.2.3+build.5", "1.2.3") == 0
    assert compare("semver", "v1.2", "1.2.0") == 0


def test_text_that_is_not_a_version_has_no_key() -> None:
    assert sort_key("pep440", "not a version") is None
    assert sort_key("semver", "1.2.3.4.5") is None
    assert sort_key("debian", "abc") is None
    assert sort_key("alpine", "1.0_unknown") is None
    with pytest.raises(ValueError, match="'x' is not a semver version"):
        compare("semver", "x", "1.0.0")


def test_purl_types_map_to_their_ecosystem_ordering() -> None:
    assert ordering_of("pypi") == "pep440"
    assert ordering_of("deb") == "debian"
    assert ordering_of("apk") == "alpine"
    assert {ordering_of(t) for t in ("npm", "golang", "cargo")} == {"semver"}
    assert ordering_of("maven") == "generic"


_NUMBERS = st.integers(min_value=0, max_value=999)
_SEMVER = st.builds(
    lambda a, b, c, pre: f"{a}.{b}.{c}" + (f"-{pre}" if pre else ""),
    _NUMBERS,
    _NUMBERS,
    _NUMBERS,
    st.one_of(st.just(""), st.from_regex(r"[0-9a-z]{1,4}(\.[0-9a-z]{1,4}){0,2}", fullmatch=True)),
)
_DEBIAN = st.from_regex(r"([1-9]:)?[0-9][0-9a-z.+~]{0,8}(-[0-9a-z.+~]{1,5})?", fullmatch=True)
_ALPINE = st.from_regex(
    r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}[a-z]?(_(alpha|beta|rc|p)[0-9]{0,2})?(-r[0-9]{1,2})?", fullmatch=True
)


@pytest.mark.parametrize(
    ("ordering", "strategy"), [("semver", _SEMVER), ("debian", _DEBIAN), ("alpine", _ALPINE)]
)
@given(data=st.data())
def test_comparison_is_a_total_order(
    ordering: str, strategy: st.SearchStrategy[str], data: st.DataObject
) -> None:
    a, b, c = (data.draw(strategy) for _ in range(3))
    assert compare(ordering, a, b) == -compare(ordering, b, a)
    assert compare(ordering, a, a) == 0
    ordered = sorted([a, b, c], key=functools.cmp_to_key(lambda x, y: compare(ordering, x, y)))
    assert compare(ordering, ordered[0], ordered[2]) <= 0


@given(version=_DEBIAN)
def test_a_tilde_suffix_sorts_before_the_version_itself(version: str) -> None:
    if "-" in version:
        upstream, _, revision = version.partition("-")
        assert compare("debian", f"{upstream}~rc1-{revision}", version) == -1
    else:
        assert compare("debian", f"{version}~rc1", version) == -1


@given(a=_NUMBERS, b=_NUMBERS, c=_NUMBERS, d=_NUMBERS, e=_NUMBERS, f=_NUMBERS)
def test_release_semver_orders_like_its_number_tuple(a: int, b: int, c: int, d: int, e: int, f: int) -> None:
    expected = ((a, b, c) > (d, e, f)) - ((a, b, c) < (d, e, f))
    assert compare("semver", f"{a}.{b}.{c}", f"{d}.{e}.{f}") == expected


def test_ranges_combine_constraints_with_and_and_alternatives_with_or() -> None:
    wanted = parse_range(">=2.0,<2.31.0|==3.0|!=4.0,>=4.0,<5")
    assert wanted.matches("pep440", "2.0")
    assert wanted.matches("pep440", "2.30.9")
    assert not wanted.matches("pep440", "2.31.0")
    # Plain order, not PEP 440 specifier semantics: 2.31.0rc1 sorts below 2.31.0.
    assert wanted.matches("pep440", "2.31.0rc1")
    assert wanted.matches("pep440", "3.0.0")
    assert not wanted.matches("pep440", "4.0")
    assert wanted.matches("pep440", "4.5")
    assert not wanted.matches("pep440", "not-a-version")


def test_ranges_use_the_ecosystem_order_of_each_component() -> None:
    wanted = parse_range(">=1:2.0,<1:3")
    assert wanted.matches("debian", "1:2.38.1-5+deb12u3")
    assert not wanted.matches("debian", "2.38.1-5")  # epoch 0 sorts below epoch 1
    assert parse_range("<1.0").matches("debian", "1.0~rc1")
    assert parse_range("<1.2.5-r1").matches("alpine", "1.2.5-r0")
    assert parse_range(">=1.0.0-rc.1,<1.0.0").matches("semver", "1.0.0-rc.2")


def test_a_bare_version_means_equality_and_vers_prefix_is_accepted() -> None:
    assert parse_range("1.4").matches("pep440", "1.4.0")
    assert parse_range("vers:pypi/>=1.0|<0.5").matches("pep440", "0.4")


def test_text_equality_still_works_where_a_version_does_not_parse() -> None:
    assert parse_range("==nightly").matches("pep440", "nightly")
    assert not parse_range(">=1.0").matches("pep440", "nightly")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "got an empty string"),
        (">=", "constraint '>=' at character 1"),
        (">=1.0,,<2", "constraint '' at character 7"),
        (">=1.0,=>2", "constraint '=>2' at character 7"),
        ("1.0 2.0", "constraint '1.0 2.0' at character 1"),
        ("vers:pypi", "expected 'vers:<type>/<constraints>'"),
        ("x" * 1001, "at most 1000 characters"),
        (",".join(["<1"] * 65), "at most 64 constraints"),
    ],
)
def test_malformed_ranges_are_rejected_with_the_position(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match="version_range: ") as caught:
        parse_range(text)
    assert message in caught.value.message
