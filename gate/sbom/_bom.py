"""The cyclonedx-python-lib model of a generated inventory (``GeneratedSbom.to_bom()``).

The model is the reference: ``_document`` writes the same JSON and XML
directly because the library is slow at scale, and the tests compare the two.
Two of the library's behaviours are handled here, as the project's notes
measured them:

* ``Bom.register_dependency`` finds a target with a linear scan of every
  dependency entry, and ``Bom.validate()`` (run by every outputter) calls it
  once per component, so serialising is quadratic (37 s to build a
  5,000-component BOM). Each Bom built here gets an instance-level replacement
  backed by a dict, which produces the same entries (upstream issue
  CycloneDX/cyclonedx-python-lib#1006). Subclassing ``Bom`` is not an option:
  py-serializable registers only ``Bom`` itself and a subclass serialises to
  an empty document.
* Every component gets an explicit bom-ref and the document a fixed serial
  number and timestamp; the library's defaults are random, which makes output
  irreproducible.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.model.dependency import Dependable, Dependency
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.output.xml import XmlV1Dot6
from packageurl import PackageURL

import gate
from gate.sbom import _licenses
from gate.sbom._document import library_version
from gate.sbom._types import FoundComponent

if TYPE_CHECKING:
    from gate.sbom import GeneratedSbom

_HASH_ALGS = {alg.value: alg for alg in HashAlgorithm}
_SCOPES = {
    "required": ComponentScope.REQUIRED,
    "optional": ComponentScope.OPTIONAL,
    "excluded": ComponentScope.EXCLUDED,
}


def _licence_objects(values: tuple[str, ...]) -> list[LicenseExpression | DisjunctiveLicense]:
    # CycloneDX allows one expression or a list of id/name licences, never a mix.
    if len(values) == 1 and _licenses.is_compound(values[0]):
        return [LicenseExpression(values[0])]
    return [
        DisjunctiveLicense(id=value) if _licenses.is_spdx_id(value) else DisjunctiveLicense(name=value)
        for value in values
    ]


def _component(found: FoundComponent) -> Component:
    model = found.component
    properties = [Property(name="gate:found-by", value=found.found_by)]
    if found.path:
        properties.append(Property(name="gate:location", value=found.path))
    properties.extend(Property(name=name, value=value) for name, value in found.properties)
    return Component(
        type=ComponentType(model.type),
        name=model.name,
        version=model.version or None,
        group=model.group or None,
        bom_ref=found.ref,
        purl=PackageURL.from_string(model.purl) if model.purl else None,
        scope=_SCOPES[found.scope.value] if found.scope.value != "required" else None,
        licenses=_licence_objects(model.licenses),
        hashes=[
            HashType(alg=_HASH_ALGS[h.alg], content=h.content) for h in found.hashes if h.alg in _HASH_ALGS
        ],
        properties=properties,
    )


def _library_component() -> Component:
    # The library's own this_component() carries eight URLs; python-jsonschema
    # checks each IRI with a slow parser (seconds per small BOM), and name,
    # version and purl identify the tool just as well.
    version = library_version()
    return Component(
        type=ComponentType.LIBRARY,
        group="CycloneDX",
        name="cyclonedx-python-lib",
        version=version,
        bom_ref=f"cyclonedx-python-lib@{version}",
        purl=PackageURL("pypi", None, "cyclonedx-python-lib", version),
    )


def _install_fast_dependency_registration(bom: Bom) -> None:
    index: dict[str, Dependency] = {dep.ref.value or "": dep for dep in bom.dependencies}

    def register_dependency(target: Dependable, depends_on: Iterable[Dependable] | None = None) -> None:
        key = target.bom_ref.value or ""
        entry = index.get(key)
        children = list(depends_on) if depends_on else []
        if entry is None:
            entry = Dependency(ref=target.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in children])
            bom.dependencies.add(entry)
            index[key] = entry
        elif children:
            entry.dependencies.update(Dependency(ref=c.bom_ref) for c in children)
        for child in children:
            register_dependency(child)

    # An instance attribute shadows the method for this Bom only (see the module docstring).
    bom.register_dependency = register_dependency  # type: ignore[method-assign]


def build(sbom: GeneratedSbom) -> Bom:
    """The cyclonedx-python-lib model of ``sbom`` (components, graph, metadata)."""
    bom = Bom(serial_number=sbom.serial_number)
    bom.metadata.timestamp = sbom.timestamp
    tool = Component(
        type=ComponentType.APPLICATION,
        name="gate",
        version=gate.__version__,
        bom_ref=f"gate@{gate.__version__}",
        purl=PackageURL("pypi", None, "gate", gate.__version__),
    )
    bom.metadata.tools.components.add(tool)
    bom.metadata.tools.components.add(_library_component())
    subject = sbom.subject
    root = Component(
        type=ComponentType.CONTAINER if subject.kind.value == "image" else ComponentType.APPLICATION,
        name=subject.name,
        version=subject.digest.removeprefix("git:"),
        bom_ref=subject.bom_ref,
        purl=subject.purl,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=subject.digest.removeprefix("sha256:"))]
        if subject.digest.startswith("sha256:")
        else [],
        properties=[
            Property(name="gate:artifact-digest", value=subject.digest),
            Property(name="gate:target-kind", value=sbom.target_kind.value),
            *([Property(name="gate:tag", value=subject.version)] if subject.version else []),
        ],
    )
    bom.metadata.component = root
    components = {found.ref: _component(found) for found in sbom.components}
    bom.components.update(components.values())
    refs: dict[str, BomRef] = {ref: c.bom_ref for ref, c in components.items()}
    refs[subject.bom_ref] = root.bom_ref
    entries = [
        Dependency(ref=refs[ref], dependencies=[Dependency(ref=refs[d]) for d in depends if d in refs])
        for ref, depends in sbom.dependencies.items()
        if ref in refs
    ]
    bom.dependencies.update(entries)
    _install_fast_dependency_registration(bom)
    return bom


def to_json(sbom: GeneratedSbom) -> bytes:
    """CycloneDX 1.6 JSON through the library's outputter (the reference for the fast writer)."""
    return JsonV1Dot6(build(sbom)).output_as_string(indent=None).encode()


def to_xml(sbom: GeneratedSbom) -> bytes:
    """CycloneDX 1.6 XML through the library's outputter (the reference for the fast writer)."""
    return XmlV1Dot6(build(sbom)).output_as_string(indent=None).encode()
