"""Snyk (CLI) as a provider: open-source, container, code and IaC tests.

* a local directory (filesystem or repository target): ``snyk test --json``
  (``product`` open-source, the default), ``snyk code test --sarif``
  (``product`` code; the report is SARIF) or ``snyk iac test --json``
  (``product`` iac);
* an image (``registry/repo:tag``, ``docker-archive:<tar>``,
  ``oci-archive:<tar>``): ``snyk container test --json``.

Exit codes (Snyk's CLI help): 0 no issues, 1 issues found (both are results),
2 failure, 3 no supported project in the target (an
:class:`~scanners.NoSupportedProject`). The token comes from the option
``token`` or gate's ``SNYK_TOKEN`` and reaches the CLI only as ``SNYK_TOKEN``
in its environment: never on the command line, never in a message.
Snyk reads everything after ``--`` as arguments for the build tool, so the
target is passed as an absolute path (or a checked image reference) instead.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

from gate.config import ScannerProvider as ProviderSettings
from gate.errors import ConfigError, InvalidArgument
from gate.model import TargetKind
from scanners._base import BaseProvider
from scanners._errors import NoSupportedProject, ScannerFailed
from scanners._options import Option, Options
from scanners._process import (
    check_json,
    child_environment,
    last_error_line,
    output_version,
    read_report,
    redact_head,
    resolve_binary,
    run_tool,
)
from scanners._provider import Progress, ProgressCallback, RunResult, ScanRequest, resolve_local_path

_IMAGE_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:@+]*")
_ARCHIVE_PREFIXES = ("docker-archive:", "oci-archive:")
_VERSION = re.compile(r"(\d+\.\d+\.\d+)")

OPTIONS = (
    Option("token", "str", config_only=True, secret=True),
    Option("api", "str", config_only=True),
    Option("org", "str", config_only=True),
    Option("product", "choice", frozenset({"open-source", "code", "iac"})),
    Option("severity_threshold", "choice", frozenset({"low", "medium", "high", "critical"})),
    Option("all_projects", "bool"),
    Option("file", "str"),
    Option("policy_path", "str"),
    Option("exclude_base_image_vulns", "bool"),
    Option("platform", "str"),
)


class SnykProvider(BaseProvider):
    """Runs the Snyk CLI and returns its JSON (or, for Snyk Code, SARIF) report.

    Options (* configuration only): ``token``* (else ``SNYK_TOKEN``), ``api``*
    (``SNYK_API`` endpoint), ``org``*, ``product`` (open-source, code, iac),
    ``severity_threshold``, ``all_projects``, ``file``, ``policy_path``,
    ``exclude_base_image_vulns`` and ``platform`` (container tests).
    """

    tool = "snyk"
    supported_targets = frozenset({TargetKind.FILESYSTEM, TargetKind.REPOSITORY, TargetKind.IMAGE})
    report_format = "snyk"
    OPTIONS = OPTIONS

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        """Check options and that a token is available.

        Raises:
            ConfigError: naming ``scanners.<name>.options.token`` when there is no token.
        """
        super().__init__(name, settings)
        self._token = self.options.text("token") or os.environ.get("SNYK_TOKEN", "")
        if not self._token:
            raise ConfigError(
                "configuration",
                f"scanners.{name}.options.token",
                "no Snyk token: set this option or the SNYK_TOKEN environment variable",
            )

    def _binary(self) -> str:
        return resolve_binary(self.settings.binary, "snyk", f"{self.config_key}.binary")

    def _environment(self, workdir: Path) -> dict[str, str]:
        extra = {"SNYK_TOKEN": self._token, "SNYK_DISABLE_ANALYTICS": "1"}
        if self.options.text("api"):
            extra["SNYK_API"] = self.options.text("api")
        return child_environment(workdir, extra)

    def _ask_version(self) -> str:
        workdir = Path.home()
        text = output_version(self.tool, [self._binary(), "--version"], self._environment(workdir), workdir)
        match = _VERSION.search(text)
        if match is None:
            raise ScannerFailed(self.tool, "cannot read its version", detail=text[:200])
        return match.group(1)

    def run(self, request: ScanRequest, progress: ProgressCallback, cancel: threading.Event) -> RunResult:
        """Run the Snyk test that fits the target and the ``product`` option."""
        self.check_target(request.target)
        options = self.request_options(request)
        command, target, cwd, report_format = self._command(request, options)
        progress(Progress("starting", f"{self.name}: preparing snyk {' '.join(command)}"))
        binary = self._binary()
        version = self.version()
        argv = [binary, *command, *self._option_args(request, options, command), target]
        outcome = run_tool(
            self.tool,
            argv,
            env=self._environment(request.workdir),
            cwd=cwd,
            workdir=request.workdir,
            timeout=self.timeout_for(request),
            cancel=cancel,
            progress=progress,
            max_bytes=request.max_report_bytes,
            secrets=(self._token,),
            timeout_key=f"{self.config_key}.timeout",
        )
        report = read_report(self.tool, outcome.stdout_path, request.max_report_bytes)
        if outcome.exit_code == 3:
            raise NoSupportedProject(
                f"{self.tool}: found no supported project in {request.target.location!r} (exit code 3)"
            )
        if outcome.exit_code not in (0, 1):
            detail = self._error_detail(report) or last_error_line(outcome.stderr_tail) or "no diagnostics"
            raise ScannerFailed(
                self.tool,
                f"{' '.join(command)} of {request.target.location!r} failed",
                exit_code=outcome.exit_code,
                detail=detail,
            )
        check_json(
            self.tool, report, "on stdout", kinds=(dict,) if report_format == "sarif" else (dict, list)
        )
        progress(Progress("finished", f"{self.name}: report of {len(report)} bytes", outcome.duration, 1.0))
        return RunResult(
            report=report,
            report_format=report_format,
            tool_version=version,
            exit_code=outcome.exit_code,
            duration=outcome.duration,
            stderr_tail=outcome.stderr_tail[-2000:],
            # Snyk Code's SARIF can quote source lines holding hard-coded credentials.
            contains_secrets=report_format == "sarif",
            command=tuple(argv),
        )

    def _command(self, request: ScanRequest, options: Options) -> tuple[list[str], str, Path, str]:
        """Return the sub-command, the target argument, the working directory and the report format."""
        location = request.target.location
        if request.target.kind is TargetKind.IMAGE:
            if options.has("product"):
                raise InvalidArgument(
                    "options.product", "does not apply to image targets (always container test)"
                )
            for prefix in _ARCHIVE_PREFIXES:
                if location.startswith(prefix):
                    path = resolve_local_path(location.removeprefix(prefix), request.root)
                    if not path.is_file():
                        raise InvalidArgument("target.location", f"{location!r} is not a tar file")
                    return ["container", "test", "--json"], f"{prefix}{path}", request.workdir, "snyk"
            if not _IMAGE_REFERENCE.fullmatch(location):
                raise InvalidArgument(
                    "target.location",
                    "expected an image reference, 'docker-archive:<tar>' or 'oci-archive:<tar>', "
                    f"got {location!r}",
                )
            return ["container", "test", "--json"], location, request.workdir, "snyk"
        if "://" in location:
            raise InvalidArgument(
                "target.location", "snyk tests local directories only; clone the repository first"
            )
        path = resolve_local_path(location, request.root)
        if not path.is_dir():
            raise InvalidArgument("target.location", f"{location!r} is not a directory")
        product = options.text("product", "open-source")
        if product == "code":
            return ["code", "test", "--sarif"], str(path), path, "sarif"
        if product == "iac":
            return ["iac", "test", "--json"], str(path), path, "snyk"
        return ["test", "--json"], str(path), path, "snyk"

    def _option_args(self, request: ScanRequest, options: Options, command: list[str]) -> list[str]:
        args: list[str] = []
        kind = command[0]
        if options.text("org"):
            args.append(f"--org={options.text('org')}")
        threshold = options.text("severity_threshold")
        if threshold:
            if kind == "code" and threshold == "critical":
                raise InvalidArgument("options.severity_threshold", "snyk code accepts low, medium or high")
            args.append(f"--severity-threshold={threshold}")
        if options.flag("all_projects"):
            if kind != "test":
                raise InvalidArgument("options.all_projects", "applies to open-source tests only")
            args.append("--all-projects")
        if options.text("file"):
            if kind not in ("test", "container"):
                raise InvalidArgument("options.file", "applies to open-source and container tests only")
            value = options.text("file")
            if request.options.get("file") is not None and kind == "test":
                value = str(resolve_local_path(value, request.root, "options.file"))
            args.append(f"--file={value}")
        if options.text("policy_path"):
            value = options.text("policy_path")
            if request.options.get("policy_path") is not None:
                value = str(resolve_local_path(value, request.root, "options.policy_path"))
            args.append(f"--policy-path={value}")
        return args + self._container_args(options, kind)

    @staticmethod
    def _container_args(options: Options, kind: str) -> list[str]:
        args: list[str] = []
        if options.flag("exclude_base_image_vulns"):
            if kind != "container":
                raise InvalidArgument("options.exclude_base_image_vulns", "applies to image targets only")
            args.append("--exclude-base-image-vulns")
        if options.text("platform"):
            if kind != "container":
                raise InvalidArgument("options.platform", "applies to image targets only")
            args.append(f"--platform={options.text('platform')}")
        return args

    def _error_detail(self, report: bytes) -> str:
        # With --json, Snyk prints its failures as {"ok": false, "error": "..."} on stdout.
        try:
            document = json.loads(report)
        except (ValueError, RecursionError):
            return redact_head(report, 500, (self._token,)).strip()
        if isinstance(document, dict) and isinstance(document.get("error"), str):
            return redact_head(document["error"], 500, (self._token,))
        return ""
