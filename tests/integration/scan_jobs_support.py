"""A provider for the scan job tests: it runs until cancelled, or reports a fixed Trivy report."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gate.config import ScannerProvider as ProviderSettings
from gate.model import TargetKind
from scanners import Progress, ProgressCallback, RunResult, ScanCancelled, ScanRequest


class WaitingProvider:
    """Scans by waiting: ``options.report`` names a Trivy JSON file returned after ``options.seconds``.

    It stands in for a long-running tool so that cancellation, shutdown and
    progress can be observed; it honours ``cancel`` like the real providers.
    """

    supported_targets = frozenset({TargetKind.FILESYSTEM})
    report_format = "trivy"

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.seconds = float(settings.options.get("seconds", "60"))
        self.report = Path(settings.options["report"])

    def version(self) -> str:
        return "0.76.0"

    def run(self, request: ScanRequest, progress: ProgressCallback, cancel: threading.Event) -> RunResult:
        started = time.monotonic()
        progress(Progress("running", "waiting", 0.0, 0.0))
        if cancel.wait(self.seconds):
            raise ScanCancelled(self.name)
        progress(Progress("finished", "done", time.monotonic() - started, 1.0))
        return RunResult(
            report=self.report.read_bytes(),
            report_format="trivy",
            tool_version="0.76.0",
            exit_code=0,
            duration=time.monotonic() - started,
        )
