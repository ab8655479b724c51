"""Request ids: a caller's sane x-request-id is kept, anything else replaced; log records carry it."""

from __future__ import annotations

import json
import logging

import pytest

from gate._logging import REQUEST_ID, JsonFormatter, RequestIdFilter, request_id


@pytest.mark.parametrize("supplied", ["abc-123", "0f" * 16, "trace.id:7_a", b"bytes-id"])
def test_a_sane_caller_request_id_is_kept(supplied: str | bytes) -> None:
    expected = supplied.decode() if isinstance(supplied, bytes) else supplied
    assert request_id(supplied) == expected


@pytest.mark.parametrize("supplied", [None, "", "a b", "x" * 129, "line\nbreak", "Bearer abc/def=", "é"])
def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(supplied: str | None) -> None:
    made = request_id(supplied)
    assert made != supplied
    assert len(made) == 32
    int(made, 16)


def test_records_written_while_a_request_is_served_carry_its_id() -> None:
    record = logging.makeLogRecord({"msg": "reviewed", "levelno": logging.INFO, "levelname": "INFO"})
    token = REQUEST_ID.set("req-42")
    try:
        assert RequestIdFilter().filter(record)
    finally:
        REQUEST_ID.reset(token)
    assert json.loads(JsonFormatter().format(record))["request_id"] == "req-42"
    outside = logging.makeLogRecord({"msg": "idle", "levelno": logging.INFO, "levelname": "INFO"})
    assert RequestIdFilter().filter(outside)
    assert "request_id" not in json.loads(JsonFormatter().format(outside))
