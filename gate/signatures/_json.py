"""Reading JSON that came with signature material (payloads, envelopes, bundles, trust roots)."""

from __future__ import annotations

from typing import Any

from gate._strict_json import StrictJsonError, loads
from gate.errors import InvalidArgument

# Where a container sits: its parent's place and its key or index (None for the document).
_Where = tuple["_Where | None", object]

# Refusals worth their own words: an attack on the reader or an ambiguous document, not a
# garbled file.
_OWN_WORDS = ("depth", "duplicate_key", "non_finite", "integer")


def load_json(data: bytes | str, what: str, not_json: str = "not JSON") -> Any:
    """``json.loads`` whose every failure is :class:`InvalidArgument` naming ``what``.

    ``not_json`` is the problem reported for text that is not JSON at all.

    Raises:
        InvalidArgument: not JSON, not UTF-8, nested deeper than the parser can follow, an
            object naming a key twice, NaN/Infinity/a number beyond a double, or an integer
            longer than Python reads.
    """
    try:
        # A signed document must mean one thing to every reader. With a key written twice,
        # Python's json keeps the last value and other readers may keep the first, so what gate
        # checked and what a verifier elsewhere reads from the same signed bytes could differ;
        # JSON has no NaN or Infinity, which other readers refuse. Encodings and lone surrogates
        # keep json.loads' tolerance, as signature material has always been read.
        return loads(data, any_encoding=True, allow_lone_surrogates=True)
    except StrictJsonError as exc:
        if exc.kind in _OWN_WORDS:
            raise InvalidArgument(what, f"got {exc.reason}") from None
        raise InvalidArgument(what, not_json) from None


def check_json_shape(data: bytes, what: str, *, max_members: int, max_containers: int) -> None:
    """Refuse a document before a model library (pydantic) reads it, for what it reads badly.

    The ``sigstore`` models keep the last of a repeated key, where Go's protojson (cosign,
    sigstore-go) refuses the document. And they are slow to refuse a large one: every item of
    an invalid list is an error (a bundle of 12 MB holding four million ``{}`` as log entries
    took 90 s and gigabytes to refuse), and each error renders its input (an unknown field
    holding two million objects took ten seconds). No list or object of a
    bundle or trusted root needs more than ``max_members`` members, nor the document more than
    ``max_containers`` lists and objects. Text that is not JSON at all is left to the library
    to describe.

    Raises:
        InvalidArgument: a repeated key, nesting past the parser's depth, NaN or Infinity, an
            integer longer than Python reads, a list or object with more than ``max_members``
            members (named by its path), or more than ``max_containers`` lists and objects.
    """
    try:
        document = loads(data, any_encoding=True, allow_lone_surrogates=True)
    except StrictJsonError as exc:
        if exc.kind in _OWN_WORDS:
            raise InvalidArgument(what, f"got {exc.reason}") from None
        return
    # Iterative (a document may be nested as deep as json allows); empty containers are
    # counted but not visited. A path is spelled out only for the container that is refused.
    stack: list[tuple[dict[str, Any] | list[Any], _Where | None]] = []
    if isinstance(document, dict | list):
        stack.append((document, None))
    containers = len(stack)
    while stack:
        node, where = stack.pop()
        if len(node) > max_members:
            kind = "members" if type(node) is dict else "items"
            raise InvalidArgument(
                _path(what, where), f"got {len(node)} {kind}, expected at most {max_members}"
            )
        members = node.items() if type(node) is dict else enumerate(node)
        for key, value in members:
            if type(value) is dict or type(value) is list:
                containers += 1
                if value:
                    stack.append((value, (where, key)))
        if containers > max_containers:
            raise InvalidArgument(
                what, f"got more than {max_containers} lists and objects, expected at most {max_containers}"
            )


def _path(what: str, where: _Where | None) -> str:
    keys: list[object] = []
    while where is not None:
        where, key = where
        keys.append(key)
    return what + "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in reversed(keys))
