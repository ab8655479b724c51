"""SBOM generators as providers: gate's own cataloguers (``native``), Trivy and syft.

Built-ins are listed by import path in :data:`GENERATOR_FOR_NAME` and imported
only when first asked for, like scanner providers; a deployment may name its
own class (``sbom.generators.<name>.class: package.module:Class``). Every
generator returns a CycloneDX 1.6 document whose ``metadata.component`` is
the artifact gate names (image digest or source commit), never the tool's
idea of the root, and the component index the store keeps.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from gate.config import ScannerProvider as GeneratorSettings
from gate.errors import InvalidArgument, Unsupported
from gate.model import Component, SbomFormat, TargetKind
from gate.sbom._fs import Limits
from gate.sbom._image import ImageContent, ImageLocation
from gate.sbom._result import Subject
from gate.sbom._types import SbomWarning

Progress = Callable[[str, float], None]

GENERATOR_FOR_NAME: Mapping[str, str] = {
    "native": "gate.sbom._generators:NativeGenerator",
    "trivy": "gate.sbom._tool_generators:TrivyGenerator",
    "syft": "gate.sbom._tool_generators:SyftGenerator",
}
DEFAULT_GENERATOR = "native"


@dataclass(frozen=True, slots=True)
class SbomTarget:
    """What to inventory, already resolved and checked by the caller.

    Attributes:
        kind: ``filesystem`` or ``rootfs`` (a local directory) or ``image``.
        path: The directory (local kinds), or the archive/layout path of an image (None for a registry image).
        python_environment: The directory is a virtual environment (``pyvenv.cfg``).
        image: The image location as given (image kind).
        content: The opened image (image kind), for generators that unpack it themselves.
    """

    kind: TargetKind
    path: Path | None = None
    python_environment: bool = False
    image: ImageLocation | None = None
    content: ImageContent | None = None


@dataclass(frozen=True, slots=True)
class GeneratorRequest:
    """One generation: the target, the artifact it describes, and how to run.

    Attributes:
        target: What to inventory.
        subject: The artifact the document describes.
        fmt: CycloneDX JSON or XML.
        workdir: A private, writable directory for this run (tools write their output there).
        progress: Called with a stage and the fraction done.
        cancel: Set to stop a tool run.
        timestamp: The document timestamp (native generator), for reproducible output.
        limits: Caps for the native cataloguers and image unpacking.
        registry_options: How tools reach registries: ``insecure`` (comma-separated hosts).
    """

    target: SbomTarget
    subject: Subject
    fmt: SbomFormat
    workdir: Path
    progress: Progress | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    timestamp: datetime | None = None
    limits: Limits = field(default_factory=Limits)
    registry_options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GeneratorOutput:
    """A generated document and what the store indexes.

    Attributes:
        document: CycloneDX 1.6, in the requested format.
        components: Every component, as gate's model has them.
        generator: The producing tool and version (``gate 0.9.0``, ``trivy 0.76.0``).
        warnings: Inputs skipped or partly read.
    """

    document: bytes
    components: tuple[Component, ...]
    generator: str
    warnings: tuple[SbomWarning, ...] = ()


@runtime_checkable
class SbomGenerator(Protocol):
    """Something that inventories a target as CycloneDX 1.6.

    Constructed as ``cls(name, settings)`` with its configuration key and
    :class:`gate.config.ScannerProvider`-shaped settings (binary, timeout, options).
    """

    name: str
    supported_targets: frozenset[TargetKind]
    formats: frozenset[SbomFormat]

    def version(self) -> str:
        """The generator's version."""
        ...

    def generate(self, request: GeneratorRequest) -> GeneratorOutput:
        """Inventory ``request.target``.

        Raises:
            gate.errors.EvidenceError: the target is bad or hostile.
            gate.errors.InfrastructureError: a tool is missing, failed or timed out.
        """
        ...


class NativeGenerator:
    """gate's own cataloguers (:func:`gate.sbom.generate` and friends); no outside tool."""

    supported_targets = frozenset({TargetKind.FILESYSTEM, TargetKind.ROOTFS, TargetKind.IMAGE})
    formats = frozenset({SbomFormat.CYCLONEDX_JSON, SbomFormat.CYCLONEDX_XML})

    def __init__(self, name: str, settings: GeneratorSettings) -> None:
        """Nothing to configure: ``options`` must be empty."""
        self.name = name
        if settings.options:
            raise InvalidArgument(f"sbom.generators.{name}.options", "the native generator takes no options")

    def version(self) -> str:
        """gate's version."""
        import gate

        return gate.__version__

    def generate(self, request: GeneratorRequest) -> GeneratorOutput:
        """Run the cataloguers over the directory, environment or image."""
        from gate.sbom._generate import generate, generate_python_environment
        from gate.sbom._image import generate_image

        target = request.target
        progress, limits, timestamp = request.progress, request.limits, request.timestamp
        if target.kind is TargetKind.IMAGE:
            if target.content is None:
                raise InvalidArgument("target", "an image target must be opened before generation")
            inventory = generate_image(
                target.content, subject=request.subject, progress=progress, limits=limits, timestamp=timestamp
            )
        elif target.path is None:
            raise InvalidArgument("target.location", "required: a directory")
        else:
            make = generate_python_environment if target.python_environment else generate
            inventory = make(
                target.path, subject=request.subject, progress=progress, limits=limits, timestamp=timestamp
            )
        document = (
            inventory.to_cyclonedx_xml()
            if request.fmt is SbomFormat.CYCLONEDX_XML
            else inventory.to_cyclonedx_json()
        )
        return GeneratorOutput(
            document, inventory.model_components, f"gate {self.version()}", inventory.warnings
        )


_cache: dict[tuple[str, str], SbomGenerator] = {}
_cache_lock = threading.Lock()


def _import(path: str, key: str) -> type:
    module_name, _, attribute = path.partition(":")
    try:
        found: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(key, f"cannot import module {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise InvalidArgument(key, f"module {module_name!r} has no attribute {attribute!r}")
    if not inspect.isclass(found):
        raise InvalidArgument(key, f"{path!r} is not a class")
    return found


def load_generator(name: str, configured: Mapping[str, GeneratorSettings]) -> SbomGenerator:
    """The generator called ``name`` (built from its settings on first use, then reused).

    Args:
        name: ``native``, ``trivy``, ``syft`` or a name under ``sbom.generators``.
        configured: ``sbom.generators`` from the configuration.

    Raises:
        Unsupported: an unknown or disabled generator.
        InvalidArgument: its class cannot be imported or its settings are wrong.
    """
    settings = configured.get(name)
    if settings is not None and not settings.enabled:
        raise Unsupported(f"the {name!r} SBOM generator", f"disabled by sbom.generators.{name}.enabled")
    settings = settings or GeneratorSettings()
    path = GENERATOR_FOR_NAME.get(settings.provider_class or name, settings.provider_class)
    if not path:
        known = ", ".join(sorted({*GENERATOR_FOR_NAME, *configured}))
        raise Unsupported(f"the {name!r} SBOM generator", f"known generators: {known}")
    key = (name, settings.model_dump_json())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cls = _import(path, f"sbom.generators.{name}.class")
            instance = cls(name, settings)
            if not isinstance(instance, SbomGenerator):
                raise InvalidArgument(f"sbom.generators.{name}.class", f"{path!r} is not an SBOM generator")
            _cache[key] = cached = instance
    return cached
