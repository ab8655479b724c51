"""Native SBOM generation: cataloguers over a root directory, and CycloneDX 1.6 output.

The entry points are :func:`generate` (a directory or a container root
filesystem) and :func:`generate_python_environment` (a virtual environment or
``sys.prefix``). Both are pure over the filesystem: they read below the given
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
from gate.sbom._os_release import OperatingSystem
from gate.sbom._result import GeneratedSbom, Subject
from gate.sbom._types import FoundComponent, Hash, MalformedInput, SbomWarning, Scope

__all__ = [
    "FoundComponent",
    "GeneratedSbom",
    "Hash",
    "Limits",
    "MalformedInput",
    "OperatingSystem",
    "Progress",
    "SbomWarning",
    "Scope",
    "Subject",
    "TooLarge",
    "UnsafePath",
    "generate",
    "generate_python_environment",
]
