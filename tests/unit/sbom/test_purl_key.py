"""Normalised purl identities: one package, however a tool spelled it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate.sbom._purl_key import PurlKey, normalise, search_prefix

# The same Debian package as syft, Trivy and cdxgen write it (the project's SBOM notes).
BSDUTILS = (
    "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12&upstream=util-linux",
    "pkg:deb/debian/bsdutils@2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12.15&epoch=1",
    "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12&distro_name=bookworm&epoch=1",
)


@pytest.mark.parametrize("purl", BSDUTILS)
def test_debian_epochs_and_distro_spellings_reduce_to_one_key(purl: str) -> None:
    assert normalise(purl) == PurlKey(
        identity="pkg:deb/debian/bsdutils", version="1:2.38.1-5+deb12u3", ecosystem="deb", distro="debian-12"
    )


@pytest.mark.parametrize(
    "purl",
    [
        "pkg:npm/%40babel/code-frame@7.23.5",
        "pkg:npm/@babel/code-frame@7.23.5",
        "pkg:npm/babel/code-frame@7.23.5",
        "pkg:npm/%40babel%2Fcode-frame@7.23.5",
    ],
)
def test_npm_scopes_are_the_namespace_however_written(purl: str) -> None:
    key = normalise(purl)
    assert key is not None
    assert (key.identity, key.version) == ("pkg:npm/@babel/code-frame", "7.23.5")


def test_pypi_names_are_pep503_normalised() -> None:
    for purl in ("pkg:pypi/Django_REST.framework@3.15", "pkg:pypi/django-rest-framework@3.15"):
        key = normalise(purl)
        assert key is not None
        assert key.identity == "pkg:pypi/django-rest-framework"


def test_qualifiers_and_subpath_are_dropped_and_the_type_decides_the_ecosystem() -> None:
    key = normalise("pkg:golang/github.com/Org/Repo@v1.2.3?goos=linux#cmd/tool")
    assert key == PurlKey("pkg:golang/github.com/org/repo", "v1.2.3", "golang")
    apk = normalise("pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=3.20.3")
    assert apk == PurlKey("pkg:apk/alpine/musl", "1.2.5-r0", "apk", "alpine-3")
    rpm = normalise("pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=x86_64&epoch=1&distro=rhel-9.4")
    assert rpm == PurlKey("pkg:rpm/redhat/openssl", "1:3.0.7-27.el9", "rpm", "rhel-9")


def test_text_that_is_not_a_purl_has_no_key() -> None:
    assert normalise("") is None
    assert normalise("requests==2.0") is None
    assert normalise("pkg:") is None


def test_search_prefixes_are_normalised_like_stored_purls() -> None:
    assert search_prefix("pkg:pypi/Requests") == ("pkg:pypi/requests", "")
    assert search_prefix("pkg:deb/debian/bsdutils@2.38.1-5+deb12u3?epoch=1") == (
        "pkg:deb/debian/bsdutils",
        "1:2.38.1-5+deb12u3",
    )
    assert search_prefix("pkg:npm/%40babel/") == ("pkg:npm/@babel/", "")
    # Not a complete purl: matched as a casefolded prefix.
    assert search_prefix("pkg:DEB/") == ("pkg:deb/", "")


@given(
    name=st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True),
    version=st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True),
)
def test_pypi_spellings_that_pep503_equates_share_one_identity(name: str, version: str) -> None:
    variants = {name, name.upper(), name.lower(), name.replace("-", "_"), name.replace(".", "-")}
    keys = {normalise(f"pkg:pypi/{variant}@{version}") for variant in variants}
    assert len(keys) == 1
    (key,) = keys
    assert key is not None
    assert key.identity == "pkg:pypi/" + re.sub(r"[-_.]+", "-", name).lower()
    assert key.version == version
