"""The provider protocol and the values that cross it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from gate.errors import InvalidArgument
from gate.model import ScanTarget, TargetKind
from scanners._errors import UnsupportedTarget

# Reports above this are refused, not read: a tool gone wild must not exhaust memory.
DEFAULT_MAX_REPORT_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress event of a run.

    Attributes:
        stage: ``starting``, ``running``, ``polling`` (waiting on a server),
            ``fetching`` (downloading results) or ``finished``.
        message: A short human-readable line; never contains secrets.
        elapsed: Seconds since the run started.
        fraction: Share done in 0..1 where the tool tells, else None.
    """

    stage: str
    message: str
    elapsed: float = 0.0
    fraction: float | None = None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """What to scan and how.

    Attributes:
        target: The kind and location (image reference, path or URL) to scan.
        workdir: A private, writable directory for this run; the runner writes
            its temporary report there and deletes it after reading.
        timeout: Seconds the run may take; None uses the provider's configured timeout.
        options: Per-run options, validated by the provider (unknown keys are
            rejected); they override the configured ones.
        root: When set, a local target path must lie inside this directory
            (after resolving symlinks), and a relative location is taken
            relative to it.
        max_report_bytes: Largest report the run may produce.
    """

    target: ScanTarget
    workdir: Path
    timeout: float | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    root: Path | None = None
    max_report_bytes: int = DEFAULT_MAX_REPORT_BYTES


@dataclass(frozen=True, slots=True)
class RunResult:
    """The raw outcome of a successful run; findings are parsed later by ``scanners.reports``.

    Attributes:
        report: The tool's report, exactly as it wrote it (bounded in size).
        report_format: The ``tool`` argument ``parse_report`` takes for it
            (``trivy``, ``gitleaks``, ``snyk``, ``sonarqube`` or ``sarif``).
        tool_version: The tool's (or server's) version.
        exit_code: The tool's exit code (0 for HTTP-based providers).
        duration: Seconds the run took.
        stderr_tail: The end of the tool's diagnostics with secret-looking
            values masked, for messages; empty when it printed nothing.
        contains_secrets: True when ``report`` may hold raw secret values
            (gitleaks without redaction, Trivy's secret scanner): it must be
            redacted before it is stored or logged.
        command: The argument list that ran, with credentials left out (they
            are passed through the environment only); empty for HTTP providers.
    """

    report: bytes
    report_format: str
    tool_version: str
    exit_code: int
    duration: float
    stderr_tail: str = ""
    contains_secrets: bool = False
    command: tuple[str, ...] = ()


@runtime_checkable
class ScannerProvider(Protocol):
    """A scanner gate can run: a CLI tool or a server it asks.

    A provider class is constructed as ``cls(name, settings)`` with its
    configuration key and its :class:`gate.config.ScannerProvider` settings;
    it should check what it can there (options, binary) and raise
    :class:`gate.errors.ConfigError` naming ``scanners.<name>.<key>``.
    ``run`` is called from a worker (thread or process) and must honour
    ``cancel`` and the timeout.
    """

    name: str
    supported_targets: frozenset[TargetKind]
    report_format: str

    def version(self) -> str:
        """Return the tool's version (cached after the first call)."""
        ...

    def run(self, request: ScanRequest, progress: ProgressCallback, cancel: threading.Event) -> RunResult:
        """Scan ``request.target`` and return the raw report.

        Raises:
            gate.errors.EvidenceError: the request or target is bad.
            gate.errors.InfrastructureError: the tool is missing, failed or timed out.
            scanners.ScanCancelled: ``cancel`` was set.
        """
        ...


def check_supported(provider: str, supported: frozenset[TargetKind], target: ScanTarget) -> None:
    """Raise UnsupportedTarget unless ``target.kind`` is one the provider scans."""
    if target.kind not in supported:
        raise UnsupportedTarget(provider, str(target.kind), frozenset(str(kind) for kind in supported))


def resolve_local_path(location: str, root: Path | None, field_path: str = "target.location") -> Path:
    """Resolve a local target path, refusing one that is missing, unreadable or escapes ``root``.

    Symlinks are resolved before the containment check, so a link pointing out
    of ``root`` is refused like a ``..`` path.

    Raises:
        InvalidArgument: naming ``field_path`` and what is wrong.
    """
    if not location:
        raise InvalidArgument(field_path, "required, got an empty string")
    if "\x00" in location:
        raise InvalidArgument(field_path, "contains a NUL character")
    raw = Path(location)
    if not raw.is_absolute() and root is not None:
        raw = root / raw
    try:
        resolved = raw.resolve(strict=True)
    except FileNotFoundError:
        raise InvalidArgument(field_path, f"no such file or directory: {location!r}") from None
    except (OSError, RuntimeError) as exc:
        raise InvalidArgument(field_path, f"cannot resolve {location!r}: {exc}") from None
    if root is not None:
        try:
            root_resolved = root.resolve(strict=True)
        except OSError as exc:
            raise InvalidArgument("root", f"cannot resolve scan root {str(root)!r}: {exc}") from None
        if not resolved.is_relative_to(root_resolved):
            raise InvalidArgument(
                field_path,
                f"{location!r} resolves to {str(resolved)!r}, outside the scan root {str(root_resolved)!r}",
            )
    _check_readable(resolved, location, field_path)
    return resolved


def _check_readable(path: Path, location: str, field_path: str) -> None:
    try:
        if path.is_dir():
            with os.scandir(path) as entries:
                next(entries, None)
        else:
            with path.open("rb") as handle:
                handle.read(1)
    except PermissionError:
        raise InvalidArgument(field_path, f"permission denied: {location!r}") from None
    except OSError as exc:
        raise InvalidArgument(field_path, f"cannot read {location!r}: {exc.strerror or exc}") from None
