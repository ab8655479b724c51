"""Reading one report: typed field access with JSON paths in errors, secrets, fingerprints.

A :class:`Ctx` lives for one ``parse_report`` call. Parsers read fields through it so
that every complaint names the source and the JSON path, register the secret values
they meet (to keep them out of findings and of the redacted report), and append
findings.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from gate.errors import InvalidArgument
from gate.model import Finding
from scanners.reports._types import ArtifactHints, ReportError

T = TypeVar("T")

# Placeholders scanners write instead of a secret: never treated as one.
_PLACEHOLDERS = frozenset({"REDACTED", "<redacted>", "***"})
# Shorter values would turn the redaction pass into noise (and are not secrets).
_MIN_SECRET_LENGTH = 4
_PREVIEW_STARS = "********"
_FINGERPRINT_VERSION = "gate-finding/v1"
# The escape a NUL takes in JSON text (json.loads refuses a raw one inside a string).
NUL_ESCAPE = b"\\u0000"


def join(path: str, key: str | int) -> str:
    """Extend a JSON path: ``join("Results[3]", "Severity")`` is ``Results[3].Severity``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def fingerprint(*parts: str) -> str:
    """A ``sha256:<hex>`` over the identity parts (order matters, parts are delimited)."""
    digest = hashlib.sha256(_FINGERPRINT_VERSION.encode())
    for part in parts:
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return "sha256:" + digest.hexdigest()


def preview(secret: str) -> str:
    """The redacted preview of a secret: at most 4 leading characters and never more than a quarter.

    ``ghp_abcdefghijklmnop`` (20 characters) shows ``ghp_`` then ``********``; a secret of
    under 8 characters shows only stars. The number of stars is fixed so that the preview
    does not tell the secret's length either.
    """
    shown = min(4, len(secret) // 4)
    return secret[:shown] + _PREVIEW_STARS


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "a number"),
    (float, "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


class Ctx:
    """State of one parse: where we are, what was found, which secrets to keep out."""

    def __init__(self, *, source: str, secret_key: bytes, root: str = "", may_hold_nul: bool = True) -> None:
        self.source = source
        # False when the report's text holds no NUL escape: then no string read can hold one.
        self._may_hold_nul = may_hold_nul
        self._key = secret_key
        self._root = root.rstrip("/") + "/" if root and root != "/" else ""
        self.findings: list[Finding] = []
        self.warnings: list[str] = []
        self.sensitive: set[str] = set()
        self.changed = False
        self.tool_version = ""
        self.tool = ""
        self.format = ""

    # -- errors ---------------------------------------------------------------

    def where(self, path: str) -> str:
        """The field name an error carries: ``<source>: <path>``."""
        head = self.source or "report"
        return f"{head}: {path}" if path else head

    def error(self, path: str, problem: str) -> ReportError:
        """An error about the value at ``path``."""
        return ReportError(self.where(path), problem)

    def add(self, finding: Finding, path: str) -> None:
        """Append the finding read at ``path``, refusing the report when gate could not store it alike
        on every backend: a control character in an identifier, or a NUL anywhere.

        Identifiers are checked here, once they are built, because many are derived rather than
        read (a SARIF URI percent-decoded, a package name taken from a message, a title standing
        in for a rule id); reads of free text already refused a NUL at its exact path.
        """
        package, location = finding.package, finding.location
        # The common case in one C-level pass over the identifiers joined; the labelled check
        # runs only when that pass (or a possible percent-encoded control in a purl) says so.
        joined = finding.scanner + finding.rule_id + finding.tool_severity
        if package is not None:
            joined += package.name + package.version + package.purl + "".join(package.fixed_versions)
        if location is not None:
            joined += location.path + location.commit + location.layer_digest
        if not joined.isprintable() or "%" in joined or self._may_hold_nul:
            problem = _finding_problem(finding)
            if problem is not None:
                raise self.error(path, problem)
        self.findings.append(finding)

    def check_hints(self, hints: ArtifactHints) -> None:
        """Refuse the report when what it says about the artifact or the tool holds a control character."""
        values = (
            ("scanner", self.tool),
            ("scanner version", self.tool_version),
            ("artifact name", hints.name),
            ("artifact type", hints.type),
            ("image id", hints.image_id),
            *(("repository digest", digest) for digest in hints.repo_digests),
            ("repository URL", hints.repo_url),
            ("commit", hints.commit),
            ("branch", hints.branch),
        )
        problem = _identifier_problem(values)
        if problem is not None:
            raise self.error("", problem)

    def warn(self, path: str, problem: str) -> None:
        """Record something unexpected that parsing tolerated."""
        self.warnings.append(f"{self.where(path)}: {problem}")

    # -- typed access -----------------------------------------------------------

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        """``value`` as a JSON object, else an error naming ``path``."""
        if not isinstance(value, dict):
            raise self.error(path, f"expected an object, got {_kind(value)}")
        return value

    def arr(self, value: Any, path: str) -> list[Any]:
        """``value`` as a JSON array (``null`` reads as empty), else an error naming ``path``."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(path, f"expected an array, got {_kind(value)}")
        return value

    def objects(self, value: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
        """The items of an array of objects, each with its path."""
        items = self.arr(value, path)
        paired = [(f"{path}[{i}]", item) for i, item in enumerate(items)]
        for item_path, item in paired:
            if not isinstance(item, dict):
                self.obj(item, item_path)
        return paired

    def field_obj(self, parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        """An optional object member (missing or ``null`` reads as empty)."""
        value = parent.get(key)
        if isinstance(value, dict):
            return value
        return {} if value is None else self.obj(value, join(path, key))

    def field_objects(
        self, parent: Mapping[str, Any], key: str, path: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """An optional array-of-objects member, each item with its path."""
        return self.objects(parent.get(key), join(path, key))

    def text(self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str:
        """A string member; missing or ``null`` is ``""`` unless ``required``."""
        value = parent.get(key)
        if value is None:
            if required:
                raise self.error(join(path, key), "required, missing")
            return ""
        if not isinstance(value, str):
            raise self.error(join(path, key), f"expected a string, got {_kind(value)}")
        if required and not value:
            raise self.error(join(path, key), "required, got an empty string")
        if self._may_hold_nul and "\x00" in value:
            # PostgreSQL's text columns refuse NUL and SQLite's keep it: refused here, on every
            # backend, before anything is stored. The message never quotes the value (a secret).
            raise self.error(join(path, key), _nul_problem())
        return value

    def texts(self, parent: Mapping[str, Any], key: str, path: str) -> list[str]:
        """An optional array of strings."""
        items = self.arr(parent.get(key), join(path, key))
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(join(join(path, key), i), f"expected a string, got {_kind(item)}")
            if self._may_hold_nul and "\x00" in item:
                raise self.error(join(join(path, key), i), _nul_problem())
        return items

    def integer(self, parent: Mapping[str, Any], key: str, path: str) -> int:
        """A whole-number member (missing or ``null`` is 0)."""
        value = parent.get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise self.error(join(path, key), f"expected a whole number, got {_short(value)}")
        return int(value)

    def number(self, parent: Mapping[str, Any], key: str, path: str) -> float:
        """A numeric member (missing or ``null`` is 0.0)."""
        value = parent.get(key)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(join(path, key), f"expected a number, got {_short(value)}")
        return float(value)

    def boolean(self, parent: Mapping[str, Any], key: str, path: str) -> bool:
        """A boolean member (missing or ``null`` is False)."""
        value = parent.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(join(path, key), f"expected true or false, got {_short(value)}")
        return value

    def choice(self, parent: Mapping[str, Any], key: str, path: str, table: Mapping[str, T], default: T) -> T:
        """A string member looked up in ``table``; missing or empty gives ``default``."""
        value = self.text(parent, key, path)
        if not value:
            return default
        try:
            return table[value]
        except KeyError:
            expected = ", ".join(repr(k) for k in table)
            raise self.error(join(path, key), f"expected one of {expected}, got {_short(value)}") from None

    # -- paths, secrets, identity -------------------------------------------------

    def relpath(self, path: str) -> str:
        """A path relative to the scan root where it lies under it (``./`` dropped)."""
        if self._root and path.startswith(self._root):
            path = path[len(self._root) :]
        if path.startswith("./"):
            path = posixpath.normpath(path)
        return path

    def secret(self, value: str) -> tuple[str, str]:
        """Register a secret value; return its keyed hash (hex) and its redacted preview.

        The hash is HMAC-SHA256 under the gate's secret key, so equal secrets give equal
        fingerprints without the fingerprint revealing the secret to anyone without the key.
        """
        value = value.strip()
        if self.is_placeholder(value):
            return "", value
        self.sensitive.add(value)
        keyed = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return keyed, preview(value)

    def mark_sensitive(self, value: str) -> None:
        """Keep ``value`` (a line or match that carries a secret) out of the outputs."""
        value = value.strip()
        if not self.is_placeholder(value):
            self.sensitive.add(value)

    @staticmethod
    def is_placeholder(value: str) -> bool:
        """True for values that hold no secret: empty, ``REDACTED``, only stars, too short."""
        return (
            len(value) < _MIN_SECRET_LENGTH
            or value in _PLACEHOLDERS
            or not value.strip("*. ")
            or value.startswith("REDACTED")
        )


def _nul_problem() -> str:
    # Imported when a report is refused: gate.sbom costs 0.2 s to import, parsing never needs it.
    from gate.sbom._ingest import NUL_PROBLEM

    return NUL_PROBLEM


def _finding_problem(finding: Finding) -> str | None:
    identifiers = [
        ("scanner", finding.scanner),
        ("rule id", finding.rule_id),
        ("tool severity", finding.tool_severity),
    ]
    package, location = finding.package, finding.location
    if package is not None:
        identifiers += [
            ("package name", package.name),
            ("package version", package.version),
            ("package URL", package.purl),
            *(("fixed version", version) for version in package.fixed_versions),
        ]
    if location is not None:
        identifiers += [("commit", location.commit), ("layer digest", location.layer_digest)]
    problem = _identifier_problem(identifiers)
    if problem is not None:
        return problem
    if package is not None and "%" in package.purl:
        # A purl re-encodes a decoded control character (%01); the SBOM index refuses those too.
        from gate.sbom._ingest import purl

        try:
            purl(package.purl, "package URL")
        except InvalidArgument as refused:
            return f"package URL: {refused.problem}"
    texts = (
        # A file name may hold any byte but NUL and "/" (a newline too): a scanned tree with such
        # a file must not fail its scan, so a path is held to the free-text rule.
        *((("file path", location.path),) if location is not None else ()),
        ("title", finding.title),
        ("description", finding.description),
        ("redacted match", finding.redacted_match),
        *(("reference", link) for link in finding.references),
    )
    for label, value in texts:
        if "\x00" in value:
            return f"{label}: {_nul_problem()}"
    return None


def _identifier_problem(identifiers: Iterable[tuple[str, str]]) -> str | None:
    """``<label>: <problem>`` for the first value holding a C0 control character, else None."""
    pairs = tuple(identifiers)
    # One C-level pass over all of them for the common case; isprintable() is also false for
    # some harmless characters (U+00A0), so a miss only means looking closer.
    if "".join(value for _, value in pairs).isprintable():
        return None
    from gate.sbom._ingest import identifier

    for label, value in pairs:
        try:
            identifier(value, label)
        except InvalidArgument as refused:
            return f"{label}: {refused.problem}"
    return None


def masked_tokens(line: str) -> list[str]:
    """The tokens of a line a scanner masked with ``*`` (with any unmasked rest of the token).

    Trivy masks only a rule's secret group: ``T=*****-2764302760189-C8nX`` leaves the tail
    readable, so the whole token counts as the secret. Linear in the line's length: each
    run of stars is widened to its token once, and runs inside a found token are skipped.
    """
    tokens: dict[str, None] = {}
    covered = 0
    for run in _STARS.finditer(line):
        if run.start() < covered:
            continue
        start, end = run.start(), run.end()
        while start > 0 and line[start - 1] not in _DELIMITERS:
            start -= 1
        while end < len(line) and line[end] not in _DELIMITERS:
            end += 1
        covered = end
        tokens.setdefault(line[start:end], None)
    return list(tokens)


_STARS = re.compile(r"\*{3,}")
_DELIMITERS = frozenset(" \t\r\n=:\"'`,;(){}<>[]")
