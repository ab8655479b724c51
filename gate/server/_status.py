"""Error to status mapping: one table per transport.

A class not listed maps like its nearest listed ancestor, so a new error
subclass inherits its family's status until it is given its own row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import grpc

from gate.errors import (
    ConfigError,
    Conflict,
    DeadlineExceeded,
    EvidenceError,
    GateError,
    InfrastructureError,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RequestTimeout,
    ResourceExhausted,
    StoreUnavailable,
    Unauthenticated,
    Unsupported,
)

GRPC_STATUS: Mapping[type[GateError], grpc.StatusCode] = {
    PayloadTooLarge: grpc.StatusCode.INVALID_ARGUMENT,
    RequestTimeout: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Conflict: grpc.StatusCode.ALREADY_EXISTS,
    Unsupported: grpc.StatusCode.UNIMPLEMENTED,
    EvidenceError: grpc.StatusCode.FAILED_PRECONDITION,
    StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    InfrastructureError: grpc.StatusCode.UNAVAILABLE,
    ConfigError: grpc.StatusCode.INTERNAL,
    GateError: grpc.StatusCode.INTERNAL,
}

HTTP_STATUS: Mapping[type[GateError], int] = {
    PayloadTooLarge: 413,
    RequestTimeout: 408,
    InvalidArgument: 400,
    NotFound: 404,
    Unauthenticated: 401,
    PermissionDenied: 403,
    Conflict: 409,
    Unsupported: 501,
    EvidenceError: 422,
    StoreUnavailable: 503,
    DeadlineExceeded: 504,
    ResourceExhausted: 429,
    InfrastructureError: 503,
    ConfigError: 500,
    GateError: 500,
}

S = TypeVar("S")


def status_for(table: Mapping[type[GateError], S], error: GateError) -> S:
    """Return the status of ``error`` in ``table`` (by its nearest listed class)."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return table[GateError]
