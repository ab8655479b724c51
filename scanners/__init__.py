"""Scanner runners: one provider per tool behind a common protocol.

A provider runs one tool (Trivy, gitleaks, Snyk) or asks one server
(SonarQube) about a :class:`gate.model.ScanTarget` and returns the raw report
in a :class:`RunResult`; turning reports into findings is the job of
``scanners.reports.parse_report(result.report_format, result.report, ...)``.

Typical use by the job layer::

    providers = load_providers(config.scanners)           # at start-up; ConfigError names the key
    provider = providers["trivy"]
    result = provider.run(
        ScanRequest(ScanTarget(TargetKind.FILESYSTEM, "/src"), workdir=run_dir, options={"scanners": "vuln"}),
        progress=on_progress,                               # Progress events, about one a second
        cancel=cancel_event,                                # set it to stop; the process group is killed
    )

Errors: :class:`gate.errors.EvidenceError` for bad requests and targets
(``InvalidArgument`` naming ``target.location``/``target.kind``/``options.<key>``,
:class:`UnsupportedTarget`, :class:`NoSupportedProject`, :class:`ReportTooLarge`);
:class:`gate.errors.InfrastructureError` for tool trouble
(:class:`ScannerUnavailable` naming ``scanners.<name>.binary``, :class:`ScannerFailed`,
:class:`InvalidReport`, :class:`ScanTimeout`); :class:`ScanCancelled` when cancelled.
"""

from scanners._errors import (
    InvalidReport,
    NoSupportedProject,
    ReportTooLarge,
    ScanCancelled,
    ScannerFailed,
    ScannerUnavailable,
    ScanTimeout,
    UnsupportedTarget,
)
from scanners._options import Option, Options
from scanners._process import redact_text
from scanners._provider import (
    DEFAULT_MAX_REPORT_BYTES,
    Progress,
    ProgressCallback,
    RunResult,
    ScannerProvider,
    ScanRequest,
    resolve_local_path,
)
from scanners._registry import SCANNER_FOR_NAME, load_providers, provider_class

__all__ = [
    "DEFAULT_MAX_REPORT_BYTES",
    "SCANNER_FOR_NAME",
    "InvalidReport",
    "NoSupportedProject",
    "Option",
    "Options",
    "Progress",
    "ProgressCallback",
    "ReportTooLarge",
    "RunResult",
    "ScanCancelled",
    "ScanRequest",
    "ScanTimeout",
    "ScannerFailed",
    "ScannerProvider",
    "ScannerUnavailable",
    "UnsupportedTarget",
    "load_providers",
    "provider_class",
    "redact_text",
    "resolve_local_path",
]
