"""The entry points: load a report within a size limit, dispatch by tool, merge, redact."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import ahocorasick

from gate._strict_json import finite_float, lone_surrogate, unique_keys
from gate.errors import InvalidArgument
from gate.model import Finding, FindingStatus, SeverityCounts
from scanners.reports import _cyclonedx, _gitleaks, _sarif_in, _snyk, _sonarqube, _trivy
from scanners.reports._context import NUL_ESCAPE, Ctx
from scanners.reports._types import ArtifactHints, ParsedReport, QualityGate, ReportError, UnsupportedReport

TOOLS = ("trivy", "gitleaks", "snyk", "sonarqube", "sarif")
"""The values ``parse_report`` accepts for ``tool``."""

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Largest report parsed by default (256 MiB)."""

_MIN_KEY_BYTES = 16
_REDACTION = "<redacted by gate>"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# A 64-bit integer has at most 20 digits; no report field needs more, and a longer one only
# overflows later (a float of a 400-digit integer).
_MAX_INT_DIGITS = 20


def _bounded_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits; expected at most {_MAX_INT_DIGITS} (64 bits)")
    return int(text)


def _check_surrogates(text: str, doc: Any) -> None:
    # The store, the fingerprints' hashes and the redacted copy would fail on one.
    lone = lone_surrogate(text, doc)
    if lone is not None:
        raise ValueError(
            f"a string holds a lone UTF-16 surrogate (\\u{ord(lone):04x}); expected text UTF-8 can carry"
        )


def load(data: bytes, source: str, max_bytes: int) -> Any:
    """Decode a JSON report, refusing anything over ``max_bytes``.

    The whole document is parsed at once with the standard library: the redacted copy has
    to be rewritten from the complete tree anyway, and a streaming parser would not bound
    memory better than the size limit does (peak use is a small multiple of ``max_bytes``).
    """
    where = source or "report"
    if len(data) > max_bytes:
        raise ReportError(
            where, f"the report is {len(data)} bytes, over the limit of {max_bytes} bytes (max_bytes)"
        )
    if not data.strip():
        raise ReportError(where, "the report is empty")
    head = data.lstrip()[:1]
    if head in (b"<", b"P") or data[:2] == b"PK":
        kind = "a ZIP archive" if data[:2] == b"PK" else "XML or HTML (e.g. JUnit or an HTML export)"
        raise UnsupportedReport(where, f"the report is {kind}, not JSON")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportError(where, f"byte {exc.start}: not UTF-8 text") from None
    try:
        doc = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=finite_float,
            object_pairs_hook=unique_keys,
        )
        _check_surrogates(text, doc)
        return doc
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated string")
        truncated = " (the report looks truncated)" if at_end else ""
        if exc.lineno == 1 and exc.colno == 1 and b"," in data[:4096]:
            raise UnsupportedReport(where, "the report is not JSON (CSV or plain text?)") from None
        raise ReportError(
            where, f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}{truncated}"
        ) from None
    except ValueError as exc:
        raise ReportError(where, f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ReportError(where, "invalid JSON: nested too deeply") from None


def detect_tool(data: bytes, *, source: str = "", max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Which ``tool`` value a report is for: ``trivy``, ``gitleaks``, ``snyk``, ``sonarqube`` or ``sarif``.

    Raises:
        InvalidArgument: The report is not JSON, or its shape matches no supported tool
            (an empty array or ``null`` cannot tell; name the tool instead).
    """
    return _detect(load(data, source, max_bytes), source or "report")


def _detect(doc: Any, where: str) -> str:
    if _sarif_in.is_sarif(doc):
        return "sarif"
    found = ""
    if isinstance(doc, dict):
        found = _detect_object(doc)
    elif isinstance(doc, list) and doc and isinstance(doc[0], dict):
        found = _detect_item(doc[0])
    if found:
        return found
    if doc is None or doc == []:
        raise ReportError(where, "an empty report does not tell which tool wrote it; name the tool")
    raise UnsupportedReport(
        where, "the JSON matches no supported report (Trivy, gitleaks, Snyk, SonarQube, SARIF)"
    )


def _detect_object(doc: dict[str, Any]) -> str:
    keys = set(doc)
    operator = "aquasecurity" in str(doc.get("apiVersion", "")) or (
        bool(keys) and all(k.endswith("aquasecurity.github.io") for k in keys)
    )
    if operator or keys & {"SchemaVersion", "ClusterName", "ArtifactName"} or _cyclonedx.is_cyclonedx(doc):
        return "trivy"
    if keys & {"packageManager", "infrastructureAsCodeIssues", "jsonapi"}:
        return "snyk"
    if doc.get("tool") == _sonarqube.BUNDLE_TOOL or keys & {"issues", "hotspots"}:
        return "sonarqube"
    return ""


def _detect_item(item: dict[str, Any]) -> str:
    """The tool whose array reports start with ``item``."""
    keys = set(item)
    if keys & {"RuleID", "Secret", "offender"} or {"Match", "StartLine"} <= keys:
        return "gitleaks"
    if keys & {"Target", "Vulnerabilities"} or "aquasecurity" in str(item.get("apiVersion", "")):
        return "trivy"
    if keys & {"packageManager", "infrastructureAsCodeIssues"}:
        return "snyk"
    if {"rule", "component"} <= keys or "vulnerabilityProbability" in keys:
        return "sonarqube"
    return ""


def parse_report(
    tool: str,
    data: bytes,
    *,
    secret_key: bytes,
    source: str = "",
    root: str = "",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ParsedReport:
    """Parse a scanner report into normalised findings.

    Args:
        tool: One of :data:`TOOLS`. ``trivy``, ``gitleaks`` and ``snyk`` also accept their
            SARIF output; ``sarif`` accepts SARIF 2.1.0 from any producer.
        data: The report as the tool wrote it.
        secret_key: Key of the keyed hash that stands for secret values (at least 16 bytes).
        source: Names the report (a file name) in error messages and warnings.
        root: The scan root as the tool saw it: absolute paths under it become relative.
        max_bytes: Reports larger than this are refused.

    Returns:
        The findings (one per fingerprint), artifact hints, quality gate and redacted report.

    Raises:
        InvalidArgument: ``tool`` or ``secret_key`` is bad, or the report is malformed
            (:class:`ReportError`, naming the source and the JSON path) or of a format gate
            does not read (:class:`UnsupportedReport`).
    """
    if tool not in TOOLS:
        raise InvalidArgument("tool", f"expected one of {', '.join(TOOLS)}, got {tool!r}")
    if len(secret_key) < _MIN_KEY_BYTES:
        raise InvalidArgument(
            "secret_key", f"expected at least {_MIN_KEY_BYTES} bytes, got {len(secret_key)}"
        )
    with _gc_paused():
        doc = load(data, source, max_bytes)
        try:
            return _parse(tool, data, doc, secret_key=secret_key, source=source, root=root)
        except RecursionError:
            raise ReportError(source or "report", "the report is nested too deeply") from None


def _parse(tool: str, data: bytes, doc: Any, *, secret_key: bytes, source: str, root: str) -> ParsedReport:
    ctx = Ctx(source=source, secret_key=secret_key, root=root, may_hold_nul=NUL_ESCAPE in data)
    hints, gate = _dispatch(tool, doc, ctx)
    ctx.check_hints(hints)
    findings, occurrences = _merge(ctx.findings)
    if ctx.sensitive:
        scrub = _Scrubber(ctx.sensitive)
        findings = [_scrub_finding(f, scrub) for f in findings]
        doc = _scrub(doc, scrub)
        ctx.changed = True
    redacted = json.dumps(doc, ensure_ascii=False).encode() if ctx.changed else data
    return ParsedReport(
        tool=ctx.tool or tool,
        format=ctx.format,
        tool_version=ctx.tool_version,
        findings=tuple(findings),
        occurrences=occurrences,
        artifact=hints,
        redacted_report=redacted,
        quality_gate=gate,
        warnings=tuple(ctx.warnings),
        entry_counts=SeverityCounts.of(finding.severity for finding in ctx.findings),
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while a report becomes objects.

    A big report allocates millions of acyclic objects (JSON values, findings); each
    allocation burst makes the collector walk the whole heap again, which in a long-lived
    process doubled the parse time. Nothing made here forms cycles, so nothing is lost.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _dispatch(tool: str, doc: Any, ctx: Ctx) -> tuple[ArtifactHints, QualityGate | None]:
    if _sarif_in.is_sarif(doc):
        producer = _sarif_in.tool_of(doc)
        if tool not in {"sarif", producer}:
            raise ctx.error(
                "runs[0].tool.driver.name", f"expected a SARIF log written by {tool}, got one by {producer!r}"
            )
        return _sarif_in.parse(doc, ctx), None
    if tool == "sarif":
        raise UnsupportedReport(
            ctx.where(""), "not a SARIF log (expected an object with `version` and `runs`)"
        )
    if tool == "trivy":
        if _cyclonedx.is_cyclonedx(doc):
            ctx.tool = "trivy"
            return _cyclonedx.parse(doc, ctx, "trivy"), None
        if isinstance(doc, dict) and "spdxVersion" in doc:
            raise UnsupportedReport(
                ctx.where(""), "an SPDX SBOM is not a scan report; store it with UploadSbom"
            )
        return _trivy.parse(doc, ctx), None
    if tool == "gitleaks":
        return _gitleaks.parse(doc, ctx), None
    if tool == "snyk":
        return _snyk.parse(doc, ctx), None
    return _sonarqube.parse(doc, ctx)


_AFFECTEDNESS = {status: rank for rank, status in enumerate(reversed(list(FindingStatus)))}


def _merge(findings: list[Finding]) -> tuple[list[Finding], dict[str, int]]:
    """One finding per fingerprint; the most severe entry speaks for the others."""
    kept: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for finding in findings:
        key = finding.fingerprint
        counts[key] = counts.get(key, 0) + 1
        current = kept.get(key)
        if current is None or (finding.severity, _AFFECTEDNESS[finding.status]) > (
            current.severity,
            _AFFECTEDNESS[current.status],
        ):
            kept[key] = finding
    return list(kept.values()), counts


# Longer values are replaced as plain strings (see _Scrubber).
_AUTOMATON_LIMIT = 1024
# Past this many occurrences per character a text is redacted whole (see _Scrubber.__call__).
_MATCHES_PER_CHARACTER = 8


class _Scrubber:
    """Replaces every registered secret value in a text; where several start at one place, the longest.

    One Aho-Corasick automaton of the values finds them all in a single pass over each text,
    whatever their number: a regular expression alternating them tried each value at every
    position, and a hostile report of 10,000 secrets took 98 s to store. Values longer than
    :data:`_AUTOMATON_LIMIT` (whole lines, PEM blocks) are replaced first, as plain strings:
    the automaton's trie is as deep as its longest value, and freeing one 1.4 million deep
    crashed the process (pyahocorasick 2.3); a kilobyte each, there are few of them.
    """

    def __init__(self, sensitive: set[str]) -> None:
        ordered = sorted(sensitive, key=len, reverse=True)
        self._long = [value for value in ordered if len(value) > _AUTOMATON_LIMIT]
        self._short = ahocorasick.Automaton()
        for value in ordered:
            if 0 < len(value) <= _AUTOMATON_LIMIT:
                self._short.add_word(value, len(value))
        self._searching = len(self._short) > 0
        if self._searching:
            self._short.make_automaton()

    def __call__(self, text: str) -> str:
        for value in self._long:
            if value in text:
                text = text.replace(value, _REDACTION)
        if not self._searching:
            return text
        # Every occurrence, overlapping ones too: pyahocorasick's own leftmost-longest search
        # (iter_long) misses some ("a" in "*a" among "a" and "*aa"), which would leave them in clear.
        found: list[tuple[int, int]] = []
        limit = _MATCHES_PER_CHARACTER * len(text) + 64
        for last, length in self._short.iter(text):
            found.append((last + 1 - length, length))
            if len(found) > limit:
                # A text made of overlapping values (a hostile report's "a", "aa", "aaa", ...):
                # nothing of it is kept, rather than sorting out millions of matches.
                return _REDACTION
        if not found:
            return text
        found.sort(key=lambda match: (match[0], -match[1]))
        pieces: list[str] = []
        done = 0
        for start, length in found:
            if start >= done:
                pieces += (text[done:start], _REDACTION)
                done = start + length
        pieces.append(text[done:])
        return "".join(pieces)


def _scrub(value: Any, scrub: _Scrubber) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrub(v, scrub) for v in value]
    if isinstance(value, dict):
        return {scrub(k): _scrub(v, scrub) for k, v in value.items()}
    return value


def _scrub_finding(finding: Finding, scrub: _Scrubber) -> Finding:
    changes: dict[str, Any] = {}
    for name in ("title", "description", "redacted_match"):
        text = getattr(finding, name)
        cleaned = scrub(text) if text else text
        if cleaned != text:
            changes[name] = cleaned
    if finding.location is not None:
        path = scrub(finding.location.path)
        if path != finding.location.path:
            changes["location"] = replace(finding.location, path=path)
    return replace(finding, **changes) if changes else finding
