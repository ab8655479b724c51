"""Image references parse like Docker's and print back to what parses to the same reference."""

from __future__ import annotations

import pytest

from gate.oci import DOCKER_HUB, ImageRef, InvalidReference, cosign_tag, referrers_tag

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", DOCKER_HUB, "library/nginx", "latest", None),
        ("nginx:1.25", DOCKER_HUB, "library/nginx", "1.25", None),
        ("docker.io/nginx", DOCKER_HUB, "library/nginx", "latest", None),
        ("index.docker.io/bitnami/redis:7", DOCKER_HUB, "bitnami/redis", "7", None),
        ("bitnami/redis", DOCKER_HUB, "bitnami/redis", "latest", None),
        ("registry:5000/ns/app:1.0", "registry:5000", "ns/app", "1.0", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("127.0.0.1:5000/a/b/c@" + DIGEST, "127.0.0.1:5000", "a/b/c", None, DIGEST),
        ("ghcr.io/o/app:v1@" + DIGEST, "ghcr.io", "o/app", "v1", DIGEST),
        ("[::1]:5000/app:x", "[::1]:5000", "app", "x", None),
        ("Registry/app", "Registry", "app", "latest", None),
        ("reg.io/my_app/sub__x/a-b--c:T_1.x-y", "reg.io", "my_app/sub__x/a-b--c", "T_1.x-y", None),
    ],
)
def test_parse_splits_registry_repository_tag_and_digest(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ImageRef.parse(str(ref)) == ref


def test_str_is_fully_qualified() -> None:
    assert str(ImageRef.parse("nginx")) == "docker.io/library/nginx:latest"
    assert str(ImageRef.parse("r:5000/a@" + DIGEST)) == f"r:5000/a@{DIGEST}"


def test_docker_hub_is_reached_on_its_api_host() -> None:
    assert ImageRef.parse("nginx").endpoint == "registry-1.docker.io"
    assert ImageRef.parse("r:5000/a").endpoint == "r:5000"


def test_reference_prefers_the_digest_over_the_tag() -> None:
    ref = ImageRef.parse("r/a:1.0")
    assert ref.reference == "1.0"
    pinned = ref.with_digest(DIGEST)
    assert pinned.reference == DIGEST
    assert pinned.tag == "1.0"
    assert pinned.with_tag("2").reference == "2"


def test_in_repository_keeps_the_registry_and_reference() -> None:
    ref = ImageRef.parse("r:5000/app@" + DIGEST)
    other = ref.in_repository("sigs/app")
    assert str(other) == f"r:5000/sigs/app@{DIGEST}"
    with pytest.raises(InvalidReference):
        ref.in_repository("Upper/Case")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("r/App", "invalid repository component 'App'"),
        ("r/a:", "invalid tag ''"),
        ("r/a:-x", "invalid tag '-x'"),
        ("r/a@sha256:abc", "64 lowercase hex"),
        ("r/a@sha256:" + "AB" * 32, "64 lowercase hex"),
        ("r/a@notadigest", "not a digest"),
        ("r//a", "invalid repository component ''"),
        ("reg.io/", "no repository"),
        ("bad_host.io:x/a", "invalid registry"),
        ("r/" + "a" * 300, "longer than 255"),
        ("r/a:" + "t" * 129, "invalid tag"),
        ("localhost:99999/x:1", "invalid registry port 99999 in 'localhost:99999/x:1', expected 1-65535"),
        ("reg.io:0/x", "invalid registry port 0"),
        # A trailing newline once passed every part's check (``$`` matches before it).
        ("app:1.0\n", "invalid tag '1.0\\n'"),
        ("reg.io\n/app:1", "invalid registry 'reg.io\\n'"),
        ("app\n:1", "invalid repository component 'app\\n'"),
        ("app@sha256:" + "a" * 64 + "\n", "not a digest"),
        # Go's \w (the grammar's) is ASCII.
        ("app:t\u00e9", "invalid tag 't\u00e9'"),
    ],
)
def test_invalid_references_are_refused_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        ImageRef.parse(text)
    assert fragment in caught.value.message


def test_unknown_digest_algorithm_is_unsupported() -> None:
    from gate.oci import UnsupportedContent

    with pytest.raises(UnsupportedContent, match="md5"):
        ImageRef.parse("r/a@md5:" + "0" * 32)


def test_cosign_tags_follow_the_digest() -> None:
    assert cosign_tag(DIGEST, "sig") == "sha256-" + "ab" * 32 + ".sig"
    assert cosign_tag(DIGEST, "att").endswith(".att")
    assert cosign_tag(DIGEST, "sbom").endswith(".sbom")
    assert referrers_tag(DIGEST) == "sha256-" + "ab" * 32
    with pytest.raises(InvalidReference, match="sig, att, sbom"):
        cosign_tag(DIGEST, "sigs")
    with pytest.raises(InvalidReference):
        cosign_tag("sha256:xyz", "sig")


@pytest.mark.parametrize("text", ["localhost:5000/x:1", "reg.io:65535/a/b", "[::1]:5000/x", "[::1]/x"])
def test_registries_on_ports_that_exist_or_ipv6_hosts_are_accepted(text: str) -> None:
    assert str(ImageRef.parse(text)).startswith(text.split("/", 1)[0] + "/")
