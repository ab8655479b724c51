"""npm and Yarn lock files: ``package-lock.json`` (v1 to v3) and ``yarn.lock`` (v1 and Berry)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import lru_cache
from typing import Any

import yaml
from packageurl import PackageURL

from gate.sbom._licenses import normalise
from gate.sbom._types import (
    ComponentType,
    Found,
    FoundComponent,
    MalformedInput,
    Scope,
    component,
    make_ref,
    sri_hashes,
)

# The C loader when PyYAML was built with libyaml: Berry lock files run to megabytes.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=65536)
def _purl(name: str, version: str) -> PackageURL:
    scope, _, bare = name.rpartition("/")
    return PackageURL("npm", scope or None, bare, version)


def _group(name: str) -> str:
    return name.rpartition("/")[0]


def _licence(value: object) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return (normalise(value),)
    return ()


def package_lock(path: str, text: str) -> Found:
    """Packages of a ``package-lock.json``, with the dependency graph and integrity hashes.

    v2 and v3 locks are read from ``packages`` (keys are install paths, so
    dependencies resolve the way Node does: nearest ``node_modules`` first);
    v1 locks from the nested ``dependencies`` tree. The project itself becomes an
    ``application`` component; ``dev`` packages get scope ``excluded`` and
    ``optional`` ones ``optional``; workspace links point at their target.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedInput(path, f"invalid JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(document, dict):
        raise MalformedInput(path, f"expected a JSON object, got {type(document).__name__}")
    packages = document.get("packages")
    if isinstance(packages, dict) and packages:
        return _lock_v2(path, document, packages)
    if "packages" in document and not isinstance(packages, dict):
        raise MalformedInput(path, f"packages: expected an object, got {type(packages).__name__}")
    return _lock_v1(path, document)


def _lock_v2(path: str, document: dict[str, Any], packages: dict[str, Any]) -> Found:  # noqa: PLR0915 -- Node's resolution rules
    entries: dict[str, dict[str, Any]] = {}
    for key, entry in packages.items():
        if not isinstance(entry, dict):
            raise MalformedInput(path, f"packages[{key!r}]: expected an object, got {type(entry).__name__}")
        entries[key] = entry

    def name_of(key: str, entry: dict[str, Any]) -> str:
        declared = entry.get("name")
        if isinstance(declared, str) and declared:
            return declared
        if "node_modules/" in key:
            return key.rsplit("node_modules/", 1)[1]
        return str(document.get("name") or key or "")

    def target(key: str) -> tuple[str, dict[str, Any]] | None:
        # Follow workspace links ("link": true, "resolved": "<target key>").
        entry = entries.get(key)
        for _ in range(8):
            if entry is None or entry.get("link") is not True:
                break
            key = str(entry.get("resolved", ""))
            entry = entries.get(key)
        return (key, entry) if entry is not None else None

    refs: dict[str, str] = {}
    made: dict[str, tuple[str, dict[str, Any], str]] = {}
    for key, entry in entries.items():
        if entry.get("link") is True:
            continue
        version = entry.get("version")
        if not isinstance(version, str):
            version = str(document.get("version", "")) if key == "" else ""
        if key != "" and not version:
            continue  # a bundled placeholder without a version
        name = name_of(key, entry)
        if not name:
            continue
        ref = _ref(name, version, path)
        refs[key] = ref
        made[key] = (name, entry, version)

    def resolve(from_key: str, dep: str) -> str | None:
        base = from_key
        while True:
            candidate = f"{base}/node_modules/{dep}" if base else f"node_modules/{dep}"
            hit = target(candidate)
            if hit is not None and hit[0] in refs:
                return refs[hit[0]]
            if not base:
                return None
            base = base.rsplit("/node_modules/", 1)[0] if "/node_modules/" in base else ""

    by_ref: dict[str, FoundComponent] = {}
    for key, (name, entry, version) in made.items():
        dep_names: list[str] = []
        for field in ("dependencies", "optionalDependencies", "peerDependencies"):
            deps = entry.get(field)
            if isinstance(deps, dict):
                dep_names.extend(str(d) for d in deps)
        if key == "":
            deps = entry.get("devDependencies")
            if isinstance(deps, dict):
                dep_names.extend(str(d) for d in deps)
        depends = tuple(
            dict.fromkeys(r for r in (resolve(key, d) for d in dep_names) if r and r != refs[key])
        )
        scope = (
            Scope.EXCLUDED
            if entry.get("dev") is True
            else Scope.OPTIONAL
            if entry.get("optional") is True or entry.get("devOptional") is True
            else Scope.REQUIRED
        )
        integrity = entry.get("integrity")
        found_component = component(
            _purl(name, version),
            path=path,
            found_by="npm-lock",
            name=name.rpartition("/")[2],
            group=_group(name),
            type=ComponentType.APPLICATION if key == "" else ComponentType.LIBRARY,
            licenses=_licence(entry.get("license")),
            hashes=sri_hashes(integrity) if isinstance(integrity, str) else (),
            scope=scope,
            depends_on=depends,
        )
        _merge(by_ref, found_component)
    return Found(components=list(by_ref.values()))


def _merge(by_ref: dict[str, FoundComponent], new: FoundComponent) -> None:
    # The same name@version installed at several paths is one component whose
    # edges are the union, and which ships if any copy does.
    old = by_ref.get(new.ref)
    if old is None:
        by_ref[new.ref] = new
        return
    rank = {Scope.REQUIRED: 0, Scope.OPTIONAL: 1, Scope.EXCLUDED: 2}
    by_ref[new.ref] = replace(
        old,
        depends_on=tuple(dict.fromkeys(old.depends_on + new.depends_on)),
        scope=min(old.scope, new.scope, key=rank.__getitem__),
    )


@lru_cache(maxsize=65536)
def _ref(name: str, version: str, path: str) -> str:
    return make_ref(_purl(name, version), "", "", path)


def _lock_v1(path: str, document: dict[str, Any]) -> Found:
    by_ref: dict[str, FoundComponent] = {}
    root_name = str(document.get("name") or "")
    root_version = str(document.get("version") or "")

    def walk(tree: object, chain: list[dict[str, Any]], where: str) -> list[str]:  # noqa: PLR0912 -- v1 tree rules
        if tree is None:
            return []
        if not isinstance(tree, dict):
            raise MalformedInput(path, f"{where}: expected an object, got {type(tree).__name__}")
        direct: list[str] = []
        scope_tree: dict[str, Any] = tree
        for name, entry in tree.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("version"), str):
                raise MalformedInput(path, f"{where}.{name}: expected an object with a string 'version'")
            version = entry["version"]
            if version.startswith(("file:", "link:")):
                continue
            real_name = name
            if version.startswith("npm:") and "@" in version[5:]:
                # An alias: "npm:real-name@1.2.3".
                real_name, _, version = version[4:].rpartition("@")
            direct.append(_ref(real_name, version, path))
        for name, entry in tree.items():
            version = entry["version"]
            if version.startswith(("file:", "link:")):
                continue
            real_name = name
            if version.startswith("npm:") and "@" in version[5:]:
                real_name, _, version = version[4:].rpartition("@")
            inner = [*chain, scope_tree]
            walk(entry.get("dependencies"), inner, f"{where}.{name}.dependencies")
            requires = entry.get("requires")
            depends: list[str] = []
            if isinstance(requires, dict):
                local = entry.get("dependencies") if isinstance(entry.get("dependencies"), dict) else {}
                for dep in requires:
                    for level in [local, *reversed(inner)]:
                        hit = level.get(dep) if isinstance(level, dict) else None
                        if isinstance(hit, dict) and isinstance(hit.get("version"), str):
                            dep_version = hit["version"]
                            dep_name = dep
                            if dep_version.startswith("npm:") and "@" in dep_version[5:]:
                                dep_name, _, dep_version = dep_version[4:].rpartition("@")
                            depends.append(_ref(dep_name, dep_version, path))
                            break
            scope = (
                Scope.EXCLUDED
                if entry.get("dev") is True
                else Scope.OPTIONAL
                if entry.get("optional") is True
                else Scope.REQUIRED
            )
            integrity = entry.get("integrity")
            _merge(
                by_ref,
                component(
                    _purl(real_name, version),
                    path=path,
                    found_by="npm-lock",
                    name=real_name.rpartition("/")[2],
                    group=_group(real_name),
                    hashes=sri_hashes(integrity) if isinstance(integrity, str) else (),
                    scope=scope,
                    depends_on=tuple(dict.fromkeys(depends)),
                ),
            )
        return direct

    top = walk(document.get("dependencies"), [], "dependencies")
    if root_name:
        _merge(
            by_ref,
            component(
                _purl(root_name, root_version),
                path=path,
                found_by="npm-lock",
                name=root_name.rpartition("/")[2],
                group=_group(root_name),
                type=ComponentType.APPLICATION,
                depends_on=tuple(dict.fromkeys(top)),
            ),
        )
    return Found(components=list(by_ref.values()))


_YARN_V1_KEY = re.compile(r"^(?P<keys>[^\s].*):\s*$")
_YARN_V1_FIELD = re.compile(r'^(?P<indent>\s+)(?P<key>"[^"]*"|[^\s]+)\s*(?P<value>.*)$')


def _descriptor_name(descriptor: str) -> str:
    # "@babel/core@^7.0.0" -> "@babel/core"; "lodash@npm:^4" -> "lodash"
    descriptor = descriptor.strip().strip('"')
    at = descriptor.find("@", 1)
    return descriptor[:at] if at > 0 else descriptor


def yarn_lock(path: str, text: str) -> Found:
    """Packages of a ``yarn.lock`` (Yarn 1 text format, or Berry's YAML), with the dependency graph.

    Yarn 1 ``integrity`` fields become hashes; Berry's ``checksum`` hashes its own
    zip archives, not the npm tarball, so it is kept as a property only.
    Berry workspaces (``@workspace:``) become ``application`` components.
    """
    if "__metadata:" in text:
        return _yarn_berry(path, text)
    return _yarn_v1(path, text)


def _yarn_v1(path: str, text: str) -> Found:  # noqa: PLR0912 -- the Yarn 1 line grammar
    blocks: list[tuple[list[str], dict[str, str], dict[str, str], int]] = []
    current: tuple[list[str], dict[str, str], dict[str, str], int] | None = None
    in_deps = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw[0].isspace():
            match = _YARN_V1_KEY.match(raw)
            if match is None:
                raise MalformedInput(path, f"expected 'descriptor[, descriptor]:', got {raw[:80]!r}", number)
            current = ([k.strip().strip('"') for k in match.group("keys").split(",")], {}, {}, number)
            blocks.append(current)
            in_deps = False
            continue
        if current is None:
            raise MalformedInput(path, "indented line before any entry", number)
        field = _YARN_V1_FIELD.match(raw)
        if field is None:
            continue
        key = field.group("key").removesuffix(":").strip('"')
        value = field.group("value").strip().strip('"')
        depth = len(field.group("indent"))
        if depth <= 2:
            in_deps = key in ("dependencies", "optionalDependencies") and not value
            if not in_deps:
                current[1][key] = value
        elif in_deps:
            current[2][key] = value
    descriptors: dict[str, str] = {}
    for keys, fields, _, number in blocks:
        name = _descriptor_name(keys[0])
        version = fields.get("version", "")
        if not version:
            raise MalformedInput(path, f"entry {keys[0]!r} has no version", number)
        for key in keys:
            descriptors[key] = _ref(name, version, path)
    by_ref: dict[str, FoundComponent] = {}
    for keys, fields, deps, _ in blocks:
        name = _descriptor_name(keys[0])
        depends = tuple(
            dict.fromkeys(r for r in (descriptors.get(f"{d}@{rng}") for d, rng in deps.items()) if r)
        )
        _merge(
            by_ref,
            component(
                _purl(name, fields["version"]),
                path=path,
                found_by="yarn-lock",
                name=name.rpartition("/")[2],
                group=_group(name),
                hashes=sri_hashes(fields.get("integrity", "")),
                depends_on=depends,
            ),
        )
    return Found(components=list(by_ref.values()))


def _yarn_berry(path: str, text: str) -> Found:
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MalformedInput(path, f"invalid YAML: {exc}", mark.line + 1 if mark else 0) from None
    if not isinstance(document, dict):
        raise MalformedInput(path, f"expected a mapping, got {type(document).__name__}")
    descriptors: dict[str, str] = {}
    entries: list[tuple[str, str, bool, dict[str, Any]]] = []
    for key, entry in document.items():
        if key == "__metadata":
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("version"), str | int | float):
            raise MalformedInput(path, f"{key}: expected a mapping with a 'version'")
        resolution = str(entry.get("resolution", key))
        name = _descriptor_name(resolution)
        version = str(entry["version"])
        workspace = "@workspace:" in resolution
        ref = _ref(name, version, path)
        for descriptor in str(key).split(","):
            descriptors[descriptor.strip()] = ref
        entries.append((name, version, workspace, entry))
    by_ref: dict[str, FoundComponent] = {}
    for name, version, workspace, entry in entries:
        deps = entry.get("dependencies") or {}
        depends: list[str] = []
        if isinstance(deps, dict):
            for dep, rng in deps.items():
                spec = str(rng)
                hit = descriptors.get(f"{dep}@{spec}") or descriptors.get(f"{dep}@npm:{spec}")
                if hit:
                    depends.append(hit)
        checksum = entry.get("checksum")
        _merge(
            by_ref,
            component(
                _purl(name, version),
                path=path,
                found_by="yarn-lock",
                name=name.rpartition("/")[2],
                group=_group(name),
                type=ComponentType.APPLICATION if workspace else ComponentType.LIBRARY,
                properties=(("gate:yarn:checksum", str(checksum)),) if checksum else (),
                depends_on=tuple(dict.fromkeys(depends)),
            ),
        )
    return Found(components=list(by_ref.values()))
