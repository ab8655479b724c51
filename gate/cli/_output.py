"""Rendering of gate.v1 responses for the terminal: JSON or aligned text."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

FORMATS = ("table", "json")
F = TypeVar("F", bound=Callable[..., Any])


def output_option() -> Callable[[F], F]:
    """The ``-o/--output`` option every read command takes."""
    return click.option(
        "-o",
        "--output",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )


def as_json(message: Message) -> str:
    """The canonical proto3 JSON form of a message (what other gRPC clients see)."""
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2)


def enum_name(message: Message, field: str, prefix: str) -> str:
    """The short lowercase name of an enum field's value (``SEVERITY_HIGH`` -> ``high``)."""
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    assert descriptor is not None
    value = getattr(message, field)
    entry = descriptor.values_by_number.get(value)
    name = entry.name if entry is not None else str(value)
    return name.removeprefix(prefix).lower()


def when(stamp: Timestamp) -> str:
    """A timestamp as ISO 8601 UTC, or '-' when unset."""
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return str(stamp.ToJsonString())


def finding_where(finding: Any) -> str:
    """Where a ``gate.v1.Finding`` is: its package and version, else its file and line."""
    if finding.HasField("package"):
        return f"{finding.package.name} {finding.package.version}".strip()
    return f"{finding.location.path}:{finding.location.start_line}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    """``key: value`` lines, keys aligned."""
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


class ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, a line per tenth done otherwise.

    Logs of CI jobs would otherwise get one line per file a scanner or
    cataloguer looks at.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self._interactive = sys.stderr.isatty()
        self._next_tenth = 0
        self._last_phase = ""

    def update(self, phase: str, message: str, fraction: float) -> None:
        """Show one progress event (``fraction`` < 0 when the total is unknown)."""
        share = f" {fraction:4.0%}" if fraction >= 0 else ""
        line = f"{self._label}: {phase}{share} {message}".rstrip()
        if self._interactive:
            click.echo("\r\x1b[2K" + line[:160], err=True, nl=False)
            return
        tenth = int(fraction * 10) if fraction >= 0 else -1
        if phase != self._last_phase or tenth >= self._next_tenth or fraction >= 1:
            click.echo(line, err=True)
            self._last_phase = phase
            self._next_tenth = max(self._next_tenth, tenth + 1)

    def close(self) -> None:
        """End the rewritten line on a terminal."""
        if self._interactive:
            click.echo(err=True)
