"""AdmissionReview parsing: bytes in, a checked, typed review out (no I/O).

The API server sends ``admission.k8s.io/v1`` (or, from old clusters,
``v1beta1``) AdmissionReviews. Everything in them is outside input: every
field the decision uses is type-checked here, and errors name the field and
what was wrong, so the webhook can answer 400 instead of failing later.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from gate.errors import InvalidArgument
from gate.model import SHA256_DIGEST, DecodedJson

if TYPE_CHECKING:
    from policies import AdmissionRequest, UserInfo

API_VERSIONS = frozenset({"admission.k8s.io/v1", "admission.k8s.io/v1beta1"})
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
# The API server's own request limit is 3 MiB; the object sits 2 levels below the review.
MAX_REVIEW_BYTES = 4 * 1024 * 1024
# The policy engine's object depth limit (policies.MAX_DEPTH, 64) plus the two levels above the object.
MAX_REVIEW_DEPTH = 64 + 2
# At most this many JSON values (policies.MAX_NODES).
MAX_REVIEW_VALUES = 200_000
# A uid is echoed back; Kubernetes uids are 36 characters.
MAX_UID_LENGTH = 256

_DIGEST_PREFIX = "@sha256:"


@dataclass(frozen=True, slots=True)
class AdmissionReview:
    """One parsed AdmissionReview request.

    Attributes:
        api_version: ``admission.k8s.io/v1`` or ``admission.k8s.io/v1beta1`` (echoed in the answer).
        uid: the request uid (echoed in the answer).
        request: the ``request`` object as received (what is recorded and replayed).
        admission: the request as the policy engine takes it.
        dry_run: the API server will not persist the object; the decision is not recorded.
        subject: ``kind/namespace/name`` of the object (parts that are empty are left out).
        caller: ``userInfo.username``.
        image_digests: ``sha256:<hex>`` digests of the container images pinned by digest.
        fingerprint: SHA-256 of the body as received (tells an API server retry, which
            sends the same bytes, from a replay with changes).
    """

    api_version: str
    uid: str
    request: Mapping[str, Any]
    admission: AdmissionRequest
    dry_run: bool = False
    subject: str = ""
    caller: str = ""
    image_digests: tuple[str, ...] = field(default=())
    fingerprint: bytes = b""


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no insignificant whitespace, UTF-8: what digests and signatures cover."""
    if type(value) is DecodedJson:
        return value.canonical_json()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def request_digest(request: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of an AdmissionReview ``request``."""
    return "sha256:" + hashlib.sha256(canonical_json(request)).hexdigest()


def parse_review(body: bytes) -> AdmissionReview:
    """Parse and check an AdmissionReview.

    Raises:
        InvalidArgument: not JSON, not an AdmissionReview of a known version, or a
            field of the wrong type (the message names the field, with got/expected).
        ResourceLimitError: nested deeper than :data:`MAX_REVIEW_DEPTH` or with too many values.
    """
    # Imported on first use: the engine costs ~0.1 s of every start of gate.
    from policies import ResourceLimitError

    if len(body) > MAX_REVIEW_BYTES:
        raise InvalidArgument("body", f"{len(body)} bytes exceeds the {MAX_REVIEW_BYTES}-byte limit")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error) or "recursion" in str(error).lower():
            raise ResourceLimitError(f"body: nesting deeper than {MAX_REVIEW_DEPTH}") from None
        raise InvalidArgument("body", f"expected a JSON AdmissionReview, got invalid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidArgument("body", f"expected a JSON object (an AdmissionReview), got {_kind(document)}")
    _check_shape(body)
    return _review_of(document, hashlib.sha256(body).digest())


# On valid JSON (orjson has checked it): escapes inside strings, every byte but the
# structural ones and quotes, then the (now escape-free) strings, then innermost pairs.
# (A regular expression matching whole strings cost ~100 us per review: one match per string.)
_ESCAPES = re.compile(rb"\\.")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}",')
_INNERMOST = re.compile(rb"\[\]|\{\}")


def _check_shape(body: bytes) -> None:
    """Depth and value count of valid JSON text, with C-speed regular expressions.

    Walking the decoded document in Python cost ~50 us per 3 KB review; here the
    strings are cut out, the brackets kept, and matched innermost pairs removed
    level by level: the number of passes is the depth (~10 us in all).
    """
    from policies import ResourceLimitError

    # Nesting N deep takes N opening brackets and each value at least two bytes: a small
    # review (the usual few KB) cannot break either limit, which two counts prove.
    if body.count(b"[") + body.count(b"{") <= MAX_REVIEW_DEPTH + 1 and len(body) < 2 * MAX_REVIEW_VALUES:
        return
    # Without escapes, quotes alternate: every other piece between them is outside a string.
    structure = b"".join(_ESCAPES.sub(b"", body).translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    skeleton = structure.translate(None, b",")
    # Values in containers: one more than the commas of each non-empty container.
    if len(structure) - len(skeleton) + len(skeleton) // 2 > MAX_REVIEW_VALUES:
        raise ResourceLimitError(f"body: more than {MAX_REVIEW_VALUES} values")
    depth = 0
    while skeleton:
        skeleton = _INNERMOST.sub(b"", skeleton)
        depth += 1
        if depth > MAX_REVIEW_DEPTH + 1:
            raise ResourceLimitError(f"body: nesting deeper than {MAX_REVIEW_DEPTH}")


def _review_of(document: Mapping[str, Any], fingerprint: bytes) -> AdmissionReview:
    """Check an already-decoded AdmissionReview (the body was checked by :func:`parse_review`)."""
    from policies import AdmissionRequest

    api_version, request = _envelope(document)
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise InvalidArgument("request.uid", f"required: a non-empty string, got {_shown(uid)}")
    if len(uid) > MAX_UID_LENGTH:
        raise InvalidArgument("request.uid", f"at most {MAX_UID_LENGTH} characters, got {len(uid)}")
    operation = request.get("operation")
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise InvalidArgument(
            "request.operation", f"expected CREATE, UPDATE, DELETE or CONNECT, got {_shown(operation)}"
        )
    for name in ("namespace", "name", "subResource"):
        _optional_string(request, name)
    gvk = request.get("kind")
    if gvk is not None:
        if not isinstance(gvk, dict):
            raise InvalidArgument("request.kind", f"expected an object, got {_kind(gvk)}")
        for name in ("group", "version", "kind"):
            _optional_string(gvk, name, "request.kind.")
    dry_run = request.get("dryRun")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise InvalidArgument("request.dryRun", f"expected true or false, got {_kind(dry_run)}")
    user = _user(request.get("userInfo"))
    new = _object(request, "object")
    old = _object(request, "oldObject")
    admission = AdmissionRequest(
        operation=operation,
        object=new,
        old_object=old,
        user_info=user,
        namespace=request.get("namespace") or "",
        sub_resource=request.get("subResource") or "",
    )
    resource = new or old or {}
    return AdmissionReview(
        api_version=api_version,
        uid=uid,
        # Marked as decoded JSON: the store then skips its check for non-finite floats.
        request=DecodedJson(request),
        admission=admission,
        dry_run=bool(dry_run),
        subject=_subject(request, resource),
        caller=user.username,
        image_digests=_image_digests(resource),
        fingerprint=fingerprint,
    )


def _envelope(document: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    kind = document.get("kind")
    if kind != "AdmissionReview":
        raise InvalidArgument("kind", f"expected AdmissionReview, got {_shown(kind)}")
    api_version = document.get("apiVersion")
    if not isinstance(api_version, str) or api_version not in API_VERSIONS:
        raise InvalidArgument(
            "apiVersion",
            f"expected admission.k8s.io/v1 or admission.k8s.io/v1beta1, got {_shown(api_version)}",
        )
    request = document.get("request")
    if request is None:
        raise InvalidArgument("request", "required: an AdmissionReview sent for review carries a request")
    if not isinstance(request, dict):
        raise InvalidArgument("request", f"expected an object, got {_kind(request)}")
    return str(api_version), request


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    return _kind(value)


def _optional_string(obj: Mapping[str, Any], name: str, prefix: str = "request.") -> None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{prefix}{name}", f"expected a string, got {_kind(value)}")


def _object(request: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(f"request.{name}", f"expected an object or null, got {_kind(value)}")
    return value or None


def _user(info: Any) -> UserInfo:
    from policies import UserInfo

    if info is None:
        return UserInfo()
    if not isinstance(info, dict):
        raise InvalidArgument("request.userInfo", f"expected an object, got {_kind(info)}")
    username = info.get("username", "")
    if username is None:
        username = ""
    if not isinstance(username, str):
        raise InvalidArgument("request.userInfo.username", f"expected a string, got {_kind(username)}")
    groups = info.get("groups") or []
    if not isinstance(groups, list):
        raise InvalidArgument("request.userInfo.groups", f"expected an array, got {_kind(groups)}")
    for index, group in enumerate(groups):
        if not isinstance(group, str):
            raise InvalidArgument(
                f"request.userInfo.groups[{index}]", f"expected a string, got {_kind(group)}"
            )
    return UserInfo(username=username, groups=tuple(groups))


def _subject(request: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    gvk = request.get("kind") or {}
    kind = gvk.get("kind") or resource.get("kind") or ""
    metadata = resource.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    namespace = request.get("namespace") or metadata.get("namespace") or ""
    name = request.get("name") or metadata.get("name") or metadata.get("generateName") or ""
    return "/".join(str(part) for part in (kind, namespace, name) if part)


def _image_digests(resource: Mapping[str, Any]) -> tuple[str, ...]:
    from gate import pipeline  # not `from gate.pipeline import ...`: see gate.core

    found: dict[str, None] = {}
    for image in pipeline.images_of([resource]):
        if _DIGEST_PREFIX in image:
            digest = image[image.index(_DIGEST_PREFIX) + 1 :]
            if SHA256_DIGEST.fullmatch(digest):
                found[digest] = None
    return tuple(found)
