"""Native SBOM generation: cataloguers over a root directory, and CycloneDX 1.6 output.

The entry points are :func:`generate` (a directory or a container root
filesystem), :func:`generate_python_environment` (a virtual environment or
``sys.prefix``) and :func:`generate_image` (an image opened with
:func:`open_image` from an OCI layout, a docker-archive or a registry: its
layers applied in a private temporary directory, whiteouts honoured, hostile
archives refused with :class:`UnsafeArchive`). Generators are providers
(:data:`GENERATOR_FOR_NAME`: ``native``, ``trivy``, ``syft``; :func:`load_generator`).

The cataloguers are pure over the filesystem: they read below the given
directory only (symbolic links are resolved inside it, never out of it), with
caps on what they read (:class:`Limits`), and return a :class:`GeneratedSbom`
that renders itself as CycloneDX 1.6 JSON or XML.

Cataloguers: dpkg (``var/lib/dpkg/status``, ``status.d``), apk
(``lib/apk/db/installed``), installed Python distributions (``*.dist-info``,
``*.egg-info``), ``requirements*.txt``, ``poetry.lock``, ``uv.lock``,
``Pipfile.lock``, ``package-lock.json`` (v1-v3), ``yarn.lock`` (v1 and Berry),
``go.mod``/``go.sum``, Go build information in ELF executables, and Java
archives (``pom.properties``, ``MANIFEST.MF``, nested jars). The operating system
comes from ``etc/os-release`` or ``usr/lib/os-release``.

Example::

    sbom = generate(Path("rootfs"), subject=Subject("registry.example/app", "sha256:" + "0" * 64))
    document = sbom.to_cyclonedx_json()
    for warning in sbom.warnings:  # inputs skipped, with the path and the reason
        ...
"""

from gate.sbom._fs import Limits, TooLarge, UnsafePath
from gate.sbom._generate import Progress, generate, generate_python_environment
from gate.sbom._generators import (
    GENERATOR_FOR_NAME,
    GeneratorOutput,
    GeneratorRequest,
    SbomGenerator,
    SbomTarget,
    load_generator,
)
from gate.sbom._image import ImageContent, ImageLocation, generate_image, open_image, parse_location
from gate.sbom._layers import UnsafeArchive
from gate.sbom._os_release import OperatingSystem
from gate.sbom._result import GeneratedSbom, Subject
from gate.sbom._types import FoundComponent, Hash, MalformedInput, SbomWarning, Scope

__all__ = [
    "GENERATOR_FOR_NAME",
    "FoundComponent",
    "GeneratedSbom",
    "GeneratorOutput",
    "GeneratorRequest",
    "Hash",
    "ImageContent",
    "ImageLocation",
    "Limits",
    "MalformedInput",
    "OperatingSystem",
    "Progress",
    "SbomGenerator",
    "SbomTarget",
    "SbomWarning",
    "Scope",
    "Subject",
    "TooLarge",
    "UnsafeArchive",
    "UnsafePath",
    "generate",
    "generate_image",
    "generate_python_environment",
    "load_generator",
    "open_image",
    "parse_location",
]
