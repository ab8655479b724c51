"""Every gate error maps to exactly one gRPC and one HTTP status."""

from __future__ import annotations

import inspect

import grpc
import pytest

from gate import errors
from gate.server._status import GRPC_STATUS, HTTP_STATUS, status_for

ERROR_CLASSES = [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.GateError)
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_has_its_own_row(cls: type[errors.GateError]) -> None:
    assert cls in GRPC_STATUS
    assert cls in HTTP_STATUS


def test_families_tell_the_caller_what_to_do() -> None:
    evidence = errors.InvalidArgument("f", "bad")
    infrastructure = errors.StoreUnavailable("down")
    assert status_for(GRPC_STATUS, evidence) is grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(HTTP_STATUS, evidence) == 400
    assert status_for(GRPC_STATUS, infrastructure) is grpc.StatusCode.UNAVAILABLE
    assert status_for(HTTP_STATUS, infrastructure) == 503
    assert status_for(GRPC_STATUS, errors.Unsupported("X")) is grpc.StatusCode.UNIMPLEMENTED


def test_a_new_subclass_inherits_its_family_status() -> None:
    class TagMismatch(errors.EvidenceError):
        pass

    class RegistryDown(errors.InfrastructureError):
        pass

    assert status_for(GRPC_STATUS, TagMismatch("x")) is grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(HTTP_STATUS, RegistryDown("x")) == 503
