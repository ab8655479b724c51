"""Parsing and checking AdmissionReviews."""

from __future__ import annotations

import json

import pytest

from gate.decisions import parse_review, request_digest
from gate.errors import InvalidArgument
from policies import ResourceLimitError
from tests.unit.decisions.support import REVIEW, body, review


def test_a_v1_pod_review_is_parsed_with_subject_caller_and_digests() -> None:
    parsed = parse_review(body(REVIEW))
    assert parsed.api_version == "admission.k8s.io/v1"
    assert parsed.uid == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert parsed.subject == "Pod/payments/payments-api-7d9f8b6c5d-"
    assert parsed.caller == "system:serviceaccount:kube-system:replicaset-controller"
    assert parsed.image_digests == (
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    )
    assert parsed.dry_run is False
    assert parsed.admission.operation == "CREATE"


def test_v1beta1_is_accepted_and_echoed() -> None:
    document = review()
    document["apiVersion"] = "admission.k8s.io/v1beta1"
    assert parse_review(body(document)).api_version == "admission.k8s.io/v1beta1"


def test_request_digest_ignores_key_order_and_whitespace() -> None:
    reordered = json.loads(json.dumps(REVIEW["request"]), object_pairs_hook=lambda p: dict(reversed(p)))
    assert request_digest(reordered) == request_digest(REVIEW["request"])
    assert request_digest(REVIEW["request"]).startswith("sha256:")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "body: expected a JSON AdmissionReview, got invalid JSON"),
        (b"[1, 2]", "body: expected a JSON object (an AdmissionReview), got an array"),
        (b'{"kind": "Pod", "apiVersion": "v1"}', "kind: expected AdmissionReview, got 'Pod'"),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v2"}',
            "apiVersion: expected admission.k8s.io/v1 or admission.k8s.io/v1beta1, got 'admission.k8s.io/v2'",
        ),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}',
            "request: required: an AdmissionReview sent for review carries a request",
        ),
    ],
)
def test_malformed_envelopes_name_what_is_wrong(payload: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_review(payload)
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uid": ""}, "request.uid: required: a non-empty string, got ''"),
        ({"uid": None}, "request.uid: required: a non-empty string, got null"),
        (
            {"operation": "PATCH"},
            "request.operation: expected CREATE, UPDATE, DELETE or CONNECT, got 'PATCH'",
        ),
        ({"dryRun": "yes"}, "request.dryRun: expected true or false, got a string"),
        ({"object": [1]}, "request.object: expected an object or null, got an array"),
        ({"userInfo": {"groups": [1]}}, "request.userInfo.groups[0]: expected a string, got a number"),
        ({"namespace": 7}, "request.namespace: expected a string, got a number"),
    ],
)
def test_bad_request_fields_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_review(body(review(**changes)))
    assert caught.value.message == message


def test_a_missing_uid_is_refused() -> None:
    document = review()
    del document["request"]["uid"]
    with pytest.raises(InvalidArgument, match=r"request\.uid: required"):
        parse_review(body(document))


def test_nesting_beyond_the_limit_is_refused() -> None:
    deep: object = "x"
    for _ in range(80):
        deep = {"a": deep}
    document = review()
    document["request"]["object"]["metadata"]["annotations"] = {"deep": deep}
    with pytest.raises(ResourceLimitError, match="nesting deeper than"):
        parse_review(body(document))


def test_nesting_beyond_the_json_parser_limit_is_a_depth_error() -> None:
    with pytest.raises(ResourceLimitError, match="nesting deeper than"):
        parse_review(b"[" * 5000 + b"]" * 5000)
