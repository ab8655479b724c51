"""Kubernetes ServiceAccount tokens, checked with the API server's TokenReview."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gate._strict_json import SURROGATE, StrictJsonError, loads_leniently
from gate.errors import InfrastructureError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

# A TokenReview answer is a few hundred bytes; cap what is read from the API server.
MAX_REVIEW_BYTES = 256 * 1024
# Characters no name of a user or group holds: control characters (C0, DEL, C1) cut or forge
# log and audit lines, and a surrogate cannot be encoded as UTF-8 for the audit trail at all.
_UNFIT = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f]|{SURROGATE.pattern}")


@dataclass(frozen=True, slots=True)
class TokenReviewResult:
    """What the API server said about one token."""

    authenticated: bool
    username: str = ""
    audiences: tuple[str, ...] = ()
    error: str = ""


class TokenReviewer(Protocol):
    """Checks a bearer token with the authority that issued it."""

    def review(self, token: str, audiences: Sequence[str]) -> TokenReviewResult:
        """Ask whether ``token`` is valid (for ``audiences``, when given).

        Raises:
            InfrastructureError: the authority could not be asked.
        """


class KubernetesTokenReviewer:
    """Creates ``authentication.k8s.io/v1`` TokenReviews through the ``kubernetes`` client."""

    def __init__(self, client: ApiClient, *, timeout: float = 10.0) -> None:
        from kubernetes.client import AuthenticationV1Api

        self._api = AuthenticationV1Api(client)
        self._timeout = timeout

    def review(self, token: str, audiences: Sequence[str]) -> TokenReviewResult:
        """Create a TokenReview for ``token`` and read its status."""
        from kubernetes.client import V1TokenReview, V1TokenReviewSpec
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        body = V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=V1TokenReviewSpec(token=token, audiences=list(audiences) or None),
        )
        try:
            # The raw answer is read (bounded) rather than the client's model: the model
            # echoes spec.token, which must not travel further than needed.
            response: Any = self._api.create_token_review(
                body, _preload_content=False, _request_timeout=self._timeout
            )
            # Without preloading the client returns the urllib3 response (its annotation says otherwise).
            data = response.read(MAX_REVIEW_BYTES + 1)
        except ApiException as exc:
            raise InfrastructureError(
                f"kubernetes TokenReview: the API server answered {exc.status} {exc.reason}"
            ) from None
        except (HTTPError, OSError) as exc:
            raise InfrastructureError(f"kubernetes TokenReview: cannot reach the API server: {exc}") from None
        if len(data) > MAX_REVIEW_BYTES:
            raise InfrastructureError(f"kubernetes TokenReview: answer larger than {MAX_REVIEW_BYTES} bytes")
        try:
            document = loads_leniently(data)
        except StrictJsonError as exc:
            raise InfrastructureError(
                f"kubernetes TokenReview: the answer is not a TokenReview (not JSON: got {exc.reason})"
            ) from None
        return _read_status(document)


def _refuse(field: str, expected: str, value: object) -> InfrastructureError:
    return InfrastructureError(
        f"kubernetes TokenReview: the answer is not a TokenReview: {field}: "
        f"expected {expected}, got {type(value).__name__}"
    )


def _strings(field: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _refuse(field, "a list of strings", value)
    return tuple(value)


def _check_printable(field: str, value: str) -> None:
    """Refuse a name that would become an identity no log line or audit record can show as it is.

    The value itself is not echoed: it is exactly what must not reach a log.
    """
    found = _UNFIT.search(value)
    if found is not None:
        raise InfrastructureError(
            f"kubernetes TokenReview: the answer is not a TokenReview: {field}: expected a string "
            f"without control characters or surrogates, got one with U+{ord(found.group()):04X} "
            f"at character {found.start()}"
        )


def _read_status(document: object) -> TokenReviewResult:
    """The result a TokenReview answer states, refusing one whose identity cannot be trusted.

    An authenticated answer whose user is not plainly typed is an error, not a login: turning
    a dict or an empty string into a username would grant an identity nobody was issued.
    """
    if not isinstance(document, dict):
        raise _refuse("the answer", "an object", document)
    status = document.get("status") or {}
    if not isinstance(status, dict):
        raise _refuse("status", "an object", status)
    error = status.get("error") or ""
    if not isinstance(error, str):
        raise _refuse("status.error", "a string", error)
    if status.get("authenticated") is not True:
        return TokenReviewResult(authenticated=False, error=error)
    user = status.get("user")
    if not isinstance(user, dict):
        raise _refuse("status.user", "an object", user)
    username = user.get("username")
    if not isinstance(username, str) or not username:
        raise _refuse("status.user.username", "a non-empty string", username)
    _check_printable("status.user.username", username)
    uid = user.get("uid", "")
    if not isinstance(uid, str):
        raise _refuse("status.user.uid", "a string", uid)
    _check_printable("status.user.uid", uid)
    for index, group in enumerate(_strings("status.user.groups", user.get("groups"))):
        _check_printable(f"status.user.groups[{index}]", group)
    return TokenReviewResult(
        authenticated=True,
        username=username,
        audiences=_strings("status.audiences", status.get("audiences")),
        error=error,
    )
