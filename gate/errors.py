"""gate's errors: one root, two families that tell the caller what to do.

* :class:`EvidenceError` -- the request or the evidence is bad. Retrying the
  same call cannot succeed; a decision that meets one denies.
* :class:`InfrastructureError` -- something gate depends on failed (the store,
  a registry, a scanner binary). Retry later, or apply the failure policy.

Messages say what was wrong and where, with got/expected where that helps.
Each transport maps these classes to its status codes in one table
(``gate.server._grpc_status`` and ``gate.server._http_status``).
"""

from __future__ import annotations


class GateError(Exception):
    """Root of every error gate raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EvidenceError(GateError):
    """The request or the evidence is bad: deny, and do not retry unchanged."""


class InvalidArgument(EvidenceError):
    """A field of a request is missing, malformed or out of range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class PayloadTooLarge(InvalidArgument):
    """A request body is larger than the limit (HTTP 413)."""


class RequestTimeout(InvalidArgument):
    """The client did not send its request within the time allowed (HTTP 408)."""


class NotFound(EvidenceError):
    """The named object does not exist."""

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"{what} {key!r} not found")
        self.what = what
        self.key = key


class Conflict(EvidenceError):
    """The request conflicts with what is stored (e.g. a duplicate id)."""


class Unsupported(EvidenceError):
    """The request asks for something this gate does not provide."""

    def __init__(self, feature: str, detail: str = "") -> None:
        text = f"{feature} is not available in this gate"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.feature = feature


class Unauthenticated(EvidenceError):
    """The caller presented no credentials, or credentials gate does not accept."""


class PermissionDenied(EvidenceError):
    """The caller is known but its roles or projects do not allow the request."""


class InfrastructureError(GateError):
    """Something gate depends on failed: retry, or apply the failure policy."""


class StoreUnavailable(InfrastructureError):
    """The evidence store could not be reached or failed to answer."""


class DeadlineExceeded(InfrastructureError):
    """An operation did not finish within its time budget."""


class ResourceExhausted(InfrastructureError):
    """The caller went over its request rate; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigError(GateError):
    """The configuration is invalid; raised at start-up only."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem
