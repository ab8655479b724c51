"""Trivy (CLI) as a provider: images, filesystems, root filesystems, repositories and SBOMs.

Trivy runs with ``--exit-code 0``: the verdict comes from the report, never
from the exit status, so any non-zero exit is a failure. The run's working
directory is gate's own workdir, and ``--ignorefile``/``--secret-config`` are
always passed, so that a ``.trivyignore``, ``trivy-secret.yaml`` or
``trivy.yaml`` lying in a scanned tree can never change what is reported.

Image locations:

* ``oci:<dir>`` -- an OCI image layout directory, scanned with ``--input``;
* ``docker-archive:<file.tar>`` -- a ``docker save`` tarball, with ``--input``;
* anything else -- a registry reference (``registry/repo:tag`` or
  ``@sha256:...``), pulled with ``--image-src remote`` unless ``image_src``
  says otherwise (gate assumes no container daemon).
"""

from __future__ import annotations

import re
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
    json_version,
    last_error_line,
    read_report,
    resolve_binary,
    run_tool,
)
from scanners._provider import Progress, ProgressCallback, RunResult, ScanRequest, resolve_local_path

_SCANNERS = frozenset({"vuln", "secret", "misconfig", "license"})
_SEVERITIES = frozenset({"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"})
_SUBCOMMAND = {
    TargetKind.IMAGE: "image",
    TargetKind.FILESYSTEM: "fs",
    TargetKind.ROOTFS: "rootfs",
    TargetKind.REPOSITORY: "repo",
    TargetKind.SBOM: "sbom",
}
# What Trivy can look for in each kind of target (``trivy sbom`` takes vuln and license only).
_ALLOWED_SCANNERS = {
    TargetKind.SBOM: frozenset({"vuln", "license"}),
}
_DEFAULT_SCANNERS = {
    TargetKind.SBOM: ("vuln",),
}
_IMAGE_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:@+]*")
_REMOTE_REPO = re.compile(r"https?://[^\s]+")
_VEX_KEYWORDS = frozenset({"repo", "oci", "sbom-ref"})

OPTIONS = (
    Option("scanners", "list", _SCANNERS),
    Option("severity", "list", _SEVERITIES),
    Option("cache_dir", "str", config_only=True),
    Option("offline", "bool"),
    Option("skip_db_update", "bool"),
    Option("skip_java_db_update", "bool"),
    Option("skip_check_update", "bool"),
    Option("offline_scan", "bool"),
    Option("skip_vex_repo_update", "bool"),
    Option("db_repository", "str", config_only=True),
    Option("java_db_repository", "str", config_only=True),
    Option("checks_bundle_repository", "str", config_only=True),
    Option("ignore_file", "str"),
    Option("ignore_policy", "str"),
    Option("ignore_unfixed", "bool"),
    Option("vex", "list"),
    Option("show_suppressed", "bool"),
    Option("secret_config", "str"),
    Option("skip_dirs", "list"),
    Option("skip_files", "list"),
    Option("pkg_types", "list", frozenset({"os", "library"})),
    Option("image_src", "list", frozenset({"docker", "containerd", "podman", "remote"})),
    Option("platform", "str"),
    Option("insecure", "bool", config_only=True),
    Option("docker_config", "str", config_only=True),
    Option("server", "str", config_only=True),
    Option("token", "str", config_only=True, secret=True),
    Option("branch", "str"),
    Option("commit", "str"),
    Option("tag", "str"),
)


class TrivyProvider(BaseProvider):
    """Runs ``trivy image|fs|rootfs|repo|sbom -f json`` and returns its JSON report.

    Options (``scanners.trivy.options`` or per scan; * configuration only):
    ``scanners`` (vuln, secret, misconfig, license; default vuln,secret),
    ``severity``, ``cache_dir``*, ``offline`` (all of: skip DB, Java DB and
    checks updates, offline scan), the individual ``skip_db_update``,
    ``skip_java_db_update``, ``skip_check_update``, ``offline_scan``,
    ``skip_vex_repo_update``, ``db_repository``*, ``java_db_repository``*,
    ``checks_bundle_repository``*, ``ignore_file`` (``.trivyignore`` or
    ``.yaml``), ``ignore_policy`` (Rego), ``ignore_unfixed``, ``vex`` (files,
    ``repo``, ``oci``, ``sbom-ref``), ``show_suppressed`` (default true: VEX'd
    and ignored findings are kept with their status), ``secret_config``,
    ``skip_dirs``, ``skip_files``, ``pkg_types``, ``image_src``, ``platform``,
    ``insecure``*, ``docker_config``* (a directory holding ``config.json``),
    ``server``* and ``token``* (client/server mode; the token goes through
    ``TRIVY_TOKEN``), ``branch``/``commit``/``tag`` (repository targets).
    """

    tool = "trivy"
    supported_targets = frozenset(_SUBCOMMAND)
    report_format = "trivy"
    OPTIONS = OPTIONS

    def _binary(self) -> str:
        return resolve_binary(self.settings.binary, "trivy", f"{self.config_key}.binary")

    def _ask_version(self) -> str:
        workdir = Path.home()
        argv = [self._binary(), "--version", "--format", "json"]
        return json_version(self.tool, argv, child_environment(workdir), workdir, "Version")

    def run(self, request: ScanRequest, progress: ProgressCallback, cancel: threading.Event) -> RunResult:
        """Scan ``request.target`` with Trivy (see the class docstring for options)."""
        self.check_target(request.target)
        options = self.request_options(request)
        progress(Progress("starting", f"{self.name}: preparing {request.target.kind} scan"))
        target_flags, target_args = self._target_args(request, options)
        scanners = self._scanners(request.target.kind, options)
        binary = self._binary()
        version = self.version()
        report_path = request.workdir / "trivy-report.json"
        report_path.unlink(missing_ok=True)
        timeout = self.timeout_for(request)
        argv = [
            binary,
            _SUBCOMMAND[request.target.kind],
            "--format",
            "json",
            "--output",
            str(report_path),
            "--exit-code",
            "0",
            # Trivy's own default timeout (5 min) would cut a scan gate allows to run longer.
            "--timeout",
            f"{max(1, int(timeout) + 60)}s",
            "--no-progress",
            "--disable-telemetry",
            "--skip-version-check",
            "--scanners",
            ",".join(scanners),
            "--cache-dir",
            options.text("cache_dir") or str(Path.home() / ".cache" / "trivy"),
            *target_flags,
            *self._option_args(request, options),
            "--",
            *target_args,
        ]
        extra_env = {"TRIVY_DISABLE_VEX_NOTICE": "1"}
        if options.text("token"):
            extra_env["TRIVY_TOKEN"] = options.text("token")
        if options.text("docker_config"):
            extra_env["DOCKER_CONFIG"] = options.text("docker_config")
        outcome = run_tool(
            self.tool,
            argv,
            env=child_environment(request.workdir, extra_env),
            cwd=request.workdir,
            workdir=request.workdir,
            timeout=timeout,
            cancel=cancel,
            progress=progress,
            watched=(report_path,),
            max_bytes=request.max_report_bytes,
            secrets=(options.text("token"),),
            timeout_key=f"{self.config_key}.timeout",
        )
        outcome.stdout_path.unlink(missing_ok=True)
        report = read_report(self.tool, report_path, request.max_report_bytes)
        if outcome.exit_code != 0:
            raise ScannerFailed(
                self.tool,
                f"scan of {request.target.location!r} failed",
                exit_code=outcome.exit_code,
                detail=last_error_line(outcome.stderr_tail),
            )
        check_json(self.tool, report, report_path.name, kinds=(dict,))
        progress(Progress("finished", f"{self.name}: report of {len(report)} bytes", outcome.duration, 1.0))
        return RunResult(
            report=report,
            report_format=self.report_format,
            tool_version=version,
            exit_code=outcome.exit_code,
            duration=outcome.duration,
            stderr_tail=outcome.stderr_tail[-2000:],
            contains_secrets="secret" in scanners,
            command=tuple(argv),
        )

    def _scanners(self, kind: TargetKind, options: Options) -> tuple[str, ...]:
        chosen = options.items("scanners") or _DEFAULT_SCANNERS.get(kind, ("vuln", "secret"))
        allowed = _ALLOWED_SCANNERS.get(kind, _SCANNERS)
        for scanner in chosen:
            if scanner not in allowed:
                raise InvalidArgument(
                    "options.scanners",
                    f"Trivy cannot look for {scanner!r} in a {kind} target; "
                    f"allowed: {', '.join(sorted(allowed))}",
                )
        return chosen

    def _target_args(self, request: ScanRequest, options: Options) -> tuple[list[str], list[str]]:
        """Return the flags and the positional argument that name the target."""
        target = request.target
        location = target.location
        if target.kind is TargetKind.IMAGE:
            for prefix in ("oci:", "docker-archive:"):
                if location.startswith(prefix):
                    path = resolve_local_path(location.removeprefix(prefix), request.root)
                    if prefix == "oci:" and not (path / "index.json").is_file():
                        raise InvalidArgument(
                            "target.location", f"{location!r} is not an OCI image layout (no index.json)"
                        )
                    if prefix == "docker-archive:" and not path.is_file():
                        raise InvalidArgument("target.location", f"{location!r} is not a tar file")
                    return ["--input", str(path)], []
            reference = location.removeprefix("docker://")
            if not _IMAGE_REFERENCE.fullmatch(reference):
                raise InvalidArgument(
                    "target.location",
                    f"expected an image reference (registry/repo:tag or @sha256:...), "
                    f"'oci:<dir>' or 'docker-archive:<file>', got {location!r}",
                )
            sources = options.items("image_src") or ("remote",)
            return ["--image-src", ",".join(sources)], [reference]
        if target.kind is TargetKind.REPOSITORY and "://" in location:
            if not _REMOTE_REPO.fullmatch(location):
                raise InvalidArgument(
                    "target.location", f"expected an http(s) repository URL, got {location!r}"
                )
            return [], [location]
        path = resolve_local_path(location, request.root)
        if target.kind is TargetKind.SBOM and not path.is_file():
            raise InvalidArgument("target.location", f"{location!r} is not a file (an SBOM document)")
        if target.kind is TargetKind.REPOSITORY and not path.is_dir():
            raise InvalidArgument("target.location", f"{location!r} is not a directory")
        return [], [str(path)]

    @staticmethod
    def _check_applies(name: str, kind: TargetKind, *, sbom_ok: bool) -> None:
        if kind is TargetKind.SBOM and not sbom_ok:
            raise InvalidArgument(f"options.{name}", "does not apply to sbom targets")

    @staticmethod
    def _request_path(request: ScanRequest, name: str, value: str) -> str:
        # Paths named in the configuration are trusted; a request's must stay inside its root.
        if request.options.get(name) is not None:
            return str(resolve_local_path(value, request.root, f"options.{name}"))
        return value

    def _option_args(self, request: ScanRequest, options: Options) -> list[str]:
        kind = request.target.kind
        args = self._update_args(kind, options)
        if options.items("severity"):
            args += ["--severity", ",".join(options.items("severity"))]
        for name, flag in (
            ("db_repository", "--db-repository"),
            ("java_db_repository", "--java-db-repository"),
            ("checks_bundle_repository", "--checks-bundle-repository"),
            ("platform", "--platform"),
            ("server", "--server"),
        ):
            if options.text(name):
                self._check_applies(name, kind, sbom_ok=name not in ("checks_bundle_repository", "platform"))
                if name == "platform" and kind is not TargetKind.IMAGE:
                    raise InvalidArgument("options.platform", f"applies to image targets only, not {kind}")
                args += [flag, options.text(name)]
        args += self._suppression_args(request, options)
        for name, flag in (("skip_dirs", "--skip-dirs"), ("skip_files", "--skip-files")):
            for item in options.items(name):
                self._check_applies(name, kind, sbom_ok=False)
                args += [flag, item]
        if options.items("pkg_types"):
            args += ["--pkg-types", ",".join(options.items("pkg_types"))]
        if options.flag("insecure"):
            args.append("--insecure")
        for name in ("branch", "commit", "tag"):
            if options.text(name):
                if kind is not TargetKind.REPOSITORY:
                    raise InvalidArgument(
                        f"options.{name}", f"applies to repository targets only, not {kind}"
                    )
                args += [f"--{name}", options.text(name)]
        return args

    @staticmethod
    def _update_args(kind: TargetKind, options: Options) -> list[str]:
        args: list[str] = []
        offline = options.flag("offline")
        for name, flag in (
            ("skip_db_update", "--skip-db-update"),
            ("skip_java_db_update", "--skip-java-db-update"),
            ("skip_check_update", "--skip-check-update"),
            ("offline_scan", "--offline-scan"),
            ("skip_vex_repo_update", "--skip-vex-repo-update"),
        ):
            # ``trivy sbom`` has no checks bundle to update.
            if options.flag(name, offline) and not (kind is TargetKind.SBOM and name == "skip_check_update"):
                args.append(flag)
        return args

    def _suppression_args(self, request: ScanRequest, options: Options) -> list[str]:
        # Always explicit, so a file of that name in the working directory is never picked up.
        ignore_file = options.text("ignore_file")
        args = [
            "--ignorefile",
            self._request_path(request, "ignore_file", ignore_file) if ignore_file else "",
        ]
        secret_config = options.text("secret_config")
        if request.target.kind is not TargetKind.SBOM:
            args += [
                "--secret-config",
                self._request_path(request, "secret_config", secret_config) if secret_config else "",
            ]
        if options.text("ignore_policy"):
            args += [
                "--ignore-policy",
                self._request_path(request, "ignore_policy", options.text("ignore_policy")),
            ]
        if options.flag("ignore_unfixed"):
            args.append("--ignore-unfixed")
        for source in options.items("vex"):
            if source in _VEX_KEYWORDS:
                args += ["--vex", source]
            else:
                args += ["--vex", self._request_path(request, "vex", source)]
        if options.flag("show_suppressed", True):
            args.append("--show-suppressed")
        return args
