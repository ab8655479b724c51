"""Loading kyverno.io policies: schema check, JMESPath compilation, autogen."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.model import EnforcementAction
from policies import _autogen, _cel_policy, _operators, _pattern, _schema, _verify_images
from policies._errors import PolicyLoadError
from policies._functions import RegexError, compile_go_regex
from policies._jmes import CompileError, compile_expression, has_variables, variables_in
from policies._match import Selection
from policies._model import ActionOverride, Policy, Rule
from policies._yaml import Document, FieldPath, documents_of, read_bounded, shown_path

_API_VERSIONS = ("kyverno.io/v1", "kyverno.io/v2beta1", "kyverno.io/v2")
_KINDS = ("ClusterPolicy", "Policy")
_VALIDATE_TYPES = ("pattern", "anyPattern", "deny", "foreach", "podSecurity", "cel", "manifests", "assert")
_UNSUPPORTED_VALIDATE = {
    "manifests": "validate.manifests is not supported by this engine yet",
    "assert": "validate.assert is not supported by this engine yet",
}
_UNSUPPORTED_RULES = {
    "mutate": "mutate rules are not supported by this engine yet",
    "generate": "generate rules are not supported by this engine yet",
}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_PSS_LEVELS = ("privileged", "baseline", "restricted")


def policy_files(paths: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """Files to read, each flagged True when named explicitly (not found in a directory)."""
    files: list[tuple[Path, bool]] = []
    for entry in paths:
        path = Path(entry)
        try:
            files.extend(_files_of(path))
        except OSError as exc:
            # A name too long, a permission refused: a caller's path, never a crash.
            raise PolicyLoadError(shown_path(path), None, "", f"cannot read: {exc.strerror or exc}") from None
    return files


# Entries a directory walk looks at, at most: a policy directory holds tens of files; this
# bounds a mistaken source such as ``/`` (the walk took minutes and all the memory) to an error.
MAX_DIRECTORY_ENTRIES = 100_000


def _files_of(path: Path) -> list[tuple[Path, bool]]:
    if path.is_dir():
        # Hidden entries are skipped: a kubelet ConfigMap mount holds every file twice (the
        # visible symlink and its target under ``..<timestamp>/``), and ``.kyverno-test/``
        # folders hold test resources, not policies.
        return [(p, False) for p in walk_files(path, _is_yaml_name, skip_hidden=True)]
    if path.exists():
        return [(path, True)]
    raise PolicyLoadError(shown_path(path), None, "", "no such file or directory")


def _is_yaml_name(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


def walk_files(root: Path, wanted: Callable[[str], bool], *, skip_hidden: bool) -> list[Path]:
    """The files under ``root`` whose names are ``wanted``, sorted.

    Symlinks to files are followed, symlinks to directories are not (as ``Path.rglob``); a
    dangling or looping symlink is no file. A directory that cannot be listed is an error
    rather than skipped (its policies would silently be missing), and so is a tree of more
    than :data:`MAX_DIRECTORY_ENTRIES` entries.

    Raises:
        PolicyLoadError: a directory cannot be listed, or the tree is too large.
        OSError: as raised by ``os.scandir`` on ``root`` itself.
    """
    found: list[Path] = []
    pending = [root]
    seen = 0
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except OSError as exc:
            raise PolicyLoadError(
                shown_path(directory), None, "", f"cannot list the directory: {exc.strerror or exc}"
            ) from None
        seen += len(listed)
        if seen > MAX_DIRECTORY_ENTRIES:
            raise PolicyLoadError(
                shown_path(root),
                None,
                "",
                f"more than {MAX_DIRECTORY_ENTRIES} entries below it; expected a directory of policy files",
            )
        for entry in listed:
            if skip_hidden and entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = not is_dir and wanted(entry.name) and entry.is_file()
            except OSError:
                continue  # gone meanwhile, or a symlink loop: no file
            if is_dir:
                pending.append(Path(entry.path))
            elif is_file:
                found.append(Path(entry.path))
    return sorted(found)


def is_policy(data: Any) -> bool:
    """Whether a document is a kyverno.io ClusterPolicy or Policy, or a CEL policy document
    (ValidatingPolicy, ValidatingAdmissionPolicy or its binding)."""
    return (
        isinstance(data, dict)
        and str(data.get("apiVersion", "")).startswith("kyverno.io/")
        and data.get("kind") in _KINDS
    ) or _cel_policy.is_cel_document(data)


def is_exception(data: Any) -> bool:
    """Whether a document is a kyverno.io PolicyException (of any served version)."""
    return (
        isinstance(data, dict)
        and data.get("kind") == "PolicyException"
        and str(data.get("apiVersion", "")).startswith("kyverno.io/")
    )


@dataclass(frozen=True)
class SourcesSnapshot:
    """The bytes of every policy file of some sources, as one load read them.

    A worker process compiles the snapshot the main process compiled (see :func:`pinned`), so
    that both end on the same bundle even when the files change, or break, in between.
    """

    sources: tuple[str, ...]
    # (path, named explicitly rather than found in a directory, content) of each file read.
    files: tuple[tuple[str, bool, bytes], ...]


# Bytes of all the files of one load at most: every one is held (and handed to each worker
# process) while it compiles; policy sets hold kilobytes to a few megabytes.
MAX_SOURCES_BYTES = 64 * 1024 * 1024

# What the last recorded load_documents of this context read (see last_read).
_LAST_READ: ContextVar[SourcesSnapshot | None] = ContextVar("policies_last_read", default=None)
# A snapshot the next load of its sources compiles instead of reading them (see pinned). A list,
# shared by copies of the context (a task, asyncio.to_thread), so that it is used once only.
_PINNED: ContextVar[list[SourcesSnapshot] | None] = ContextVar("policies_pinned", default=None)


def read_snapshot(paths: Iterable[str | Path]) -> SourcesSnapshot:
    """Read every policy file of ``paths`` now.

    Raises:
        PolicyLoadError: a source or one of its files cannot be read.
    """
    sources = tuple(str(p) for p in paths)
    files: list[tuple[str, bool, bytes]] = []
    total = 0
    for path, explicit in policy_files(sources):
        content = read_bounded(path)
        total += len(content)
        if total > MAX_SOURCES_BYTES:
            raise PolicyLoadError(
                shown_path(path),
                None,
                "",
                f"the policy files read so far hold more than {MAX_SOURCES_BYTES} bytes in all "
                "(expected a set of policies, not a data volume)",
            )
        files.append((str(path), explicit, content))
    return SourcesSnapshot(sources, tuple(files))


def last_read() -> SourcesSnapshot | None:
    """What the last :func:`load_documents` in this context read (None: none, or not recorded)."""
    return _LAST_READ.get()


@contextlib.contextmanager
def pinned(snapshot: SourcesSnapshot | None) -> Iterator[None]:
    """Have the next load of ``snapshot.sources`` in this context compile it instead of the files.

    Only the first such load uses it; None pins nothing.
    """
    if snapshot is None:
        yield
        return
    token = _PINNED.set([snapshot])
    try:
        yield
    finally:
        _PINNED.reset(token)


def _snapshot_for(sources: tuple[str, ...]) -> SourcesSnapshot:
    holder = _PINNED.get()
    if holder and holder[0].sources == sources:
        return holder.pop()
    return read_snapshot(sources)


def load_documents(paths: Iterable[str | Path], *, record: bool = True) -> list[Document]:
    """The policy (and PolicyException) documents of files and directories.

    With ``record`` what was read is kept for :func:`last_read` (a reload hands it to the worker
    processes); a pinned snapshot of the same sources is compiled instead of the files.
    """
    snapshot = _snapshot_for(tuple(str(p) for p in paths))
    if record:
        _LAST_READ.set(snapshot)
    documents: list[Document] = []
    for name, explicit, content in snapshot.files:
        for document in documents_of(content, name):
            if is_policy(document.data) or is_exception(document.data):
                documents.append(document)
            elif explicit:
                data = document.data
                kind = data.get("kind") if isinstance(data, dict) else None
                version = data.get("apiVersion") if isinstance(data, dict) else None
                raise document.error(
                    (),
                    f"not a Kyverno policy (got apiVersion {version!r}, kind {kind!r}; expected "
                    "kyverno.io/v1 ClusterPolicy or Policy, kyverno.io/v2 PolicyException, "
                    "policies.kyverno.io ValidatingPolicy, or "
                    "admissionregistration.k8s.io ValidatingAdmissionPolicy or binding)",
                )
    return documents


def _action(document: Document, path: FieldPath, value: Any) -> EnforcementAction:
    text = str(value)
    if text.lower() == "enforce":
        return EnforcementAction.ENFORCE
    if text.lower() == "audit":
        return EnforcementAction.AUDIT
    raise document.error(path, f"expected Enforce or Audit, got {text!r}")


def _overrides(document: Document, path: FieldPath, raw: Any) -> tuple[ActionOverride, ...]:
    return tuple(
        ActionOverride(
            _action(document, (*path, i, "action"), o.get("action")), tuple(o.get("namespaces") or ())
        )
        for i, o in enumerate(raw or ())
    )


def _check_expressions(document: Document, value: Any, path: FieldPath) -> None:
    """Compile every ``{{ }}`` expression inside ``value`` (a load error names the field)."""
    if isinstance(value, str):
        if "{{" in value:
            for expression in variables_in(value):
                _compile(document, expression, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_expressions(document, key, (*path, key))
            _check_expressions(document, item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_expressions(document, item, (*path, index))


_REGEX_FUNCTIONS = ("regex_match", "regex_replace_all", "regex_replace_all_literal")


def _compile(document: Document, expression: str, path: FieldPath) -> None:
    if expression.startswith("@") and expression[1:2] in ("", "."):
        return
    try:
        parsed = compile_expression(expression)
    except CompileError as exc:
        raise document.error(path, str(exc)) from None
    _check_regexes(document, parsed.parsed, expression, path)


def _check_regexes(document: Document, node: Any, expression: str, path: FieldPath) -> None:
    """Literal patterns passed to the regex functions must compile (checked once, at load)."""
    if not isinstance(node, dict):
        return
    children = node.get("children") or []
    if node.get("type") == "function_expression" and node.get("value") in _REGEX_FUNCTIONS and children:
        first = children[0]
        if isinstance(first, dict) and first.get("type") == "literal" and isinstance(first.get("value"), str):
            # RE2, as at evaluation: Python's ``re`` refuses valid Go syntax such as ``\p{L}``
            # and raises OverflowError or RecursionError on hostile patterns.
            try:
                compile_go_regex(first["value"])
            except RegexError as exc:
                raise document.error(
                    path, f"invalid regular expression {first['value']!r} in {expression!r}: {exc}"
                ) from None
    for child in children:
        _check_regexes(document, child, expression, path)


def _check_conditions(document: Document, raw: Any, path: FieldPath) -> None:
    if raw is None:
        return
    blocks: list[tuple[FieldPath, Any]] = []
    if isinstance(raw, list):
        blocks.append((path, raw))
    else:
        blocks.extend(((*path, key), raw.get(key) or ()) for key in ("any", "all"))
    for block_path, conditions in blocks:
        for index, condition in enumerate(conditions):
            operator = condition.get("operator")
            if operator is None:
                raise document.error((*block_path, index), "missing field operator")
            if not _operators.is_known(str(operator)):
                known = ", ".join(
                    sorted({name for name in _operators.OPERATORS if not name.endswith("equal")})
                )
                raise document.error(
                    (*block_path, index, "operator"),
                    f"unknown operator {operator!r} (expected one of: {known})",
                )


def _check_foreach(document: Document, entries: Any, path: FieldPath) -> None:
    for index, entry in enumerate(entries or ()):
        here = (*path, index)
        if "list" not in entry:
            raise document.error(here, "missing field list")
        _compile(document, str(entry["list"]), (*here, "list"))
        _check_conditions(document, entry.get("preconditions"), (*here, "preconditions"))
        if "deny" in entry:
            _check_conditions(
                document, (entry["deny"] or {}).get("conditions"), (*here, "deny", "conditions")
            )
        kinds = [k for k in ("pattern", "anyPattern", "deny", "foreach") if k in entry]
        if len(kinds) != 1:
            raise document.error(
                here, f"expected exactly one of pattern, anyPattern, deny, foreach; got {kinds}"
            )
        if "foreach" in entry:
            _check_foreach(document, entry["foreach"], (*here, "foreach"))
        _check_context(document, entry.get("context"), (*here, "context"))


def _check_context(document: Document, entries: Any, path: FieldPath) -> None:
    for index, entry in enumerate(entries or ()):
        here = (*path, index)
        if not entry.get("name"):
            raise document.error(here, "missing field name")
        kinds = [
            k for k in ("variable", "configMap", "apiCall", "imageRegistry", "globalReference") if k in entry
        ]
        if len(kinds) != 1:
            raise document.error(here, f"expected exactly one context type, got {kinds or 'none'}")
        variable = entry.get("variable")
        if isinstance(variable, dict) and variable.get("jmesPath"):
            _compile(document, str(variable["jmesPath"]), (*here, "variable", "jmesPath"))


def _rule(document: Document, raw: dict[str, Any], path: FieldPath) -> Rule:  # noqa: PLR0912  # one check per field
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise document.error((*path, "name"), "missing rule name")
    if "match" not in raw:
        raise document.error(path, "missing field match")
    match = Selection.parse(raw["match"])
    for filt_index, filt in enumerate(match.filters):
        if not filt.kinds and not filt.needs_user and not filt.names and not filt.namespaces:
            raise document.error(
                (*path, "match"), f"filter {filt_index} selects nothing (set resources.kinds)"
            )
    _check_context(document, raw.get("context"), (*path, "context"))
    _check_conditions(document, raw.get("preconditions"), (*path, "preconditions"))
    validate = raw.get("validate") or {}
    verify_images: tuple[_verify_images.ImageRule, ...] = ()
    cel: _cel_policy.CelBody | None = None
    unsupported = ""
    for key, reason in _UNSUPPORTED_RULES.items():
        if raw.get(key):
            unsupported = reason
    action: EnforcementAction | None = None
    overrides: tuple[ActionOverride, ...] = ()
    if "validate" in raw:
        kinds = [k for k in _VALIDATE_TYPES if k in validate]
        if len(kinds) != 1:
            raise document.error(
                (*path, "validate"),
                f"expected exactly one of {', '.join(_VALIDATE_TYPES)}; got {', '.join(kinds) or 'none'}",
            )
        if kinds[0] in _UNSUPPORTED_VALIDATE:
            unsupported = _UNSUPPORTED_VALIDATE[kinds[0]]
        if kinds[0] == "cel" and not unsupported:
            _cel_policy.check_rule_shape(document, raw, path)
            unsupported = _cel_policy.unsupported_reason(raw)
        if kinds[0] == "cel" and not unsupported:
            policy_name = str((document.data.get("metadata") or {}).get("name", ""))
            cel = _cel_policy.compile_rule(document, policy_name, raw, path)
        if "anyPattern" in validate and not validate["anyPattern"]:
            raise document.error((*path, "validate", "anyPattern"), "anyPattern needs at least one pattern")
        if "deny" in validate:
            _check_conditions(
                document,
                (validate["deny"] or {}).get("conditions"),
                (*path, "validate", "deny", "conditions"),
            )
        _check_foreach(document, validate.get("foreach"), (*path, "validate", "foreach"))
        pod_security = validate.get("podSecurity")
        if pod_security is not None and str(pod_security.get("level", "")) not in _PSS_LEVELS:
            raise document.error(
                (*path, "validate", "podSecurity", "level"),
                f"expected one of {', '.join(_PSS_LEVELS)}, got {pod_security.get('level')!r}",
            )
        if "failureAction" in validate:
            action = _action(document, (*path, "validate", "failureAction"), validate["failureAction"])
        overrides = _overrides(
            document, (*path, "validate", "failureActionOverrides"), validate.get("failureActionOverrides")
        )
    elif "verifyImages" in raw and not unsupported:
        verify_images = _verify_images.compile_rules(
            raw["verifyImages"], (*path, "verifyImages"), document.error
        )
    elif not unsupported:
        raise document.error(path, "rule has no validate, mutate, generate or verifyImages block")
    for key in ("context", "preconditions", "validate"):
        if key in raw:
            _check_expressions(document, raw[key], (*path, key))
    _precompile(validate)
    return Rule(
        name=name,
        match=match,
        exclude=Selection.parse(raw.get("exclude")),
        context=tuple(raw.get("context") or ()),
        preconditions=raw.get("preconditions"),
        validate=validate,
        action=action,
        overrides=overrides,
        allow_existing_violations=bool(validate.get("allowExistingViolations", True)),
        unsupported=unsupported,
        verify_images=verify_images,
        cel=cel,
    )


def _precompile(block: Any) -> None:
    """Compile the variable-free patterns of a validate (or foreach) block now, not on first use."""
    if not isinstance(block, dict):
        return
    patterns = [block.get("pattern")] if "pattern" in block else []
    if isinstance(block.get("anyPattern"), list):
        patterns.extend(block["anyPattern"])
    for pattern in patterns:
        if not has_variables(pattern):
            try:
                _pattern.compiled(pattern)
            except RecursionError:
                continue  # reported as an error result when the rule runs
    for entry in block.get("foreach") or ():
        _precompile(entry)


def compile_policies(documents: Iterable[Document]) -> tuple[list[Policy], list[str]]:
    """Compile policy documents; ValidatingAdmissionPolicyBindings attach to their policies."""
    compiled: list[Policy] = []
    diagnostics: list[str] = []
    bindings: dict[str, list[_cel_policy.Binding]] = {}
    for document in documents:
        if document.data.get("kind") == _cel_policy.BINDING_KIND:
            policy_name, binding = _cel_policy.compile_binding(document)
            bindings.setdefault(policy_name, []).append(binding)
            continue
        policy, notes = compile_policy(document)
        compiled.append(policy)
        diagnostics.extend(notes)
    for index, policy in enumerate(compiled):
        if policy.kind == _cel_policy.VAP_KIND and policy.name in bindings:
            bound = _cel_policy.bind(policy.cel, bindings.pop(policy.name))
            compiled[index] = dataclasses.replace(policy, cel=bound, action=bound.enforcement)
    for policy_name in bindings:
        diagnostics.append(f"ValidatingAdmissionPolicyBinding for {policy_name!r}: no such policy is loaded")
    return compiled, diagnostics


def _compile_cel_policy(document: Document) -> Policy:
    data = document.data
    kind = str(data.get("kind"))
    # Compiling checks the document's shape, so metadata and spec are read only after it.
    if kind == _cel_policy.VAP_KIND:
        name, compiled = _cel_policy.compile_admission_policy(document)
        background = True
    else:
        name, compiled, _ = _cel_policy.compile_validating_policy(document)
        evaluation = (data.get("spec") or {}).get("evaluation") or {}
        background = bool((evaluation.get("background") or {}).get("enabled", True))
    metadata = data.get("metadata") or {}
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    namespace = str(metadata.get("namespace") or "default") if kind == "NamespacedValidatingPolicy" else ""
    return Policy(
        name=name,
        namespace=namespace,
        kind=kind,
        api_version=str(data.get("apiVersion")),
        annotations=annotations,
        rules=(),
        action=compiled.enforcement,
        overrides=(),
        failure_policy=compiled.failure_policy,
        apply_one=False,
        background=background,
        source=document.source,
        raw=data,
        cel=compiled,
    )


def compile_policy(document: Document) -> tuple[Policy, list[str]]:
    """A compiled policy and its load-time diagnostics (unsupported rule types)."""
    data = document.data
    if _cel_policy.is_cel_document(data):
        if data.get("kind") == _cel_policy.BINDING_KIND:
            raise document.error(("kind",), "a binding is compiled with its policy (compile_policies)")
        return _compile_cel_policy(document), []
    _schema.check(document, data, _schema.POLICY, ())
    version = str(data.get("apiVersion"))
    if version not in _API_VERSIONS:
        raise document.error(("apiVersion",), f"expected one of {', '.join(_API_VERSIONS)}, got {version!r}")
    metadata = data.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise document.error(("metadata", "name"), f"expected a DNS-1123 name, got {name!r}")
    kind = str(data["kind"])
    namespace = str(metadata.get("namespace", "")) if kind == "Policy" else ""
    if kind == "Policy" and not namespace:
        namespace = "default"
    spec = data.get("spec")
    if not isinstance(spec, dict):
        raise document.error(("spec",), "missing spec")
    raw_rules = spec.get("rules")
    if not raw_rules:
        raise document.error(("spec", "rules"), "a policy needs at least one rule")
    action = _action(
        document, ("spec", "validationFailureAction"), spec.get("validationFailureAction", "Audit")
    )
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    rules: list[Rule] = []
    diagnostics: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        rule = _rule(document, raw, ("spec", "rules", index))
        if rule.name in seen:
            raise document.error(("spec", "rules", index, "name"), f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        if rule.unsupported:
            diagnostics.append(f"{document.source}: policy {name}, rule {rule.name}: {rule.unsupported}")
        rules.append(rule)
    for generated, origin in _autogen.expand(raw_rules, annotations):
        index = next(i for i, r in enumerate(raw_rules) if r.get("name") == origin)
        rule = _rule(document, generated, ("spec", "rules", index))
        rules.append(dataclasses.replace(rule, autogen_of=origin))
    failure_policy = str(
        spec.get("failurePolicy") or (spec.get("webhookConfiguration") or {}).get("failurePolicy") or "Fail"
    )
    policy = Policy(
        name=name,
        namespace=namespace,
        kind=kind,
        api_version=version,
        annotations=annotations,
        rules=tuple(rules),
        action=action,
        overrides=_overrides(
            document,
            ("spec", "validationFailureActionOverrides"),
            spec.get("validationFailureActionOverrides"),
        ),
        failure_policy=failure_policy,
        apply_one=str(spec.get("applyRules", "All")) == "One",
        background=bool(spec.get("background", True)),
        source=document.source,
        raw=data,
    )
    return policy, diagnostics


def digest(policies: Iterable[Policy], exceptions: Sequence[Mapping[str, Any]] = ()) -> str:
    """sha256 over the normalised policies (sorted keys, no status), in name order.

    ``exceptions`` (normalised PolicyExceptions) count when there are any; a bundle
    without them keeps the digest it had before exceptions were supported.
    """
    ordered = sorted(policies, key=lambda p: (p.kind, p.namespace, p.name))
    normal = [
        {
            "apiVersion": p.api_version,
            "kind": p.kind,
            "metadata": {"name": p.name, "namespace": p.namespace, "annotations": dict(p.annotations)},
            "spec": p.raw.get("spec"),
        }
        for p in ordered
    ]
    hashed: Any = {"policies": normal, "exceptions": list(exceptions)} if exceptions else normal
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def policies_by_key(policies: Iterable[Policy]) -> Mapping[str, Policy]:
    """Policies keyed by :attr:`Policy.key` (duplicates are load errors)."""
    found: dict[str, Policy] = {}
    for policy in policies:
        if policy.key in found:
            raise PolicyLoadError(
                policy.source,
                None,
                "metadata.name",
                f"duplicate policy {policy.key!r} (also defined in {found[policy.key].source})",
            )
        found[policy.key] = policy
    return found
