"""Every parser of outside input either returns or raises a GateError, and does so quickly.

Inputs are arbitrary bytes, and real documents with one JSON field replaced by junk, cut
short or with bytes flipped: the shapes a hostile or broken peer sends. A deadline per
example bounds the time; anything but a GateError (KeyError, TypeError, RecursionError,
a library's own exception) is a bug in the parser.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate.errors import GateError
from gate.oci._model import parse_manifest
from gate.sbom import Limits
from gate.sbom._image import open_docker_archive
from gate.sbom._ingest import parse as parse_sbom
from gate.sbom._layers import LayerWriter
from gate.signatures import parse_envelope, parse_statement
from policies import parse_policies
from tests.unit.sbom.layers import directory, file, hardlink, symlink, tar

ROOT = Path(__file__).resolve().parents[3]
SBOMS = ROOT / "tests" / "assets" / "sbom" / "uploads"
POLICY = ROOT / "tests" / "assets" / "policies" / "suite" / "require-team" / "require-team.yaml"
ENVELOPE = (
    ROOT.parent / "shared" / "conformance" / "cosign" / "cases" / "cosign-intoto-claim-string-predicate"
)
DIGEST = "sha256:" + "ab" * 32
MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 7},
    "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST, "size": 32},
    ],
    "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
}
INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": DIGEST,
            "size": 400,
            "platform": {"architecture": "amd64", "os": "linux"},
        }
    ],
}

FAST = settings(
    max_examples=60,
    deadline=timedelta(seconds=3),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _replaced(document: Any, data: st.DataObject) -> bytes:
    """``document`` with one field (at any depth) replaced by junk, or deleted."""
    copy = json.loads(json.dumps(document))
    path = data.draw(st.sampled_from(_paths(copy)))
    node = copy
    for step in path[:-1]:
        node = node[step]
    if data.draw(st.booleans()):
        node[path[-1]] = data.draw(junk)
    elif isinstance(node, dict):
        del node[path[-1]]
    else:
        node.pop(path[-1])
    return json.dumps(copy).encode()


def _damaged(raw: bytes, data: st.DataObject) -> bytes:
    """``raw`` cut short, or with a few bytes overwritten."""
    if data.draw(st.booleans()):
        return raw[: data.draw(st.integers(0, len(raw)))]
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        out[data.draw(st.integers(0, len(out) - 1))] = data.draw(st.integers(0, 255))
    return bytes(out)


def _only_gate_errors(call: Callable[[], object]) -> None:
    message = "no error"
    try:
        call()
    except GateError as exc:
        message = exc.message
    assert message, "a GateError without a message"


# --- SBOM ingestion ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cyclonedx-1.4.json", "cyclonedx-1.7.json", "spdx-2.3.json"])
@FAST
@given(data=st.data())
def test_uploaded_sbom_with_a_field_replaced_parses_or_is_refused(name: str, data: st.DataObject) -> None:
    document = json.loads((SBOMS / name).read_bytes())
    raw = _replaced(document, data)
    _only_gate_errors(lambda: parse_sbom(raw))
    _only_gate_errors(lambda: parse_sbom(raw, check_schema=False))


@pytest.mark.parametrize("name", ["cyclonedx-1.4.json", "cyclonedx-1.5.xml", "spdx-2.3.json"])
@FAST
@given(data=st.data())
def test_damaged_sbom_bytes_parse_or_are_refused(name: str, data: st.DataObject) -> None:
    raw = _damaged((SBOMS / name).read_bytes(), data)
    _only_gate_errors(lambda: parse_sbom(raw, check_schema=False))


@FAST
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_as_sbom_are_refused(raw: bytes) -> None:
    _only_gate_errors(lambda: parse_sbom(raw))


# --- policy YAML --------------------------------------------------------------------------------


@FAST
@given(data=st.data())
def test_policy_yaml_damaged_or_with_a_field_replaced_compiles_or_is_refused(data: st.DataObject) -> None:
    import yaml

    text = POLICY.read_text()
    if data.draw(st.booleans()):
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
        mutated = json.loads(_replaced(documents, data))
        candidate = yaml.safe_dump_all(mutated)
    else:
        candidate = _damaged(text.encode(), data).decode("utf-8", "replace")
    _only_gate_errors(lambda: parse_policies(candidate, "fuzz.yaml"))


@FAST
@given(text=st.text(max_size=200))
def test_arbitrary_text_as_policy_yaml_is_refused_or_compiles(text: str) -> None:
    _only_gate_errors(lambda: parse_policies(text, "fuzz.yaml"))


def test_deeply_nested_policy_yaml_is_refused_quickly() -> None:
    text = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    _only_gate_errors(lambda: parse_policies(text, "deep.yaml"))


def test_yaml_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    _only_gate_errors(lambda: parse_policies("\n".join(lines) + "\n", "bomb.yaml"))


# --- registry responses -------------------------------------------------------------------------


@pytest.mark.parametrize("document", [MANIFEST, INDEX], ids=["manifest", "index"])
@FAST
@given(data=st.data())
def test_registry_manifest_with_a_field_replaced_parses_or_is_refused(
    document: dict[str, Any], data: st.DataObject
) -> None:
    raw = _replaced(document, data)
    content_type = data.draw(st.none() | st.sampled_from([str(document["mediaType"]), "text/plain", ""]))
    _only_gate_errors(lambda: parse_manifest(raw, where="fuzz", content_type=content_type))


@FAST
@given(raw=st.binary(max_size=300), digest=st.none() | st.text(max_size=80))
def test_arbitrary_bytes_as_a_registry_manifest_are_refused(raw: bytes, digest: str | None) -> None:
    _only_gate_errors(lambda: parse_manifest(raw, where="fuzz", digest=digest))


# --- image layers and docker archives -----------------------------------------------------------

names = st.text(alphabet="ab./\\-_ \x00", min_size=1, max_size=12)
entries = st.lists(
    st.one_of(
        st.builds(file, names, st.binary(max_size=16)),
        st.builds(directory, names),
        st.builds(symlink, names, names),
        st.builds(hardlink, names, names),
    ),
    max_size=6,
)


@FAST
@given(layers=st.lists(entries, min_size=1, max_size=3), data=st.data())
def test_hostile_layers_apply_or_are_refused_inside_the_root(
    tmp_path_factory: pytest.TempPathFactory, layers: list[list[Any]], data: st.DataObject
) -> None:
    base = tmp_path_factory.mktemp("layers")
    root = base / "root"
    root.mkdir()
    writer = LayerWriter(root, Limits())
    for index, layer in enumerate(layers):
        blob = tar(*layer)
        if data.draw(st.booleans()):
            blob = _damaged(blob, data)
        try:
            writer.apply(io.BytesIO(blob), f"layer {index}")
        except GateError:
            break
    assert {p.name for p in base.iterdir()} == {"root"}, "a layer wrote next to its root"


def _docker_archive(manifest: bytes, members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, body in {"manifest.json": manifest, **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


DOCKER_MANIFEST = [{"Config": "config.json", "RepoTags": ["app:1"], "Layers": ["l0/layer.tar"]}]
DOCKER_CONFIG = {"rootfs": {"type": "layers", "diff_ids": [DIGEST]}, "architecture": "amd64", "os": "linux"}


@FAST
@given(data=st.data())
def test_damaged_docker_archive_opens_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    manifest = json.dumps(DOCKER_MANIFEST).encode()
    config = json.dumps(DOCKER_CONFIG).encode()
    choice = data.draw(st.sampled_from(["manifest", "config", "bytes"]))
    if choice == "manifest":
        manifest = _replaced(DOCKER_MANIFEST, data)
    elif choice == "config":
        config = _replaced(DOCKER_CONFIG, data)
    blob = _docker_archive(manifest, {"config.json": config, "l0/layer.tar": tar(file("etc/x", b"x"))})
    if choice == "bytes":
        blob = _damaged(blob, data)
    path = tmp_path_factory.mktemp("archive") / "image.tar"
    path.write_bytes(blob)

    def run() -> None:
        with open_docker_archive(path, limits=Limits()):
            pass

    _only_gate_errors(run)


# --- DSSE envelopes and in-toto statements ------------------------------------------------------


@FAST
@given(data=st.data())
def test_dsse_envelope_with_a_field_replaced_parses_or_is_refused(data: st.DataObject) -> None:
    document = json.loads((ENVELOPE / "envelope.json").read_bytes())
    raw = (
        _replaced(document, data)
        if data.draw(st.booleans())
        else _damaged(json.dumps(document).encode(), data)
    )

    def run() -> None:
        envelope = parse_envelope(raw)
        parse_statement(envelope.payload)

    _only_gate_errors(run)


@FAST
@given(data=st.data())
def test_in_toto_statement_with_a_field_replaced_parses_or_is_refused(data: st.DataObject) -> None:
    document = json.loads((ENVELOPE / "envelope.json").read_bytes())
    envelope = parse_envelope(json.dumps(document).encode())
    statement = json.loads(envelope.payload)
    raw = _replaced(statement, data)
    _only_gate_errors(lambda: parse_statement(raw))


@FAST
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_as_envelope_or_statement_are_refused(raw: bytes) -> None:
    _only_gate_errors(lambda: parse_envelope(raw))
    _only_gate_errors(lambda: parse_statement(raw))
