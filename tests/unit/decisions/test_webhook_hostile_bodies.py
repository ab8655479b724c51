"""POST /validate in process (ASGI, no socket) with bodies and headers gate cannot or need not read."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import orjson
import pytest

from gate.server._webhook import WebhookApp
from tests.unit.decisions.support import REVIEW, body, review
from tests.unit.decisions.test_webhook_validate import DecisionStore, make_app


async def call(
    app: WebhookApp, payload: bytes, headers: list[tuple[bytes, bytes]], path: str = "/validate"
) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    """One request exactly as uvicorn hands it over: the headers are not rewritten on the way."""
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "client": ("127.0.0.1", 1)}
    pending = [{"type": "http.request", "body": payload, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, answer = sent
    return start["status"], dict(start["headers"]), orjson.loads(answer["body"])


def answer(payload: bytes, *headers: tuple[bytes, bytes], path: str = "/validate") -> Any:
    store = DecisionStore()
    return asyncio.run(call(make_app(store), payload, list(headers), path)), store


DOCUMENT = body(REVIEW)


@pytest.mark.parametrize(
    ("payload", "headers", "message"),
    [
        (
            gzip.compress(DOCUMENT),
            [(b"content-encoding", b"gzip")],
            "content-encoding: gzip is not supported; send the AdmissionReview uncompressed",
        ),
        (
            gzip.compress(DOCUMENT),
            [],
            "content-encoding: gzip (by its first bytes) is not supported; "
            "send the AdmissionReview uncompressed",
        ),
        (
            DOCUMENT.decode().encode("utf-16"),
            [],
            "body: expected UTF-8 JSON without a byte order mark, got UTF-16",
        ),
        (DOCUMENT.decode().encode("utf-16-be"), [], "body: expected UTF-8 JSON, got UTF-16 or UTF-32 text"),
        (
            DOCUMENT.decode().encode("utf-32"),
            [],
            "body: expected UTF-8 JSON without a byte order mark, got UTF-32",
        ),
        (
            b"\xef\xbb\xbf" + DOCUMENT,
            [],
            "body: expected UTF-8 JSON without a byte order mark, got UTF-8 with a byte order mark",
        ),
        (
            b"apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n",
            [(b"content-type", b"application/yaml")],
            "content-type: expected application/json, got application/yaml",
        ),
    ],
)
def test_a_body_that_cannot_be_utf8_json_is_refused_with_415_saying_what_was_sent(
    payload: bytes, headers: list[tuple[bytes, bytes]], message: str
) -> None:
    # Before: 400 "invalid JSON: str is not valid UTF-8: surrogates not allowed" for all but YAML.
    (status, response_headers, error), store = answer(payload, *headers)
    assert status == 415
    assert error == {"error": {"code": 415, "message": message}}
    assert response_headers[b"accept-encoding"] == b"identity"
    assert store.decisions == []


@pytest.mark.parametrize(
    "media", [b"text/plain", b"application/json; charset=utf-8", b"application/x-www-form-urlencoded", b""]
)
def test_a_json_review_is_answered_whatever_its_content_type_says(media: bytes) -> None:
    (status, _, response), store = answer(DOCUMENT, (b"content-type", media))
    assert status == 200
    assert response["response"]["uid"] == REVIEW["request"]["uid"]
    assert len(store.decisions) == 1


def test_a_json_body_with_another_mistake_keeps_the_parsers_message_under_another_content_type() -> None:
    broken = review()
    del broken["request"]["uid"]
    (status, _, error), _ = answer(body(broken), (b"content-type", b"text/plain"))
    assert status == 400
    assert error["error"]["message"].startswith("request.uid")


@pytest.mark.parametrize("value", [b" %d", b"%d ", b"\t%d\t"])
def test_a_content_length_with_whitespace_around_it_is_read_as_its_number(value: bytes) -> None:
    # RFC 9110 5.5: whitespace around a field value is not part of it; the parser framed the
    # body by the number, but the webhook refused "3304 " as "expected a number".
    (status, _, response), store = answer(DOCUMENT, (b"content-length", value % len(DOCUMENT)))
    assert status == 200, response
    assert len(store.decisions) == 1


def test_a_long_unknown_path_is_quoted_only_by_its_start() -> None:
    (status, _, error), _ = answer(b"", path="/" + "x" * 60_000)
    assert status == 404
    assert len(json.dumps(error)) < 300
    assert error["error"]["message"] == "no such path: /" + "x" * 199
