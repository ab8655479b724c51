"""Function libraries of the CEL environments: Kubernetes' (lists, regex, quantity, URL, IP/CIDR,
semver) and Kyverno's that need no live cluster (image references, image metadata and resources
from offline data, service-account names, JSON/YAML, hashes, time).

The CEL library dispatches Python functions only on concrete parameter types, so the Kubernetes
object types (Quantity, URL, IP, CIDR, Semver, Image) are maps tagged with :data:`TAG`; their
member functions are declared on ``map(string, dyn)`` and check the tag.

Functions that read request data (``image.GetMetadata``, ``resource.Get``) find it in
:data:`CURRENT`, set around every evaluation: the library binds implementations when the
environment is built, once per process.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import hashlib
import importlib
import ipaddress
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import yaml
from cel_expr_python import cel

from policies._quantity import parse_quantity

# google-re2 has no type information; loaded the way policies._functions loads it.
re2: Any = importlib.import_module("re2")

TAG = "@type"

_D = cel.Type.DYN
_S = cel.Type.STRING
_B = cel.Type.BOOL
_I = cel.Type.INT
_F = cel.Type.DOUBLE
_M = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
_L = cel.Type.List(cel.Type.DYN)
_TS = cel.Type.TIMESTAMP
_DUR = cel.Type.DURATION

MAX_REGEX_CHARS = 2_000
"""Longest pattern ``find``/``findAll`` compile (RE2 is linear in the input, not in the pattern)."""


@dataclass(frozen=True)
class RequestData:
    """What Kyverno's functions read for one request (offline: a ``kyverno test`` Context file).

    Attributes:
        images: image reference -> metadata map (``image.GetMetadata``).
        resources: Kubernetes objects ``resource.Get``/``resource.List`` answer from.
        now: the clock ``time.now()`` reads.
        http: answers ``http.Get``/``http.Post`` (method, URL, body); None: such calls error.
            The engine makes no network call itself: the caller's resolver answers (gate's own
            evidence endpoint, say).
    """

    images: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    resources: Sequence[Mapping[str, Any]] = ()
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    http: Callable[[str, str, Mapping[str, Any]], Any] | None = None


# A frozen dataclass: sharing the default between contexts is safe.
_NO_DATA = RequestData()
CURRENT: contextvars.ContextVar[RequestData] = contextvars.ContextVar("cel_request_data", default=_NO_DATA)


def _without_nulls(mapping: dict[str, Any]) -> dict[str, Any]:
    if None in mapping.values():
        return {key: {} if item is None else item for key, item in mapping.items()}
    return mapping


def cel_json(text: str) -> Any:
    """Decode JSON for the CEL library: null map values become ``{}``.

    cel-go treats ``has(x.f)`` and ``x.?f`` on a null ``x`` as absent, cel-cpp raises "Applying
    SELECT to non-message type"; an empty map gives cel-go's answer for those tests.
    """
    if "null" in text:
        return json.loads(text, object_hook=_without_nulls)
    return json.loads(text)


def _plain(value: Any) -> Any:
    """Offline data as CEL input (JSON types only, null map values as ``{}``)."""
    return cel_json(json.dumps(value, default=str))


@contextlib.contextmanager
def bound_data(data: RequestData) -> Iterator[None]:
    """Make ``data`` what Kyverno's functions read while the block evaluates expressions."""
    token = CURRENT.set(data)
    try:
        yield
    finally:
        CURRENT.reset(token)


def _decl(name: str, *overloads: tuple[str, Any, Sequence[Any], bool, Callable[..., Any]]) -> Any:
    return cel.FunctionDecl(
        name,
        [cel.Overload(oid, ret, list(params), member, impl) for oid, ret, params, member, impl in overloads],
    )


def _tagged(value: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or value.get(TAG) != kind:
        got = value.get(TAG) if isinstance(value, Mapping) else type(value).__name__
        raise ValueError(f"no such overload: expected a {kind}, got {got or 'map'}")
    return value


# --- Kubernetes lists and regex ----------------------------------------------------------------


def _comparable(items: Sequence[Any]) -> list[Any]:
    values = list(items)
    kinds = {type(v) for v in values}
    if kinds - {int, float} and len(kinds) > 1:
        raise ValueError("no such overload: list elements of different types")
    return values


def _is_sorted(items: Sequence[Any]) -> bool:
    values = _comparable(items)
    return all(a <= b for a, b in itertools.pairwise(values))


def _sum(items: Sequence[Any]) -> Any:
    values = _comparable(items)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError("no such overload: sum needs a list of numbers")
    return sum(values)


def _extreme(pick: Callable[[list[Any]], Any]) -> Callable[[Sequence[Any]], Any]:
    def run(items: Sequence[Any]) -> Any:
        values = _comparable(items)
        if not values:
            raise ValueError("min/max of an empty list")
        return pick(values)

    return run


def _regex(pattern: str) -> Any:
    if len(pattern) > MAX_REGEX_CHARS:
        raise ValueError(f"regular expression longer than {MAX_REGEX_CHARS} characters")
    try:
        return re2.compile(pattern)
    except re2.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def _find(text: str, pattern: str) -> str:
    found = _regex(pattern).search(text)
    return found.group(0) if found else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    found = [m.group(0) for m in _regex(pattern).finditer(text)]
    return found if limit < 0 else found[:limit]


# --- Quantity ----------------------------------------------------------------------------------


def _quantity(text: str) -> Mapping[str, Any]:
    if parse_quantity(text) is None:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    return {TAG: "quantity", "value": text}


def _quantity_value(value: Any) -> Fraction:
    parsed = parse_quantity(str(_tagged(value, "quantity")["value"]))
    if parsed is None:
        raise ValueError("invalid quantity")
    return parsed


def _is_quantity(text: str) -> bool:
    return parse_quantity(text) is not None


def _from_fraction(value: Fraction) -> Mapping[str, Any]:
    if value.denominator == 1:
        return {TAG: "quantity", "value": str(value.numerator)}
    milli = value * 1000
    if milli.denominator == 1:
        return {TAG: "quantity", "value": f"{milli.numerator}m"}
    return {TAG: "quantity", "value": repr(float(value))}


def _quantity_add(left: Any, right: Any) -> Mapping[str, Any]:
    other = Fraction(right) if isinstance(right, int) else _quantity_value(right)
    return _from_fraction(_quantity_value(left) + other)


def _quantity_sub(left: Any, right: Any) -> Mapping[str, Any]:
    other = Fraction(right) if isinstance(right, int) else _quantity_value(right)
    return _from_fraction(_quantity_value(left) - other)


def _as_integer(value: Any) -> int:
    number = _quantity_value(value)
    if number.denominator != 1 or not -(2**63) <= number.numerator < 2**63:
        raise ValueError("cannot convert value to integer")
    return number.numerator


def _sign(value: Any) -> int:
    number = _quantity_value(value)
    return (number > 0) - (number < 0)


# --- Semver ------------------------------------------------------------------------------------

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def _semver(text: str) -> Mapping[str, Any]:
    found = _SEMVER.match(text)
    if not found:
        raise ValueError(f"error converting string to semver: {text!r}")
    return {
        TAG: "semver",
        "major": int(found.group(1)),
        "minor": int(found.group(2)),
        "patch": int(found.group(3)),
        "pre": found.group(4) or "",
    }


def _is_semver(text: str) -> bool:
    return _SEMVER.match(text) is not None


def _semver_key(value: Mapping[str, Any]) -> tuple[Any, ...]:
    pre = str(value["pre"])
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return (value["major"], value["minor"], value["patch"], 0 if pre else 1, parts)


def _compare(left: Any, right: Any) -> int:
    kind = left.get(TAG) if isinstance(left, Mapping) else None
    if kind == "quantity":
        a_q, b_q = _quantity_value(left), _quantity_value(right)
        return (a_q > b_q) - (a_q < b_q)
    if kind == "semver":
        a_s, b_s = _semver_key(_tagged(left, "semver")), _semver_key(_tagged(right, "semver"))
        return (a_s > b_s) - (a_s < b_s)
    raise ValueError("no such overload: compareTo needs two quantities or two semvers")


def _semver_part(name: str) -> Callable[[Any], int]:
    def run(value: Any) -> int:
        return int(_tagged(value, "semver")[name])

    return run


# --- URL ---------------------------------------------------------------------------------------


def _url(text: str) -> Mapping[str, Any]:
    parts = urlsplit(text)
    if not parts.scheme and not text.startswith("/"):
        raise ValueError(f"URL must be an absolute URI or an absolute path: {text!r}")
    return {TAG: "url", "value": text}


def _is_url(text: str) -> bool:
    try:
        _url(text)
        return True
    except ValueError:
        return False


def _url_part(name: str) -> Callable[[Any], str]:
    def run(value: Any) -> str:
        parts = urlsplit(str(_tagged(value, "url")["value"]))
        if name == "scheme":
            return parts.scheme
        if name == "host":
            return parts.netloc.rsplit("@", 1)[-1]
        if name == "hostname":
            return parts.hostname or ""
        if name == "port":
            return str(parts.port or "") if parts.netloc else ""
        if name == "path":
            return parts.path
        return parts.query

    return run


# --- IP and CIDR -------------------------------------------------------------------------------


def _ip(text: str) -> Mapping[str, Any]:
    if "%" in text:
        raise ValueError("IP address with zone value is not allowed")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"IP Address {text!r} parse error during conversion from string") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise ValueError("IPv4-mapped IPv6 address is not allowed")
    return {TAG: "ip", "value": text}


def _address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(str(_tagged(value, "ip")["value"]))


def _cidr(text: str) -> Mapping[str, Any]:
    try:
        ipaddress.ip_interface(text)
        if "/" not in text:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"network address parse error during conversion from CIDR string: {text!r}"
        ) from None
    return {TAG: "cidr", "value": text}


def _interface(value: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(str(_tagged(value, "cidr")["value"]))


def _valid(check: Callable[[str], Any]) -> Callable[[str], bool]:
    def run(text: str) -> bool:
        try:
            check(text)
            return True
        except ValueError:
            return False

    return run


def _ip_predicate(name: str) -> Callable[[Any], bool]:
    def run(value: Any) -> bool:
        address = _address(value)
        if name == "loopback":
            return address.is_loopback
        if name == "unspecified":
            return address.is_unspecified
        if name == "linkLocalMulticast":
            return address.is_multicast and address in ipaddress.ip_network(
                "224.0.0.0/24" if address.version == 4 else "ff02::/16"
            )
        if name == "linkLocalUnicast":
            return address.is_link_local and not address.is_multicast
        return not (
            address.is_unspecified
            or address.is_loopback
            or address.is_multicast
            or address.is_link_local
            or (address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255"))
        )

    return run


def _contains_ip(cidr_value: Any, other: Any) -> bool:
    network = _interface(cidr_value).network
    address = _address(_ip(other) if isinstance(other, str) else other)
    return address in network


def _contains_cidr(cidr_value: Any, other: Any) -> bool:
    network = _interface(cidr_value).network
    inner = _interface(_cidr(other) if isinstance(other, str) else other).network
    return inner.version == network.version and inner.subnet_of(network)  # type: ignore[arg-type]


def _masked(value: Any) -> Mapping[str, Any]:
    return {TAG: "cidr", "value": str(_interface(value).network)}


def _cidr_ip(value: Any) -> Mapping[str, Any]:
    return {TAG: "ip", "value": str(_interface(value).ip)}


def _is_canonical(text: str) -> bool:
    return str(ipaddress.ip_address(str(_ip(text)["value"]))) == text


def kubernetes_functions() -> list[Any]:
    """Declarations of the Kubernetes CEL libraries (beyond the CEL extensions the library has)."""
    return [
        _decl("isSorted", ("list_is_sorted", _B, [_L], True, _is_sorted)),
        _decl("sum", ("list_sum", _D, [_L], True, _sum)),
        _decl("min", ("list_min", _D, [_L], True, _extreme(min))),
        _decl("max", ("list_max", _D, [_L], True, _extreme(max))),
        _decl("find", ("string_find", _S, [_S, _S], True, _find)),
        _decl(
            "findAll",
            ("string_find_all", cel.Type.List(_S), [_S, _S], True, _find_all),
            ("string_find_all_n", cel.Type.List(_S), [_S, _S, _I], True, _find_all),
        ),
        _decl("quantity", ("quantity_string", _M, [_S], False, _quantity)),
        _decl("isQuantity", ("is_quantity_string", _B, [_S], False, _is_quantity)),
        _decl(
            "isInteger",
            ("quantity_is_integer", _B, [_M], True, lambda q: _quantity_value(q).denominator == 1),
        ),
        _decl("asInteger", ("quantity_as_integer", _I, [_M], True, _as_integer)),
        _decl(
            "asApproximateFloat", ("quantity_as_float", _F, [_M], True, lambda q: float(_quantity_value(q)))
        ),
        _decl("sign", ("quantity_sign", _I, [_M], True, _sign)),
        _decl(
            "add",
            ("quantity_add", _M, [_M, _M], True, _quantity_add),
            ("quantity_add_int", _M, [_M, _I], True, _quantity_add),
        ),
        _decl(
            "sub",
            ("quantity_sub", _M, [_M, _M], True, _quantity_sub),
            ("quantity_sub_int", _M, [_M, _I], True, _quantity_sub),
        ),
        _decl("compareTo", ("map_compare_to", _I, [_M, _M], True, _compare)),
        _decl("isGreaterThan", ("map_greater", _B, [_M, _M], True, lambda a, b: _compare(a, b) > 0)),
        _decl("isLessThan", ("map_less", _B, [_M, _M], True, lambda a, b: _compare(a, b) < 0)),
        _decl("semver", ("semver_string", _M, [_S], False, _semver)),
        _decl("isSemver", ("is_semver_string", _B, [_S], False, _is_semver)),
        _decl("major", ("semver_major", _I, [_M], True, _semver_part("major"))),
        _decl("minor", ("semver_minor", _I, [_M], True, _semver_part("minor"))),
        _decl("patch", ("semver_patch", _I, [_M], True, _semver_part("patch"))),
        _decl("url", ("url_string", _M, [_S], False, _url)),
        _decl("isURL", ("is_url_string", _B, [_S], False, _is_url)),
        _decl("getScheme", ("url_scheme", _S, [_M], True, _url_part("scheme"))),
        _decl("getHost", ("url_host", _S, [_M], True, _url_part("host"))),
        _decl("getHostname", ("url_hostname", _S, [_M], True, _url_part("hostname"))),
        _decl("getPort", ("url_port", _S, [_M], True, _url_part("port"))),
        _decl("getEscapedPath", ("url_path", _S, [_M], True, _url_part("path"))),
        _decl("getQuery", ("url_query", _S, [_M], True, _url_part("query"))),
        _decl(
            "ip",
            ("ip_string", _M, [_S], False, _ip),
            ("cidr_ip", _M, [_M], True, _cidr_ip),
        ),
        _decl("isIP", ("is_ip_string", _B, [_S], False, _valid(_ip))),
        _decl("ip.isCanonical", ("ip_is_canonical", _B, [_S], False, _is_canonical)),
        _decl("cidr", ("cidr_string", _M, [_S], False, _cidr)),
        _decl("isCIDR", ("is_cidr_string", _B, [_S], False, _valid(_cidr))),
        _decl("family", ("ip_family", _I, [_M], True, lambda v: _address(v).version)),
        _decl("isLoopback", ("ip_loopback", _B, [_M], True, _ip_predicate("loopback"))),
        _decl("isUnspecified", ("ip_unspecified", _B, [_M], True, _ip_predicate("unspecified"))),
        _decl("isLinkLocalMulticast", ("ip_llm", _B, [_M], True, _ip_predicate("linkLocalMulticast"))),
        _decl("isLinkLocalUnicast", ("ip_llu", _B, [_M], True, _ip_predicate("linkLocalUnicast"))),
        _decl("isGlobalUnicast", ("ip_global", _B, [_M], True, _ip_predicate("global"))),
        _decl(
            "containsIP",
            ("cidr_contains_ip_string", _B, [_M, _S], True, _contains_ip),
            ("cidr_contains_ip", _B, [_M, _M], True, _contains_ip),
        ),
        _decl(
            "containsCIDR",
            ("cidr_contains_cidr_string", _B, [_M, _S], True, _contains_cidr),
            ("cidr_contains_cidr", _B, [_M, _M], True, _contains_cidr),
        ),
        _decl("masked", ("cidr_masked", _M, [_M], True, _masked)),
        _decl("prefixLength", ("cidr_prefix", _I, [_M], True, lambda v: _interface(v).network.prefixlen)),
    ]


# --- Kyverno -----------------------------------------------------------------------------------

_DEFAULT_REGISTRY = "index.docker.io"
_REFERENCE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::\d+)?|localhost(?::\d+)?)/)?(?P<path>[a-z0-9]+(?:(?:[._]|__|-+|/)[a-z0-9]+)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def _image(text: str) -> Mapping[str, Any]:
    found = _REFERENCE.match(text)
    if not found or not found.group("path"):
        raise ValueError(f"could not parse image reference: {text!r}")
    registry = found.group("registry")
    path = found.group("path")
    if registry and "." not in registry and ":" not in registry and not registry.startswith("localhost"):
        path, registry = f"{registry}/{path}", None
    registry = registry or _DEFAULT_REGISTRY
    if registry in ("docker.io", _DEFAULT_REGISTRY) and "/" not in path:
        path = f"library/{path}"
    digest = found.group("digest") or ""
    tag = found.group("tag") or ("" if digest else "latest")
    return {
        TAG: "image",
        "value": text,
        "registry": registry,
        "repository": path,
        "tag": tag,
        "digest": digest,
    }


def _image_part(name: str) -> Callable[[Any], Any]:
    def run(value: Any) -> Any:
        image = _tagged(value, "image")
        if name == "identifier":
            return image["digest"] or image["tag"]
        if name == "containsDigest":
            return bool(image["digest"])
        return image[name]

    return run


def _image_metadata(reference: str) -> Mapping[str, Any]:
    images = CURRENT.get().images
    if reference not in images:
        raise ValueError(f"failed to fetch image descriptor: {reference}: no image metadata supplied")
    found = dict(images[reference])
    parsed = _image(reference)
    found.setdefault("image", reference)
    found.setdefault("resolvedImage", reference)
    found.setdefault("registry", parsed["registry"])
    found.setdefault("repository", parsed["repository"])
    found.setdefault("identifier", parsed["digest"] or parsed["tag"])
    return _plain(found)  # type: ignore[no-any-return]


def _plural_matches(obj: Mapping[str, Any], api_version: str, resource: str) -> bool:
    if str(obj.get("apiVersion", "")) != api_version:
        return False
    return resource_name(str(obj.get("kind", ""))) == resource.lower()


def resource_name(kind: str) -> str:
    """The lowercase plural resource of a kind, guessed as Kubernetes does without discovery."""
    lower = kind.lower()
    if not lower:
        return lower
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def _resource_get(api_version: str, resource: str, namespace: str, name: str) -> Mapping[str, Any]:
    for obj in CURRENT.get().resources:
        metadata = obj.get("metadata") or {}
        if (
            _plural_matches(obj, api_version, resource)
            and str(metadata.get("name", "")) == name
            and str(metadata.get("namespace", "") or "") == namespace
        ):
            return _plain(obj)  # type: ignore[no-any-return]
    raise ValueError(f'{resource} "{name}" not found')


def _resource_list(
    api_version: str, resource: str, namespace: str, labels: Mapping[str, Any] | None = None
) -> Mapping[str, Any]:
    items = []
    for obj in CURRENT.get().resources:
        metadata = obj.get("metadata") or {}
        if not _plural_matches(obj, api_version, resource):
            continue
        if namespace and str(metadata.get("namespace", "") or "") != namespace:
            continue
        have = metadata.get("labels") or {}
        if labels and any(str(have.get(k)) != str(v) for k, v in labels.items()):
            continue
        items.append(obj)
    return _plain({"apiVersion": api_version, "kind": "List", "items": items})  # type: ignore[no-any-return]


def _parse_service_account(username: str) -> Mapping[str, str]:
    # Kyverno returns a Go struct: the field names keep Go's capitals.
    parts = username.split(":")
    if len(parts) == 4 and parts[0] == "system" and parts[1] == "serviceaccount":
        return {"Namespace": parts[2], "Name": parts[3]}
    return {"Namespace": "", "Name": ""}


def _json_unmarshal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"failed to unmarshal JSON: {exc}") from None


def _json_marshal(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _yaml_parse(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"failed to parse YAML: {exc}") from None


def _now() -> datetime.datetime:
    return CURRENT.get().now()


def _truncate(moment: datetime.datetime, step: datetime.timedelta) -> datetime.datetime:
    if step.total_seconds() <= 0:
        return moment
    epoch = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)
    aware = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
    return aware - (aware - epoch) % step


def _to_cron(moment: datetime.datetime) -> str:
    weekday = (moment.weekday() + 1) % 7
    return f"{moment.minute} {moment.hour} {moment.day} {moment.month} {weekday}"


def _list_obj_to_map(
    keys: Sequence[Any], values: Sequence[Any], key_field: str, value_field: str
) -> Mapping[str, Any]:
    result: dict[str, Any] = {}
    for item in (*keys, *values):
        if isinstance(item, Mapping) and key_field in item and value_field in item:
            result[str(item[key_field])] = item[value_field]
    return result


def _http(method: str) -> Callable[..., Any]:
    def run(url: str, *rest: Any) -> Any:
        call = CURRENT.get().http
        if call is None:
            raise ValueError(f"http.{method.title()} {url}: no HTTP responses are available to the engine")
        body = rest[0] if method == "POST" and rest else {}
        return _plain(call(method, url, body))

    return run


def _digest(name: str) -> Callable[[str], str]:
    def run(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    return run


def kyverno_functions() -> list[Any]:
    """Declarations of Kyverno's CEL libraries that need no live cluster."""
    declarations = [
        _decl(
            "image",
            ("image_string", _M, [_S], False, _image),
        ),
        _decl("parseImageReference", ("parse_image_reference", _M, [_S], False, _image)),
        _decl("isImage", ("is_image_string", _B, [_S], False, _valid(_image))),
        _decl("registry", ("image_registry", _S, [_M], True, _image_part("registry"))),
        _decl("repository", ("image_repository", _S, [_M], True, _image_part("repository"))),
        _decl("identifier", ("image_identifier", _S, [_M], True, _image_part("identifier"))),
        _decl("tag", ("image_tag", _S, [_M], True, _image_part("tag"))),
        _decl("digest", ("image_digest", _S, [_M], True, _image_part("digest"))),
        _decl("containsDigest", ("image_contains_digest", _B, [_M], True, _image_part("containsDigest"))),
        _decl("image.GetMetadata", ("image_get_metadata", _D, [_S], False, _image_metadata)),
        _decl("resource.Get", ("resource_get", _D, [_S, _S, _S, _S], False, _resource_get)),
        _decl(
            "resource.List",
            ("resource_list", _D, [_S, _S, _S], False, _resource_list),
            ("resource_list_labels", _D, [_S, _S, _S, _M], False, _resource_list),
        ),
        _decl("parseServiceAccount", ("parse_service_account", _D, [_S], False, _parse_service_account)),
        _decl(
            "user.parseServiceAccount",
            ("user_parse_service_account", _D, [_S], False, _parse_service_account),
        ),
        _decl("json.unmarshal", ("json_unmarshal", _D, [_S], False, _json_unmarshal)),
        _decl(
            "json.marshal",
            ("json_marshal_map", _S, [_M], False, _json_marshal),
            ("json_marshal_list", _S, [_L], False, _json_marshal),
        ),
        _decl("yaml.parse", ("yaml_parse", _D, [_S], False, _yaml_parse)),
        _decl(
            "http.Get",
            ("http_get", _D, [_S], False, _http("GET")),
            ("http_get_headers", _D, [_S, _M], False, _http("GET")),
        ),
        _decl(
            "http.Post",
            ("http_post", _D, [_S, _M], False, _http("POST")),
            ("http_post_headers", _D, [_S, _M, _M], False, _http("POST")),
        ),
        _decl("time.now", ("time_now", _TS, [], False, _now)),
        _decl("time.truncate", ("time_truncate", _TS, [_TS, _DUR], False, _truncate)),
        _decl("time.toCron", ("time_to_cron", _S, [_TS], False, _to_cron)),
        _decl("listObjToMap", ("list_obj_to_map", _M, [_L, _L, _S, _S], False, _list_obj_to_map)),
    ]
    for name in ("sha256", "sha1", "md5"):
        declarations.append(_decl(name, (f"{name}_string", _S, [_S], False, _digest(name))))
        declarations.append(_decl(f"hash.{name}", (f"hash_{name}_string", _S, [_S], False, _digest(name))))
    return declarations
