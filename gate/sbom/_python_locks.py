"""Python lock and requirement files: ``requirements*.txt``, poetry, uv and Pipenv locks."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from packageurl import PackageURL
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from gate.sbom._types import (
    ComponentType,
    Found,
    FoundComponent,
    Hash,
    MalformedInput,
    Scope,
    component,
    hex_hash,
    make_ref,
)

_REQUIREMENTS = re.compile(r"requirements[\w.\-]*\.txt")


def is_requirements(name: str) -> bool:
    """True for requirement-file names (``requirements.txt``, ``requirements-dev.txt``)."""
    return bool(_REQUIREMENTS.fullmatch(name))


def _purl(name: str, version: str) -> PackageURL:
    return PackageURL("pypi", None, canonicalize_name(name), version)


def requirements(path: str, text: str) -> Found:
    """Pinned requirements (``name==version``) of a requirements file.

    Unpinned lines name no version and are left out; options (``-r``, ``-e``,
    ``--index-url``) are ignored; ``--hash`` values become component hashes.
    """
    found = Found()
    seen: set[str] = set()
    logical = ""
    start = 0
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        if not logical:
            start = number
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        entry, logical = logical.strip(), ""
        if not entry or entry.startswith("-"):
            continue
        spec, *options = re.split(r"\s+(?=--)", entry)
        try:
            requirement = Requirement(spec)
        except InvalidRequirement as exc:
            raise MalformedInput(path, f"not a requirement: {exc}", start) from None
        pins = [s for s in requirement.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if len(pins) != 1 or len(requirement.specifier) != 1:
            continue
        version = pins[0].version
        hashes = tuple(
            h
            for h in (hex_hash(o.split("=", 1)[1]) for o in options if o.startswith("--hash="))
            if h is not None
        )
        purl = _purl(requirement.name, version)
        if purl.to_string() in seen:
            continue
        seen.add(purl.to_string())
        found.components.append(
            component(
                purl, path=path, found_by="python-requirements", name=requirement.name, hashes=hashes[:1]
            )
        )
    return found


def _toml(path: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MalformedInput(path, f"invalid TOML: {exc}") from None


def _packages(path: str, document: Mapping[str, Any]) -> list[dict[str, Any]]:
    packages = document.get("package", [])
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        raise MalformedInput(path, f"'package' must be an array of tables, got {type(packages).__name__}")
    for index, package in enumerate(packages):
        for key in ("name", "version"):
            if not isinstance(package.get(key), str) or not package.get(key):
                if key == "version" and isinstance(package.get("name"), str) and "source" in package:
                    continue  # uv's virtual/editable projects may omit version
                raise MalformedInput(path, f"package[{index}].{key}: expected a non-empty string")
    return packages


_POETRY_FILES = re.compile(r"^files = \[\n(?:[ \t]+\{[^\n]*\},?\n)*\]\n", re.MULTILINE)


def poetry(path: str, text: str) -> Found:
    """Packages of a ``poetry.lock`` (lock format 1.x and 2.x), with the dependency graph.

    Development packages (``category = "dev"`` in old locks, only non-main
    ``groups`` in Poetry 2 locks) get scope ``excluded``.
    """
    # The per-package ``files`` arrays (one inline table per wheel) are most of
    # a poetry.lock and are not read here; tomllib spends ~80 % of its time on
    # them, so lines that are exactly such arrays are dropped before parsing.
    packages = _packages(path, _toml(path, _POETRY_FILES.sub("", text)))
    refs = {
        canonicalize_name(p["name"]): make_ref(_purl(p["name"], p["version"]), "", "", path) for p in packages
    }
    found = Found()
    for package in packages:
        name, version = package["name"], package["version"]
        deps = package.get("dependencies", {})
        depends = (
            [refs[canonicalize_name(d)] for d in deps if canonicalize_name(d) in refs]
            if isinstance(deps, dict)
            else []
        )
        groups = package.get("groups")
        dev = package.get("category") == "dev" or (
            isinstance(groups, list) and bool(groups) and "main" not in groups
        )
        scope = (
            Scope.EXCLUDED if dev else Scope.OPTIONAL if package.get("optional") is True else Scope.REQUIRED
        )
        found.components.append(
            component(
                _purl(name, version),
                path=path,
                found_by="poetry-lock",
                name=name,
                scope=scope,
                depends_on=tuple(dict.fromkeys(depends)),
            )
        )
    return found


def uv(path: str, text: str) -> Found:
    """Packages of a ``uv.lock`` with the dependency graph and sdist hashes.

    The project itself (``source = { editable|virtual = "." }``) becomes an
    ``application`` component that depends on its direct dependencies; its
    ``dev-dependencies`` are scoped ``excluded`` unless something else needs them.
    """
    packages = _packages(path, _toml(path, text))
    refs: dict[str, str] = {}
    for package in packages:
        refs.setdefault(
            canonicalize_name(package["name"]),
            make_ref(_purl(package["name"], str(package.get("version", ""))), "", "", path),
        )
    dev_only: set[str] = set()
    runtime: set[str] = set()
    for package in packages:
        for dep in _dep_names(package.get("dependencies")):
            runtime.add(dep)
        for group in _groups(package.get("optional-dependencies")):
            runtime.update(_dep_names(group))
        for group in _groups(package.get("dev-dependencies")):
            dev_only.update(_dep_names(group))
    dev_only -= runtime
    found = Found()
    for package in packages:
        name, version = package["name"], str(package.get("version", ""))
        canonical = canonicalize_name(name)
        source = package.get("source") or {}
        local = isinstance(source, dict) and any(k in source for k in ("editable", "virtual"))
        names = list(_dep_names(package.get("dependencies")))
        for group in _groups(package.get("optional-dependencies")):
            names.extend(_dep_names(group))
        if local:
            for group in _groups(package.get("dev-dependencies")):
                names.extend(_dep_names(group))
        depends = tuple(dict.fromkeys(refs[n] for n in names if n in refs and refs[n] != refs[canonical]))
        sdist = package.get("sdist")
        digest = (
            hex_hash(sdist["hash"])
            if isinstance(sdist, dict) and isinstance(sdist.get("hash"), str)
            else None
        )
        found.components.append(
            component(
                _purl(name, version),
                path=path,
                found_by="uv-lock",
                name=name,
                type=ComponentType.APPLICATION if local else ComponentType.LIBRARY,
                scope=Scope.EXCLUDED if canonical in dev_only else Scope.REQUIRED,
                hashes=(digest,) if digest else (),
                depends_on=depends,
            )
        )
    return found


def _groups(value: object) -> list[object]:
    # optional-dependencies / dev-dependencies: a table of group name -> list.
    return list(value.values()) if isinstance(value, dict) else []


def _dep_names(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [
        canonicalize_name(d["name"]) for d in value if isinstance(d, dict) and isinstance(d.get("name"), str)
    ]


def pipfile(path: str, text: str) -> Found:
    """Packages of a ``Pipfile.lock`` (``default`` and ``develop``; the latter scoped ``excluded``).

    The lock gives no graph; ``hashes`` are of distribution files, the first is kept.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedInput(path, f"invalid JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(document, dict):
        raise MalformedInput(path, f"expected a JSON object, got {type(document).__name__}")
    found = Found()
    seen: dict[str, FoundComponent] = {}
    for section, scope in (("default", Scope.REQUIRED), ("develop", Scope.EXCLUDED)):
        entries = document.get(section, {})
        if not isinstance(entries, dict):
            raise MalformedInput(path, f"{section}: expected an object, got {type(entries).__name__}")
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                raise MalformedInput(
                    path, f"{section}.{name}: expected an object, got {type(entry).__name__}"
                )
            pinned = entry.get("version", "")
            if not isinstance(pinned, str) or not pinned.startswith("=="):
                continue  # VCS and path entries carry no version
            hashes = entry.get("hashes", [])
            first = (
                hex_hash(hashes[0])
                if isinstance(hashes, list) and hashes and isinstance(hashes[0], str)
                else None
            )
            purl = _purl(name, pinned[2:])
            if purl.to_string() in seen:
                continue
            made = component(
                purl, path=path, found_by="pipfile-lock", name=name, scope=scope, hashes=_one(first)
            )
            seen[purl.to_string()] = made
            found.components.append(made)
    return found


def _one(value: Hash | None) -> tuple[Hash, ...]:
    return (value,) if value is not None else ()
