"""Normalised package identities, so that one package matches whichever tool described it.

Tools spell the same package differently (measured in the project's SBOM
notes): syft writes a Debian epoch into the version (``bsdutils@1:2.38.1``)
while Trivy moves it to an ``epoch`` qualifier; ``distro`` is ``debian-12``,
``debian-12.15`` or ``bookworm``; an npm scope is the purl namespace
(``%40babel``) or part of the name; PyPI names differ in case and in
``-``/``_``/``.``. :func:`normalise` reduces a purl to

* ``identity``: ``pkg:<type>/<namespace>/<name>``, casefolded (PyPI names
  also PEP 503-normalised), without version, qualifiers or subpath;
* ``version``: the version with a Debian/RPM epoch qualifier folded in
  (``1:2.38.1``), as the ecosystem's ordering reads it;
* ``ecosystem``: the purl type;
* ``distro``: the distribution release reduced to ``<id>-<major>`` where the
  qualifier allows it (kept for display and filters, not part of the identity).

The original purl is always kept beside these keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from packageurl import PackageURL

_PEP503 = re.compile(r"[-_.]+")
_EPOCH_TYPES = frozenset({"deb", "rpm"})
_DISTRO = re.compile(r"(?P<id>[a-z][a-z0-9_]*?)[-_ ]?(?P<release>\d+)(?:\.\d+)*")


@dataclass(frozen=True, slots=True)
class PurlKey:
    """The normalised identity of a purl (see the module docstring)."""

    identity: str
    version: str
    ecosystem: str
    distro: str = ""


def _distro(namespace: str, value: str) -> str:
    value = value.strip().casefold()
    if not value:
        return ""
    match = _DISTRO.fullmatch(value)
    if match is not None:
        return f"{match['id']}-{match['release']}"
    if value[0].isdigit():
        # Trivy's apk and some deb purls give the release only ("3.20.3"); the namespace names the distro.
        return f"{namespace.casefold()}-{value.split('.')[0]}" if namespace else value.split(".")[0]
    return value


def _name_parts(purl: PackageURL) -> tuple[str, str]:
    namespace = unquote(purl.namespace or "")
    name = unquote(purl.name or "")
    if purl.type == "npm":
        # A scope written into the name ("@babel/code-frame") or without its "@".
        if not namespace and name.startswith("@") and "/" in name:
            namespace, name = name.split("/", 1)
        if namespace and not namespace.startswith("@"):
            namespace = "@" + namespace
    if purl.type == "pypi":
        name = _PEP503.sub("-", name)
    return namespace.casefold(), name.casefold()


@lru_cache(maxsize=65536)
def normalise(purl: str) -> PurlKey | None:
    """The normalised key of a purl, or ``None`` when the text is not a purl."""
    if not purl.startswith("pkg:"):
        return None
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError:
        return None
    ecosystem = parsed.type.casefold()
    namespace, name = _name_parts(parsed)
    identity = f"pkg:{ecosystem}/{namespace}/{name}" if namespace else f"pkg:{ecosystem}/{name}"
    version = unquote(parsed.version or "").strip()
    qualifiers = parsed.qualifiers or {}
    epoch = str(qualifiers.get("epoch", "")).strip()
    if ecosystem in _EPOCH_TYPES and epoch.isdigit() and version and ":" not in version:
        version = f"{int(epoch)}:{version}"
    if ecosystem in _EPOCH_TYPES and version.startswith("0:"):
        # Epoch 0 is the default: "0:1.2" and "1.2" are the same version.
        version = version[2:]
    return PurlKey(
        identity=identity,
        version=version,
        ecosystem=ecosystem,
        distro=_distro(namespace, str(qualifiers.get("distro", ""))),
    )


def search_prefix(text: str) -> tuple[str, str]:
    """The identity prefix and exact version a purl search means.

    ``pkg:pypi/Requests`` -> (``pkg:pypi/requests``, ``""``); with a version,
    the version must match exactly (after epoch folding). Text that does not
    parse as a purl (``pkg:deb/debian/``) is matched as a casefolded prefix
    with qualifiers and subpath cut off.
    """
    key = normalise(text)
    if key is None:
        return re.split(r"[?#@]", text, maxsplit=1)[0].casefold(), ""
    # "pkg:npm/%40babel/" asks for every package of the scope, not for one named "@babel".
    identity = key.identity + "/" if text.rstrip().endswith("/") and not key.version else key.identity
    return identity, key.version


def fallback_identity(component_type: str, group: str, name: str) -> str:
    """An identity for a component without a purl: its type, group and name, casefolded."""
    return f"{component_type}:{group}/{name}".casefold()
