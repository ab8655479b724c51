"""The auditor's SBOM report of one artifact: HTML (one offline file), JSON or CSV.

Everything shown comes from documents gate did not write (component names,
licences, vulnerability titles), so every string is HTML-escaped, and the
page loads nothing from elsewhere: inline CSS, an inline SVG chart, no script.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from gate.model import Component

_CHART_BARS = 15
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4, "unknown": 5}


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One vulnerability finding of the artifact's latest scans."""

    severity: str
    rule_id: str
    package: str
    version: str
    title: str
    fixed_versions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportData:
    """What the report shows."""

    artifact: str
    aliases: tuple[str, ...]
    sbom_id: str
    sbom_format: str
    generator: str
    created_at: str
    components: tuple[Component, ...]
    licenses: tuple[tuple[str, int], ...]
    unknown_licence_count: int
    vulnerabilities: tuple[Vulnerability, ...]


def _sorted_vulnerabilities(data: ReportData) -> list[Vulnerability]:
    return sorted(
        data.vulnerabilities, key=lambda v: (_SEVERITY_ORDER.get(v.severity, 9), v.rule_id, v.package)
    )


def to_json(data: ReportData) -> bytes:
    """The report as one JSON object."""
    body = asdict(data)
    body["vulnerabilities"] = [asdict(v) for v in _sorted_vulnerabilities(data)]
    body["licenses"] = [{"license": name, "count": count} for name, count in data.licenses]
    return json.dumps(body, ensure_ascii=False, indent=2).encode() + b"\n"


def to_csv(data: ReportData) -> bytes:
    """The component table as CSV (one row per component, licences joined by ``;``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "version", "group", "type", "purl", "licenses"])
    for c in data.components:
        # A leading =, +, - or @ would make a spreadsheet evaluate the cell.
        writer.writerow(
            [
                _cell(c.name),
                _cell(c.version),
                _cell(c.group),
                c.type,
                _cell(c.purl),
                _cell(";".join(c.licenses)),
            ]
        )
    return buffer.getvalue().encode()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _chart(licences: Sequence[tuple[str, int]], unknown: int) -> str:
    bars = list(licences[:_CHART_BARS])
    rest = sum(count for _, count in licences[_CHART_BARS:])
    if rest:
        bars.append((f"{len(licences) - _CHART_BARS} other licences", rest))
    if unknown:
        bars.append(("(no licence stated)", unknown))
    if not bars:
        return "<p>No components.</p>"
    top = max(count for _, count in bars)
    row, label_width, bar_width = 22, 260, 420
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 60}" '
        f'height="{row * len(bars) + 4}" role="img" aria-label="components per licence">'
    ]
    for index, (name, count) in enumerate(bars):
        y = index * row + 2
        width = max(1, round(bar_width * count / top))
        label = name if len(name) <= 40 else name[:39] + "\u2026"
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{width}" height="{row - 6}" class="bar"/>'
            f'<text x="{label_width + width + 4}" y="{y + 15}">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.mono,dd.mono{font-family:ui-monospace,monospace;word-break:break-all}
svg text{font:12px system-ui,sans-serif}.bar{fill:#4a78b5}
.critical{color:#fff;background:#8b0000}.high{background:#f4a6a6}.medium{background:#fde3a7}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:600}
"""


def to_html(data: ReportData) -> bytes:
    """A self-contained HTML page: summary, licence chart, vulnerabilities, component table."""
    e = html.escape
    vulnerabilities = _sorted_vulnerabilities(data)
    rows = "".join(
        f"<tr><td>{e(c.name)}</td><td>{e(c.version)}</td><td>{e(c.type)}</td>"
        f'<td class="mono">{e(c.purl)}</td><td>{e(", ".join(c.licenses)) or "-"}</td></tr>'
        for c in data.components
    )
    findings = "".join(
        f'<tr><td class="{e(v.severity)}">{e(v.severity)}</td><td>{e(v.rule_id)}</td><td>{e(v.package)}</td>'
        f"<td>{e(v.version)}</td><td>{e(', '.join(v.fixed_versions)) or '-'}</td><td>{e(v.title)}</td></tr>"
        for v in vulnerabilities
    )
    vulnerability_table = (
        f"<table><tr><th>Severity</th><th>Id</th><th>Package</th><th>Version</th><th>Fixed in</th>"
        f"<th>Title</th></tr>{findings}</table>"
        if findings
        else "<p>No vulnerability findings.</p>"
    )
    licence_rows = "".join(f"<tr><td>{e(name)}</td><td>{count}</td></tr>" for name, count in data.licenses)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>SBOM report: {e(data.artifact)}</title><style>{_STYLE}</style></head><body>
<h1>SBOM report</h1>
<dl><dt>Artifact</dt><dd class="mono">{e(data.artifact)}</dd>
<dt>Aliases</dt><dd>{e(", ".join(data.aliases)) or "-"}</dd>
<dt>SBOM</dt><dd class="mono">{e(data.sbom_id)} ({e(data.sbom_format)}, {e(data.generator)})</dd>
<dt>Stored</dt><dd>{e(data.created_at)}</dd>
<dt>Components</dt><dd>{len(data.components)}</dd>
<dt>Without licence</dt><dd>{data.unknown_licence_count}</dd>
<dt>Vulnerabilities</dt><dd>{len(vulnerabilities)}</dd></dl>
<h2>Licences</h2>{_chart(data.licenses, data.unknown_licence_count)}
<table><tr><th>Licence</th><th>Components</th></tr>{licence_rows}</table>
<h2>Vulnerabilities (latest scans)</h2>
{vulnerability_table}
<h2>Components</h2>
<table><tr><th>Name</th><th>Version</th><th>Type</th><th>Package URL</th><th>Licences</th></tr>{rows}</table>
</body></html>
"""
    return page.encode()


RENDERERS = {"html": to_html, "json": to_json, "csv": to_csv}
