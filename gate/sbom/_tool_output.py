"""What gate cannot store, taken out of a Trivy or syft CycloneDX document before gate reads it.

The tools copy package metadata into their documents as they find it, so a NUL or a control
character in one package's name reaches gate as it reached them. An upload holding one is
refused whole (:mod:`gate.sbom._ingest`); a generated document instead loses that entry, with
a warning, as gate's own cataloguers skip it (:func:`gate.sbom._generate.unstorable`):

* a component whose identifiers the upload parser refuses (type, name, version, group, purl,
  bom-ref, scope, hashes, licences: a NUL or a control character, a percent-encoded control
  in the purl) is skipped. Components nested in it take its place; its dependency entry and
  every reference to it go with it. A service is skipped for a NUL in its bom-ref, name,
  version or group (the parser reads no other field of a service);
* a NUL in any other text of an entry (properties, descriptions, URLs) is replaced with
  U+FFFD and the entry kept, as native generation keeps such text (it checks identifiers
  only, and its XML writer puts U+FFFD where the format cannot carry a character); if the
  text is then no longer valid CycloneDX (a URL), the entry is skipped;
* a lone UTF-16 surrogate escape (invalid UTF-8 in what the tool read) becomes U+FFFD
  wherever it is, identifiers included, as native reading decodes invalid bytes;
* a dependency entry or target holding a NUL is skipped, and so is a tool entry of
  ``metadata.tools`` whose name or version the parser refuses; the rest of the document has
  its NULs replaced like an entry's free text.

Shapes the schema refuses are only made safe to check: the schema check that follows names
them, and the whole document is refused as before. Entries are taken out after that check, so
that its errors name the positions the tool wrote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gate.errors import InvalidArgument
from gate.sbom._ingest import MAX_NESTING, NUL_PROBLEM, _json_component, cyclonedx_validator, identifier
from gate.sbom._types import SbomWarning, shown

# What no stored document may hold: a NUL (PostgreSQL's text, XML) and a lone surrogate (UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"
# How either can appear in JSON text (a surrogate's escape may be written in either case).
_TEXT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_SHOWN = 80
_LISTED = 3
# The fields that identify a service: a NUL there cannot be replaced without naming another one.
_SERVICE_IDENTIFIERS = ("bom-ref", "name", "version", "group")
_CHILDREN = {"component": "components", "service": "services"}
_SECTIONS = frozenset({"components", "services", "metadata", "dependencies"})


def _fixed(text: str) -> str:
    return _UNSTORABLE.sub(_REPLACEMENT, text)


def _pointer(parts: tuple[str, ...]) -> str:
    # The parts are untrusted keys: shown as they are only when printable and short.
    return "/".join(part if part.isprintable() and len(part) <= _SHOWN else shown(part) for part in parts)


@dataclass(slots=True)
class _Repaired:
    """What :func:`_repair` replaced: the paths of texts and of keys, and which characters."""

    texts: list[tuple[str, ...]] = field(default_factory=list)
    keys: list[tuple[str, ...]] = field(default_factory=list)
    nul: bool = False
    surrogate: bool = False

    def note(self, text: str) -> None:
        self.nul = self.nul or "\x00" in text
        self.surrogate = self.surrogate or _SURROGATE.search(text) is not None

    def what(self) -> str:
        if self.nul and self.surrogate:
            return "NUL characters and lone UTF-16 surrogates"
        return "NUL characters" if self.nul else "lone UTF-16 surrogates"

    def listed(self) -> str:
        paths = [_pointer(parts) for parts in (*self.keys, *self.texts)]
        more = f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else ""
        return ", ".join(paths[:_LISTED]) + more


def _repair(node: Any, *, skip: frozenset[str] = frozenset(), rename_keys: bool = True) -> _Repaired:
    """Replace NUL and lone surrogates with U+FFFD in every string under ``node``, in place.

    ``skip`` holds keys of ``node`` itself not to walk into (nested entries, cleaned on their
    own). Keys holding either are renamed the same way with ``rename_keys``, else only
    reported. A loop, not recursion: json.loads nests as deep as the recursion limit allows.
    """
    found = _Repaired()
    stack: list[tuple[tuple[str, ...], Any]] = [((), node)]
    while stack:
        parts, value = stack.pop()
        if isinstance(value, dict):
            items = [(key, item) for key, item in value.items() if parts or key not in skip]
        elif isinstance(value, list):
            items = [(str(index), item) for index, item in enumerate(value)]
        else:
            continue
        for key, item in items:
            if isinstance(value, dict) and _UNSTORABLE.search(key):
                found.keys.append((*parts, key))
                found.note(key)
            if isinstance(item, str) and _UNSTORABLE.search(item):
                found.texts.append((*parts, key))
                found.note(item)
                value[key if isinstance(value, dict) else int(key)] = _fixed(item)
        stack.extend(((*parts, key), item) for key, item in reversed(items) if isinstance(item, dict | list))
        if isinstance(value, dict) and rename_keys and any(_UNSTORABLE.search(key) for key in value):
            renamed = {_fixed(key): item for key, item in value.items()}
            value.clear()
            value.update(renamed)
    return found


def _safe(value: Any) -> Any:
    """``value`` with no NUL or lone surrogate left, whatever its shape (for shapes the schema
    refuses: its validator cannot even encode a surrogate)."""
    if isinstance(value, str):
        return _fixed(value)
    _repair(value)
    return value


class _Cleaner:
    """One document's cleaning: the warnings, the bom-refs of what was skipped and kept, and the
    lists to replace once the tool's own schema has checked the document as the tool wrote it
    (so that its errors name the tool's own positions)."""

    def __init__(self, tool: str, version: str, *, text: bool) -> None:
        self.tool = tool
        self.version = version
        self.text = text  # whether the document may hold a NUL or a surrogate at all
        self.warnings: list[SbomWarning] = []
        self.skipped = 0
        self.dropped_refs: set[str] = set()
        self.kept_refs: set[str] = set()
        self.root_ref = ""  # the tool's metadata.component, which gate renames to the subject
        self.pending: list[tuple[dict[str, Any], str, list[Any]]] = []
        # Where the entries left out are, and the key of their nested entries (which stay).
        self.dropped: list[tuple[tuple[str, ...], str]] = []

    def skip(self, parts: tuple[str, ...], what: str, problem: str) -> None:
        self.skipped += 1
        self.warnings.append(SbomWarning(_pointer(parts), f"{self.tool} {what} skipped: {problem}"))

    def leave_out(self, parts: tuple[str, ...], children_key: str = "") -> None:
        self.dropped.append((parts, children_key))

    def repair(self, node: Any, *, skip: frozenset[str] = frozenset(), rename_keys: bool = True) -> _Repaired:
        """:func:`_repair`, unless the document holds neither a NUL nor a surrogate anywhere."""
        return _repair(node, skip=skip, rename_keys=rename_keys) if self.text else _Repaired()

    def safe(self, value: Any) -> Any:
        """:func:`_safe`, unless the document holds neither a NUL nor a surrogate anywhere."""
        return _safe(value) if self.text else value

    # --- components and services ---------------------------------------------------------------

    def entries(
        self, container: dict[str, Any], key: str, parts: tuple[str, ...], kind: str, depth: int
    ) -> list[Any] | None:
        """``container[key]`` without the entries gate cannot store (replaced later), nested ones
        cleaned first and promoted in place of a skipped parent; None when it is not a list."""
        entries = container[key]
        if not isinstance(entries, list) or depth > MAX_NESTING:
            # A shape the schema check (or the reader's nesting cap) refuses; only made safe to check.
            container[key] = self.safe(entries)
            return None
        kept: list[Any] = []
        children_key = _CHILDREN[kind]
        for index, entry in enumerate(entries):
            here = (*parts, str(index))
            if not isinstance(entry, dict):
                entries[index] = self.safe(entry)
                kept.append(entries[index])
                continue
            children = (
                self.entries(entry, children_key, (*here, children_key), kind, depth + 1)
                if children_key in entry
                else None
            )
            label = self._label(kind, entry)
            problem = self._problem(entry, kind, here, label)
            ref = entry.get("bom-ref")
            if problem is None:
                if isinstance(ref, str):
                    self.kept_refs.add(ref)
                kept.append(entry)
                continue
            self.skip(here, label, problem)
            self.leave_out(here, children_key)
            if isinstance(ref, str):
                self.dropped_refs.add(_fixed(ref))
            # Left in until the schema check is done, which must be able to read it.
            self.repair(entry, skip=frozenset({children_key}))
            kept.extend(children or ())
        self.pending.append((container, key, kept))
        return kept

    @staticmethod
    def _label(kind: str, entry: dict[str, Any]) -> str:
        name, ref = entry.get("name"), entry.get("bom-ref")
        label = f"{kind} {shown(name if name is not None else ref)}"
        if ref is not None and name is not None and ref != name:
            label += f" (bom-ref {shown(ref)})"
        return label

    def _problem(self, entry: dict[str, Any], kind: str, parts: tuple[str, ...], label: str) -> str | None:
        """Why the entry cannot be stored, or None (its other text made safe, with a warning)."""
        refused = self._refused_identifier(entry, kind)
        if refused is not None:
            return refused
        children_key = _CHILDREN[kind]
        repaired = self.repair(entry, skip=frozenset({children_key}), rename_keys=False)
        if repaired.keys:
            return f"{_pointer(repaired.keys[0])}: a key holding {repaired.what()}"
        if not repaired.texts:
            return None
        invalid = self._invalid(entry, kind, repaired)
        if invalid is not None:
            return (
                f"{invalid}: {repaired.what()} replaced with U+FFFD, but then not valid "
                f"CycloneDX {self.version}"
            )
        self.warnings.append(
            SbomWarning(
                _pointer(parts),
                f"{self.tool} {label}: {repaired.what()} replaced with U+FFFD in {repaired.listed()}",
            )
        )
        return None

    @staticmethod
    def _refused_identifier(entry: dict[str, Any], kind: str) -> str | None:
        if kind == "service":
            for key in _SERVICE_IDENTIFIERS:
                value = entry.get(key)
                if isinstance(value, str) and "\x00" in value:
                    return f"{key}: {NUL_PROBLEM}"
            return None
        try:
            # Exactly what an upload of this component would be refused for.
            _json_component(entry, "0", "entry")
        except InvalidArgument as refused:
            return f"{refused.field.removeprefix('entry/')}: {refused.problem}"
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            return None  # a shape the schema check refuses, naming it
        return None

    def _invalid(self, entry: dict[str, Any], kind: str, repaired: _Repaired) -> str | None:
        """The first replaced text the schema refuses once replaced (a URL), or None."""
        alone = {key: value for key, value in entry.items() if key != _CHILDREN[kind]}
        document = {"bomFormat": "CycloneDX", "specVersion": self.version, _CHILDREN[kind]: [alone]}
        for error in cyclonedx_validator(self.version).iter_errors(document):
            at = tuple(str(part) for part in error.instance_path)[2:]
            for parts in repaired.texts:
                if at and parts[: len(at)] == at:
                    return _pointer(parts)
        return None

    # --- dependencies ----------------------------------------------------------------------------

    def dependencies(self, data: dict[str, Any]) -> None:
        """The dependency entries without skipped components and without refs holding a NUL."""
        entries = data["dependencies"]
        if not isinstance(entries, list):
            data["dependencies"] = self.safe(entries)
            return
        kept: list[Any] = []
        for index, entry in enumerate(entries):
            here = ("dependencies", str(index))
            if not isinstance(entry, dict):
                entries[index] = self.safe(entry)
                kept.append(entries[index])
            elif self._dependency_kept(entry, here):
                kept.append(entry)
            else:
                self.leave_out(here)
                self.repair(entry)
        self.pending.append((data, "dependencies", kept))

    def _dependency_kept(self, entry: dict[str, Any], here: tuple[str, ...]) -> bool:
        ref = entry.get("ref")
        label = f"dependency entry {shown(ref)}"
        bad_key = next((key for key in entry if _UNSTORABLE.search(key)), None)
        if bad_key is not None:
            self.skip(here, label, f"a key holding a NUL or a lone surrogate ({shown(bad_key)})")
            return False
        if isinstance(ref, str):
            if self._gone(ref):
                return False  # its component was skipped, and said so
            if "\x00" in ref and _fixed(ref) != self.root_ref:
                self.skip(here, label, f"ref: {NUL_PROBLEM}")
                return False
            entry["ref"] = _fixed(ref)
        targets = ("dependsOn", "provides")
        for key in targets:
            if isinstance(entry.get(key), list):
                self._targets(entry, key, (*here, key), label)
        repaired = self.repair(entry, skip=frozenset(targets))
        if repaired.texts or repaired.keys:
            self.warnings.append(
                SbomWarning(
                    _pointer(here),
                    f"{self.tool} {label}: {repaired.what()} replaced with U+FFFD in {repaired.listed()}",
                )
            )
        return True

    def _gone(self, ref: str) -> bool:
        fixed = _fixed(ref)
        return fixed in self.dropped_refs and fixed not in self.kept_refs

    def _targets(self, entry: dict[str, Any], key: str, parts: tuple[str, ...], label: str) -> None:
        targets = entry[key]
        kept: list[Any] = []
        for index, target in enumerate(targets):
            here = (*parts, str(index))
            if not isinstance(target, str):
                targets[index] = self.safe(target)
                kept.append(targets[index])
                continue
            # Made safe in place either way: the schema check reads the list before it is replaced.
            targets[index] = _fixed(target)
            if self._gone(target):
                self.leave_out(here)
            elif "\x00" in target and _fixed(target) != self.root_ref:
                self.skip(here, f"target {shown(target)} of the {label}", NUL_PROBLEM)
                self.leave_out(here)
            else:
                kept.append(targets[index])
        self.pending.append((entry, key, kept))

    # --- the rest of the document ----------------------------------------------------------------

    def tools(self, metadata: dict[str, Any]) -> None:
        """Skip the tool entries whose name or version the upload parser refuses."""
        tools = metadata.get("tools")
        lists: list[tuple[dict[str, Any], str, tuple[str, ...]]] = []
        if isinstance(tools, list):
            lists.append((metadata, "tools", ("metadata", "tools")))
        elif isinstance(tools, dict):
            lists.extend(
                (tools, key, ("metadata", "tools", key))
                for key in ("components", "services")
                if isinstance(tools.get(key), list)
            )
        for container, key, parts in lists:
            kept: list[Any] = []
            for index, tool in enumerate(container[key]):
                if not isinstance(tool, dict) or self._tool_kept(tool, (*parts, str(index))):
                    kept.append(tool)
            self.pending.append((container, key, kept))

    def _tool_kept(self, tool: dict[str, Any], parts: tuple[str, ...]) -> bool:
        for key in ("name", "version"):
            try:
                identifier(tool.get(key, ""), key)
            except InvalidArgument as refused:
                self.skip(parts, f"tool entry {shown(tool.get('name'))}", str(refused))
                self.leave_out(parts)
                self.repair(tool)
                return False
        return True

    def rest(self, node: dict[str, Any], where: str, skip: frozenset[str]) -> None:
        """Replace NUL and lone surrogates in ``node`` (but ``skip``) with U+FFFD, with a warning."""
        repaired = self.repair(node, skip=skip)
        if repaired.texts or repaired.keys:
            self.warnings.append(
                SbomWarning(
                    where,
                    f"{self.tool} document: {repaired.what()} replaced with U+FFFD in {repaired.listed()}",
                )
            )


class Cleaning:
    """What :func:`drop_unstorable` found: the warnings, the entries skipped, and the removal.

    The document keeps the skipped entries (their text made safe to check) until
    :meth:`apply`, so that a schema check in between names the tool's own positions; it
    disregards the skipped entries with :meth:`disregards`.
    """

    def __init__(self, cleaner: _Cleaner) -> None:
        self._cleaner = cleaner
        self.warnings = tuple(cleaner.warnings)
        self.skipped = cleaner.skipped

    def disregards(self, instance_path: Sequence[object]) -> bool:
        """Whether a schema error at ``instance_path`` lies in an entry left out (nested entries,
        which take its place, excepted)."""
        at = tuple(str(part) for part in instance_path)
        for parts, children_key in self._cleaner.dropped:
            if at[: len(parts)] == parts and not (
                children_key and at[len(parts) : len(parts) + 1] == (children_key,)
            ):
                return True
        return False

    def apply(self) -> None:
        """Take the skipped entries out of the document."""
        for container, key, kept in self._cleaner.pending:
            container[key] = kept


def drop_unstorable(data: dict[str, Any], *, tool: str, version: str, raw: bytes) -> Cleaning:
    """Find in a tool's CycloneDX (``version``, parsed JSON from ``raw``) what gate cannot store.

    Text is made storable in place at once; the entries to skip go on :meth:`Cleaning.apply`.
    ``metadata.component`` only has its NULs and surrogates replaced, silently: gate replaces it
    with the artifact it names.
    """
    # JSON carries a NUL or a lone surrogate only as an escape: without one, only control
    # characters in identifiers are looked for.
    cleaner = _Cleaner(tool, version, text=_TEXT_ESCAPE.search(raw) is not None)
    # Before the top level's own keys are renamed: the sections below are found by their names.
    if "components" in data:
        cleaner.entries(data, "components", ("components",), "component", 0)
    if "services" in data:
        cleaner.entries(data, "services", ("services",), "service", 0)
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        if "component" in metadata:
            metadata["component"] = cleaner.safe(metadata["component"])
            root = metadata["component"]
            if isinstance(root, dict) and isinstance(root.get("bom-ref"), str):
                cleaner.root_ref = root["bom-ref"]
        cleaner.tools(metadata)
        cleaner.rest(metadata, "metadata", frozenset({"component"}))
    elif metadata is not None:
        data["metadata"] = cleaner.safe(metadata)
    if "dependencies" in data:
        cleaner.dependencies(data)
    cleaner.rest(data, "document", _SECTIONS)
    return Cleaning(cleaner)
