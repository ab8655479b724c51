"""A deployment's own provider, for the registry tests: importable, and imported only when named.

It lists the files of a directory target as SARIF results, so that it is a
real provider of the protocol, not an empty shell.
"""

from __future__ import annotations

import json
import threading
import time

from gate.config import ScannerProvider as ProviderSettings
from gate.model import TargetKind
from scanners import Progress, ProgressCallback, RunResult, ScanRequest, resolve_local_path

IMPORTED = True


class FileInventoryProvider:
    """Reports every file of a directory as a SARIF note."""

    supported_targets = frozenset({TargetKind.FILESYSTEM})
    report_format = "sarif"

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.settings = settings

    def version(self) -> str:
        return "1.0.0"

    def run(self, request: ScanRequest, progress: ProgressCallback, cancel: threading.Event) -> RunResult:
        started = time.monotonic()
        root = resolve_local_path(request.target.location, request.root)
        files = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
        progress(Progress("finished", f"{len(files)} files", time.monotonic() - started, 1.0))
        results = [
            {"ruleId": "inventory", "level": "note", "message": {"text": name},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": name}}}]}
            for name in files
        ]  # fmt: skip
        document = {
            "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": self.name}}, "results": results}],
        }
        return RunResult(json.dumps(document).encode(), "sarif", "1.0.0", 0, time.monotonic() - started)


class NotAProvider:
    """Has a constructor of the right shape but none of the protocol."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name


class Exploding:
    """Fails in its constructor."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        raise RuntimeError("cannot reach the licence server")
