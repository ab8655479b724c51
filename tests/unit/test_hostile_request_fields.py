"""Request fields a fuzzer sent: each is refused as INVALID_ARGUMENT naming the field, before the store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from gate import _convert as cv
from gate import pipeline
from gate._api import Api
from gate.core import Gate
from gate.errors import InvalidArgument
from gate.v1 import audit_pb2, common_pb2, decision_pb2, waiver_pb2
from policies._yaml import Document


class NoStore:
    """A store port that must not be reached: every request here is refused before."""

    inline_reads = False

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"store.{name} called")


API = Api(Gate(NoStore()))  # type: ignore[arg-type]

# Outside what google.protobuf.Timestamp defines (years 1 to 9999, nanos 0..999999999).
BAD_TIMESTAMPS = [
    pytest.param(Timestamp(seconds=-62_135_596_801), "seconds", id="before-year-1"),
    pytest.param(Timestamp(seconds=253_402_300_800), "seconds", id="after-year-9999"),
    pytest.param(Timestamp(seconds=2**63 - 1), "seconds", id="int64-max"),
    pytest.param(Timestamp(seconds=0, nanos=-1), "nanos", id="negative-nanos"),
    pytest.param(Timestamp(seconds=0, nanos=1_000_000_000), "nanos", id="a-whole-second-of-nanos"),
]


def refused(method: str, request: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        API.invoke(method, request)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(("stamp", "part"), BAD_TIMESTAMPS)
@pytest.mark.parametrize("bound", ["since", "until"])
def test_list_decisions_refuses_timestamps_protobuf_does_not_define(
    stamp: Timestamp, part: str, bound: str
) -> None:
    error = refused("gate.v1.AuditService/ListDecisions", audit_pb2.ListDecisionsRequest(**{bound: stamp}))
    assert error.field == f"{bound}.{part}"
    assert f"got {getattr(stamp, part)}" in error.problem


@pytest.mark.parametrize(("stamp", "part"), BAD_TIMESTAMPS)
def test_export_policy_reports_refuses_timestamps_protobuf_does_not_define(
    stamp: Timestamp, part: str
) -> None:
    error = refused(
        "gate.v1.AuditService/ExportPolicyReports", audit_pb2.ExportPolicyReportsRequest(since=stamp)
    )
    assert error.field == f"since.{part}"


@pytest.mark.parametrize(("stamp", "part"), BAD_TIMESTAMPS)
def test_create_waiver_refuses_expiries_protobuf_does_not_define(stamp: Timestamp, part: str) -> None:
    request = waiver_pb2.CreateWaiverRequest(
        policy="p", namespace="ns", owner="o", reason="r", expires_at=stamp
    )
    error = refused("gate.v1.WaiverService/CreateWaiver", request)
    assert error.field == f"expires_at.{part}"


@pytest.mark.parametrize(
    ("duration", "field", "problem"),
    [
        (Duration(seconds=1, nanos=-1), "duration", "seconds and nanos must have the same sign"),
        (Duration(seconds=-1, nanos=1), "duration", "seconds and nanos must have the same sign"),
        (Duration(seconds=0, nanos=1_000_000_000), "duration.nanos", "got 1000000000"),
        (Duration(seconds=315_576_000_001), "duration.seconds", "got 315576000001"),
        # Valid Durations, but shorter than the one second a waiver must last.
        (Duration(seconds=0, nanos=999_999_999), "duration", "got 0.999999999 s"),
        (Duration(seconds=0, nanos=-1), "duration", "got -0.000000001 s"),
    ],
)
def test_create_waiver_refuses_durations_that_are_invalid_or_under_a_second(
    duration: Duration, field: str, problem: str
) -> None:
    request = waiver_pb2.CreateWaiverRequest(
        policy="p", namespace="ns", owner="o", reason="r", duration=duration
    )
    error = refused("gate.v1.WaiverService/CreateWaiver", request)
    assert error.field == field
    assert problem in error.problem


def test_timestamps_at_the_ends_of_the_protobuf_range_convert() -> None:
    assert cv.from_timestamp(Timestamp(seconds=-62_135_596_800)).year == 1
    last = cv.from_timestamp(Timestamp(seconds=253_402_300_799, nanos=999_999_999))
    assert (last.year, last.microsecond) == (9999, 999_999)


@pytest.mark.parametrize(
    ("commit", "field"),
    [
        ("A" * 40, "source.commit"),
        ("a" * 39, "source.commit"),
        ("a" * 41, "source.commit"),
        ("a" * 39 + "\x00", "source.commit"),
        ("../" * 10, "source.commit"),
    ],
)
def test_decide_refuses_a_source_commit_that_is_not_40_or_64_lowercase_hex(commit: str, field: str) -> None:
    request = decision_pb2.DecideRequest(
        source=decision_pb2.SourceTree(repository="https://git.example/a", commit=commit), stage="build"
    )
    assert refused("gate.v1.DecisionService/Decide", request).field == field


@pytest.mark.parametrize("repository", ["a\x00b", "\u202eevil", " https://git.example/a", "x" * 2049])
def test_decide_refuses_a_source_repository_with_control_characters_or_too_long(repository: str) -> None:
    request = decision_pb2.DecideRequest(
        source=decision_pb2.SourceTree(repository=repository, commit="a" * 40), stage="build"
    )
    assert refused("gate.v1.DecisionService/Decide", request).field == "source.repository"


@pytest.mark.parametrize(
    "reference",
    [
        "x@sha256:" + "a" * 63,
        "x@sha256:" + "A" * 64,
        "\x00:1",
        "x@",
        "x:",
        ":tag",
        "x/../../y:1",
        "UPPER/Case:1",
    ],
)
def test_decide_refuses_an_artifact_reference_no_registry_could_serve(reference: str) -> None:
    request = decision_pb2.DecideRequest(artifact=common_pb2.ArtifactRef(reference=reference), stage="deploy")
    error = refused("gate.v1.DecisionService/Decide", request)
    # gate.oci names the part of the reference after the field ("artifact.reference: digest").
    assert error.field.startswith("artifact.reference")


@pytest.mark.parametrize("metadata", ["[1]", "hello", "5"])
def test_decide_refuses_a_manifest_object_whose_metadata_is_not_a_mapping(metadata: str) -> None:
    manifest = f"apiVersion: v1\nkind: Pod\nmetadata: {metadata}\nspec: {{}}\n".encode()
    request = decision_pb2.DecideRequest(manifest=manifest, stage="deploy")
    error = refused("gate.v1.DecisionService/Decide", request)
    assert error.field == "manifest[0].metadata"


def test_a_list_item_is_named_by_its_index_in_the_list() -> None:
    manifest = b"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod}\n- {kind: Pod}\n"
    with pytest.raises(InvalidArgument) as caught:
        pipeline.manifest_resources(manifest)
    assert caught.value.field == "manifest[0].items[1].apiVersion"


def test_a_manifest_stream_stops_being_parsed_at_its_first_bad_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[int] = []

    def documents(text: str, source: str) -> Iterator[Document]:
        for index in range(10_000):
            parsed.append(index)
            yield Document(source, {}, {})

    monkeypatch.setattr(pipeline, "parse_documents", documents)
    with pytest.raises(InvalidArgument, match="apiVersion"):
        pipeline.manifest_resources(b"{}\n---\n{}\n")
    assert parsed == [0]


def test_a_manifest_stream_stops_being_parsed_past_the_object_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}

    def documents(text: str, source: str) -> Iterator[Document]:
        for index in range(10_000):
            parsed.append(index)
            yield Document(source, dict(pod), {})

    monkeypatch.setattr(pipeline, "parse_documents", documents)
    with pytest.raises(InvalidArgument, match=f"at most {pipeline.MAX_MANIFEST_DOCUMENTS} objects"):
        pipeline.manifest_resources(b"apiVersion: v1\n")
    assert len(parsed) == pipeline.MAX_MANIFEST_DOCUMENTS + 1


def test_review_of_an_admission_review_too_deep_is_invalid_argument_on_its_field() -> None:
    body = json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"object": {}}}
    ).replace('"object": {}', '"object": ' + '{"a": ' * 100 + "1" + "}" * 100)
    error = refused(
        "gate.v1.DecisionService/Review", decision_pb2.ReviewRequest(admission_review=body.encode())
    )
    assert error.field == "admission_review"
    assert "nesting deeper than" in error.problem
