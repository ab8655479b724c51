"""gitleaks (CLI, 8.x) as a provider: ``dir`` for directories, ``git`` for a repository's history.

Exit codes: gitleaks exits 1 both for "leaks found" and for errors, so it runs
with ``--exit-code 2``: 0 means no leaks, 2 means leaks, anything else is a
failure. A run is only trusted when the report file holds one complete JSON
array, and no ``ERR``/``FTL`` log line was printed: ``gitleaks git`` on a
directory that is not a repository logs an error and still exits 0 with
``[]``, which must not pass as "clean".

Redaction: by default the report keeps the secret values (``--redact=0``),
because ``scanners.reports`` derives a finding's identity from a keyed hash of
the secret (the same secret moved to another line or commit stays one
finding) and builds the redacted preview itself; the result is flagged
``contains_secrets`` and the report file is deleted as soon as it is read.
Setting the option ``redact`` to 100 keeps secrets out of gate entirely, at
the price of fingerprints that can only use rule, file and position.

Suppressions in the scanned tree: gitleaks always applies a ``.gitleaksignore``
at the target's root (besides the one named by ``ignore_file``) and a
``.gitleaks.toml`` there when no ``config`` is set; it has no switch to stop
that. Set ``config`` to pin the rules; inline ``gitleaks:allow`` comments are
ignored with ``ignore_gitleaks_allow``.

Paths: the tool runs inside the scanned directory with ``.`` as its target,
so ``File`` in the report is relative to the scan root (no runner paths).
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

from gate.errors import InvalidArgument
from gate.model import TargetKind
from scanners._base import BaseProvider
from scanners._errors import ScannerFailed
from scanners._options import Option, Options
from scanners._process import (
    check_json,
    child_environment,
    last_error_line,
    output_version,
    read_report,
    resolve_binary,
    run_tool,
)
from scanners._provider import Progress, ProgressCallback, RunResult, ScanRequest, resolve_local_path

_LEAKS_EXIT = 2
_ERROR_LINE = re.compile(r"(^|\s)(ERR|FTL|FATAL|ERROR)\s", re.M)
_VERSION = re.compile(r"v?(\d+\.\d+\.\d+\S*)")

OPTIONS = (
    Option("config", "str"),
    Option("baseline", "str"),
    Option("ignore_file", "str"),
    Option("redact", "int"),
    Option("ignore_gitleaks_allow", "bool"),
    Option("enable_rules", "list"),
    Option("max_target_megabytes", "int"),
    Option("max_decode_depth", "int"),
    Option("max_archive_depth", "int"),
    Option("follow_symlinks", "bool"),
    # ``git log`` options can write files (--output): configuration only.
    Option("log_opts", "str", config_only=True, dash_ok=True),
)


class GitleaksProvider(BaseProvider):
    """Runs ``gitleaks dir`` (filesystem targets) or ``gitleaks git`` (repository targets).

    Options: ``config`` (a ``.gitleaks.toml``), ``baseline`` (a previous JSON
    report whose findings are dropped), ``ignore_file`` (a ``.gitleaksignore``),
    ``redact`` (percent, default 0; see the module docstring),
    ``ignore_gitleaks_allow``, ``enable_rules``, ``max_target_megabytes``,
    ``max_decode_depth``, ``max_archive_depth``, ``follow_symlinks`` (dir
    mode) and ``log_opts`` (git mode, configuration only: passed to ``git log``).
    """

    tool = "gitleaks"
    supported_targets = frozenset({TargetKind.FILESYSTEM, TargetKind.REPOSITORY})
    report_format = "gitleaks"
    OPTIONS = OPTIONS

    def _binary(self) -> str:
        return resolve_binary(self.settings.binary, "gitleaks", f"{self.config_key}.binary")

    def _ask_version(self) -> str:
        workdir = Path.home()
        text = output_version(self.tool, [self._binary(), "version"], child_environment(workdir), workdir)
        match = _VERSION.search(text)
        if match is None:
            raise ScannerFailed(self.tool, "cannot read its version", detail=text[:200])
        return match.group(1)

    def run(self, request: ScanRequest, progress: ProgressCallback, cancel: threading.Event) -> RunResult:
        """Scan a directory or a git repository's history for secrets."""
        self.check_target(request.target)
        options = self.request_options(request)
        git = request.target.kind is TargetKind.REPOSITORY
        if "://" in request.target.location:
            raise InvalidArgument(
                "target.location", "gitleaks scans local paths only; clone the repository first"
            )
        path = resolve_local_path(request.target.location, request.root)
        if not path.is_dir():
            raise InvalidArgument("target.location", f"{request.target.location!r} is not a directory")
        if git:
            self._check_repository(path, request)
        progress(Progress("starting", f"{self.name}: preparing {'git' if git else 'dir'} scan"))
        binary = self._binary()
        version = self.version()
        report_path = request.workdir / "gitleaks-report.json"
        report_path.unlink(missing_ok=True)
        redact = int(options.number("redact", 0))
        if redact > 100:
            raise InvalidArgument("options.redact", f"expected a percentage 0-100, got {redact}")
        argv = [
            binary,
            "git" if git else "dir",
            "--no-banner",
            "--no-color",
            "--log-level",
            "error",
            "--report-format",
            "json",
            "--report-path",
            str(report_path),
            "--exit-code",
            str(_LEAKS_EXIT),
            f"--redact={redact}",
            *self._option_args(request, options, git),
            "--",
            ".",
        ]
        outcome = run_tool(
            self.tool,
            argv,
            env=child_environment(request.workdir),
            cwd=path,
            workdir=request.workdir,
            timeout=self.timeout_for(request),
            cancel=cancel,
            progress=progress,
            watched=(report_path,),
            max_bytes=request.max_report_bytes,
            timeout_key=f"{self.config_key}.timeout",
        )
        outcome.stdout_path.unlink(missing_ok=True)
        report = read_report(self.tool, report_path, request.max_report_bytes)
        errors = _ERROR_LINE.search(outcome.stderr_tail)
        if outcome.exit_code not in (0, _LEAKS_EXIT) or errors:
            detail = last_error_line(outcome.stderr_tail) or "no diagnostics"
            raise ScannerFailed(
                self.tool,
                f"scan of {request.target.location!r} failed",
                exit_code=outcome.exit_code,
                detail=detail,
            )
        check_json(self.tool, report, report_path.name, kinds=(list,))
        if outcome.exit_code == _LEAKS_EXIT and report.strip() == b"[]":
            raise ScannerFailed(
                self.tool, "reported leaks but wrote an empty report", exit_code=outcome.exit_code
            )
        progress(Progress("finished", f"{self.name}: report of {len(report)} bytes", outcome.duration, 1.0))
        return RunResult(
            report=report,
            report_format=self.report_format,
            tool_version=version,
            exit_code=outcome.exit_code,
            duration=outcome.duration,
            stderr_tail=outcome.stderr_tail[-2000:],
            contains_secrets=redact < 100,
            command=tuple(argv),
        )

    def _check_repository(self, path: Path, request: ScanRequest) -> None:
        # gitleaks treats "not a repository" as an empty history; ask git first.
        try:
            done = subprocess.run(  # noqa: S603 -- an argument list, never a shell
                [resolve_binary("", "git", f"{self.config_key}.binary"), "rev-parse", "--git-dir"],
                cwd=path,
                env=child_environment(request.workdir),
                capture_output=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ScannerFailed("git", f"rev-parse in {request.target.location!r} did not answer") from None
        if done.returncode != 0:
            raise InvalidArgument("target.location", f"{request.target.location!r} is not a git repository")

    def _file_option(self, request: ScanRequest, options: Options, name: str) -> str:
        value = options.text(name)
        # Files named in the configuration are trusted; a request's must stay inside the scan root.
        if request.options.get(name) is not None:
            return str(resolve_local_path(value, request.root, f"options.{name}"))
        return str(Path(value).resolve())

    def _option_args(self, request: ScanRequest, options: Options, git: bool) -> list[str]:
        args: list[str] = []
        for name, flag in (("config", "--config"), ("baseline", "--baseline-path")):
            if options.text(name):
                args += [flag, self._file_option(request, options, name)]
        # Always explicit, so that its default (the working directory, here the scanned tree)
        # is not used; gitleaks still reads <target>/.gitleaksignore (see the module docstring).
        ignore = self._file_option(request, options, "ignore_file") if options.text("ignore_file") else ""
        args += ["--gitleaks-ignore-path", ignore or str(request.workdir)]
        if options.flag("ignore_gitleaks_allow"):
            args.append("--ignore-gitleaks-allow")
        for rule in options.items("enable_rules"):
            args += ["--enable-rule", rule]
        for name, flag in (
            ("max_target_megabytes", "--max-target-megabytes"),
            ("max_decode_depth", "--max-decode-depth"),
            ("max_archive_depth", "--max-archive-depth"),
        ):
            if options.has(name):
                args.append(f"{flag}={int(options.number(name, 0))}")
        if options.flag("follow_symlinks"):
            if git:
                raise InvalidArgument("options.follow_symlinks", "applies to filesystem targets only")
            args.append("--follow-symlinks")
        if options.text("log_opts"):
            if not git:
                raise InvalidArgument("options.log_opts", "applies to repository targets only")
            args.append(f"--log-opts={options.text('log_opts')}")
        return args
