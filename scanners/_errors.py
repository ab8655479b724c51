"""Errors of the scanner runners, each in the family that tells the caller what to do.

Bad requests and bad targets are :class:`~gate.errors.EvidenceError` (retrying
unchanged cannot help); a tool that is missing, crashes, hangs or writes a
broken report is an :class:`~gate.errors.InfrastructureError` (retry, or apply
the failure policy).
"""

from __future__ import annotations

from gate.errors import DeadlineExceeded, EvidenceError, GateError, InfrastructureError, InvalidArgument


class UnsupportedTarget(InvalidArgument):
    """The provider cannot scan this kind of target."""

    def __init__(self, provider: str, kind: str, supported: frozenset[str]) -> None:
        expected = ", ".join(sorted(supported))
        super().__init__(
            "target.kind", f"scanner {provider!r} cannot scan {kind!r} targets; it scans {expected}"
        )
        self.provider = provider


class NoSupportedProject(EvidenceError):
    """The tool ran but found nothing it knows how to test in the target."""


class ReportTooLarge(EvidenceError):
    """A report exceeded the size limit; the scan was stopped rather than read into memory."""

    def __init__(self, tool: str, limit: int) -> None:
        super().__init__(
            f"{tool}: report exceeds the limit of {limit} bytes; scan a smaller target or raise the limit"
        )
        self.tool = tool
        self.limit = limit


class ScannerUnavailable(InfrastructureError):
    """The tool's binary (or server) cannot be found or started."""

    def __init__(self, message: str, config_key: str = "") -> None:
        super().__init__(f"{message} (configuration key {config_key})" if config_key else message)
        self.config_key = config_key


class ScannerFailed(InfrastructureError):
    """The tool ran and failed: an error exit, a crash, or an error reported by its server."""

    def __init__(self, tool: str, problem: str, *, exit_code: int | None = None, detail: str = "") -> None:
        text = f"{tool}: {problem}"
        if exit_code is not None:
            text += f" (exit code {exit_code})"
        if detail:
            text += f": {detail}"
        super().__init__(text)
        self.tool = tool
        self.exit_code = exit_code
        self.detail = detail


class InvalidReport(InfrastructureError):
    """The tool exited as if it succeeded but its report is missing, truncated or not JSON."""

    def __init__(self, tool: str, where: str, problem: str) -> None:
        super().__init__(f"{tool}: report {where}: {problem}")
        self.tool = tool
        self.where = where


class ScanTimeout(DeadlineExceeded):
    """The tool did not finish within its timeout; its whole process group was killed."""

    def __init__(self, tool: str, seconds: float, config_key: str = "") -> None:
        text = f"{tool}: did not finish within {seconds:g} s and was stopped"
        super().__init__(f"{text} (configuration key {config_key})" if config_key else text)
        self.tool = tool
        self.seconds = seconds


class ScanCancelled(GateError):
    """The run was cancelled on request; neither the evidence nor the infrastructure is at fault."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"{tool}: cancelled")
        self.tool = tool
