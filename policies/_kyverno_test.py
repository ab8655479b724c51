"""``kyverno test``: run the ``kyverno-test.yaml`` files under a directory and compare results."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import EvidenceError
from gate.model import RuleOutcome
from policies import _cel_libs, _cel_policy, _engine, _exceptions, _loader
from policies._engine import ContextValues
from policies._errors import PolicyLoadError
from policies._match import UserInfo
from policies._model import AdmissionRequest, Policy, RuleResponse
from policies._schema import _type_of
from policies._yaml import Document, FieldPath, read_documents, shown_path

TEST_FILE = "kyverno-test.yaml"
_RESULTS = {o.value for o in RuleOutcome}
# Kinds without a namespace; every other kind defaults to namespace "default" (as the CLI does).
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "APIService",
        "CSIDriver",
        "CSINode",
        "IngressClass",
        "RuntimeClass",
        "PodSecurityPolicy",
        "VolumeAttachment",
        "CertificateSigningRequest",
        "ClusterIssuer",
        "ClusterPolicy",
        "ClusterPolicyReport",
        "ClusterCleanupPolicy",
        "GatewayClass",
        "ClusterSecretStore",
        "ClusterRoleTemplate",
        "Project",
        "ClusterImagePolicy",
    }
)


@dataclass(frozen=True)
class RowResult:
    """One (expected row, resource) comparison."""

    test_file: str
    policy: str
    rule: str
    resource: str
    kind: str
    expected: str
    actual: str
    passed: bool
    reason: str
    no_response: bool = False
    # Index of the expected row (an entry of ``results:``) in its test file.
    row: int = 0

    def agrees(self, *, strict: bool) -> bool:
        """Whether the engine agrees; in strict mode a missing rule response disagrees."""
        return self.passed and not (strict and self.no_response)


@dataclass
class SuiteReport:
    """All comparisons of a run."""

    rows: list[RowResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def passed(self, *, strict: bool) -> int:
        """Number of comparisons that agree (strict: a missing rule response disagrees)."""
        return sum(1 for r in self.rows if r.agrees(strict=strict))

    def failed(self, *, strict: bool) -> int:
        """Number of comparisons that disagree."""
        return len(self.rows) - self.passed(strict=strict)

    def expected_rows(self, *, strict: bool) -> tuple[int, int]:
        """Expected rows (entries of ``results:``) whose every resource agrees, and the others."""
        agreed: dict[tuple[str, int], bool] = {}
        for r in self.rows:
            key = (r.test_file, r.row)
            agreed[key] = agreed.get(key, True) and r.agrees(strict=strict)
        good = sum(agreed.values())
        return good, len(agreed) - good


@dataclass(frozen=True)
class _Resource:
    data: Mapping[str, Any]
    kind: str
    namespace: str
    name: str


def find_tests(root: Path, file_name: str = TEST_FILE) -> list[Path]:
    """Every test file under ``root`` (or ``root`` itself when it is a file)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise PolicyLoadError(str(root), None, "", "no such file or directory")
    # Bounded (``gate policy test /`` is an error, not a walk of the whole disk); hidden
    # directories count, as Kyverno's ``.kyverno-test/`` folders hold the tests.
    return _loader.walk_files(root, lambda name: name == file_name, skip_hidden=False)


def _one_document(path: Path) -> Document:
    documents = read_documents(path)
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise PolicyLoadError(str(path), None, "", "expected one YAML mapping")
    return documents[0]


def _mapping(document: Document, path: FieldPath, value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping; a field left empty (null) is an empty one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise document.error(path, f"expected a mapping, got {_type_of(value)}")
    return value


def _list(document: Document, path: FieldPath, value: Any) -> list[Any]:
    """``value`` when it is a list; a field left empty (null) is an empty one."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise document.error(path, f"expected a list, got {_type_of(value)}")
    return value


def _entries(document: Document, path: FieldPath, value: Any) -> Iterator[tuple[FieldPath, dict[str, Any]]]:
    """The mappings of a list field, each with its own path (a null entry is an error)."""
    for index, item in enumerate(_list(document, path, value)):
        if not isinstance(item, dict):
            raise document.error((*path, index), f"expected a mapping, got {_type_of(item)}")
        yield (*path, index), item


def _strings(document: Document, path: FieldPath, value: Any) -> tuple[str, ...]:
    items = _list(document, path, value)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise document.error((*path, index), f"expected a string, got {_type_of(item)}")
    return tuple(items)


def _text(document: Document, path: FieldPath, value: Any) -> str:
    # Names may be written as YAML numbers (``name: 1``); only containers are wrong.
    if isinstance(value, (dict, list)):
        raise document.error(path, f"expected a string, got {_type_of(value)}")
    return "" if value is None else str(value)


def _file_name(document: Document, data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise document.error((key,), f"expected a file name, got {_type_of(value)}")
    return value


def _string_list(document: Document, data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise document.error((key,), "expected a list of strings")
    return list(value)


# When set (tests uploaded through the TestPolicies RPC), every file a test names must lie
# under this directory: a ``../`` or absolute path must not make the server read its own files.
_CONFINED_TO: ContextVar[Path | None] = ContextVar("kyverno_test_root", default=None)


def _shown(name: str, limit: int = 60) -> str:
    # A hostile name may be megabytes long; the error only needs to identify it.
    return repr(name) if len(name) <= limit else repr(name[:limit]) + f"... ({len(name)} characters)"


def _path(document: Document, where: FieldPath, base: Path, name: str) -> Path:
    """``base / name`` (named at ``where`` in ``document``), refused when it cannot name a file
    or leaves the directory the tests are confined to."""
    if "\0" in name:
        raise document.error(where, f"expected a file path, got {_shown(name)} (it holds a NUL character)")
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        raise document.error(where, f"expected a file path, got {_shown(name)} (not encodable)") from None
    path = base / name
    root = _CONFINED_TO.get()
    try:
        # RuntimeError: pathlib's report of a symlink loop.
        if root is not None and not path.resolve().is_relative_to(root.resolve()):
            raise document.error(where, f"{_shown(name)} refers to a file outside the uploaded test files")
        path.stat()
    except FileNotFoundError:
        pass  # the reader reports a missing file, as for any other file
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise document.error(where, f"cannot read {_shown(name)}: {reason}") from None
    return path


def check_metadata(document: Document, path: FieldPath, resource: Mapping[str, Any]) -> None:
    """A resource's metadata has the shapes Kubernetes gives it (the engine relies on them)."""
    if "metadata" not in resource:
        return
    metadata = resource["metadata"]
    path = (*path, "metadata")
    if not isinstance(metadata, dict):
        raise document.error(path, f"a resource needs a metadata mapping, got {_type_of(metadata)}")
    for key in ("name", "namespace", "generateName"):
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            raise document.error((*path, key), f"expected a string, got {_type_of(metadata[key])}")
    for key in ("labels", "annotations"):
        _mapping(document, (*path, key), metadata.get(key))


def _identity(path: Path) -> object:
    """The file ``path`` leads to (device and inode), or the path when there is none to stat."""
    try:
        info = path.stat()
    except (OSError, ValueError):
        return path  # the reader reports it
    return (info.st_dev, info.st_ino)


def _load_resources(test: Document, field_name: str, base: Path, names: Sequence[str]) -> list[_Resource]:
    found: list[_Resource] = []
    seen: set[tuple[str, str, str, str]] = set()
    read: set[object] = set()
    for number, name in enumerate(names):
        path = _path(test, (field_name, number), base, name)
        identity = _identity(path)
        if identity in read:
            # Its resources are in already (a resource repeated counts once): a file named
            # thousands of times (or by as many spellings) is read once, not parsed for each.
            continue
        read.add(identity)
        for document in read_documents(path):
            data = document.data
            if not isinstance(data, dict):
                raise document.error((), f"a resource must be a mapping, got {_type_of(data)}")
            items = data.get("items") if str(data.get("kind", "")).endswith("List") else None
            listed = isinstance(items, list)
            for index, item in enumerate(items if isinstance(items, list) else [data]):
                where: FieldPath = ("items", index) if listed else ()
                if not isinstance(item, dict):
                    raise document.error(where, f"a resource must be a mapping, got {_type_of(item)}")
                check_metadata(document, where, item)
                resource = normalise_resource(item)
                meta = resource["metadata"]
                key = (
                    str(resource.get("apiVersion", "")),
                    str(resource.get("kind", "")),
                    str(meta.get("namespace") or ""),
                    str(meta.get("name", "")),
                )
                if key in seen:
                    continue
                seen.add(key)
                found.append(_Resource(resource, key[1], key[2], key[3]))
    return found


def normalise_resource(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource as the Kyverno CLI loads it: default namespace, empty labels/annotations maps."""
    data = dict(resource)
    metadata = dict(data.get("metadata") or {})
    if not metadata.get("namespace") and str(data.get("kind", "")) not in CLUSTER_SCOPED:
        metadata["namespace"] = "default"
    metadata["labels"] = metadata.get("labels") or {}
    metadata["annotations"] = metadata.get("annotations") or {}
    data["metadata"] = metadata
    return data


@dataclass
class _Values:
    global_values: dict[str, Any] = field(default_factory=dict)
    rules: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    foreach: dict[tuple[str, str], dict[str, list[Any]]] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)


def _load_values(document: Document, path: FieldPath, data: Any) -> _Values:
    """The ``values:`` of a test (``path`` ``("values",)``) or its ``variables:`` file (``()``)."""
    values = _Values()
    data = _mapping(document, path, data)
    values.global_values = dict(_mapping(document, (*path, "globalValues"), data.get("globalValues")))
    for here, policy in _entries(document, (*path, "policies"), data.get("policies")):
        name = _text(document, (*here, "name"), policy.get("name"))
        for at, rule in _entries(document, (*here, "rules"), policy.get("rules")):
            key = (name, _text(document, (*at, "name"), rule.get("name")))
            values.rules[key] = dict(_mapping(document, (*at, "values"), rule.get("values")))
            foreach = _mapping(document, (*at, "foreachValues"), rule.get("foreachValues"))
            if foreach:
                values.foreach[key] = {
                    k: list(_list(document, (*at, "foreachValues", k), v)) for k, v in foreach.items()
                }
        for at, resource in _entries(document, (*here, "resources"), policy.get("resources")):
            resource_name = _text(document, (*at, "name"), resource.get("name"))
            values.resources[(name, resource_name)] = dict(
                _mapping(document, (*at, "values"), resource.get("values"))
            )
    for here, entry in _entries(document, (*path, "namespaceSelector"), data.get("namespaceSelector")):
        values.namespace_labels[_text(document, (*here, "name"), entry.get("name"))] = dict(
            _mapping(document, (*here, "labels"), entry.get("labels"))
        )
    for here, namespace in _entries(document, (*path, "namespaces"), data.get("namespaces")):
        meta = _mapping(document, (*here, "metadata"), namespace.get("metadata"))
        name = _text(document, (*here, "metadata", "name"), meta.get("name"))
        values.namespace_labels.setdefault(
            name, dict(_mapping(document, (*here, "metadata", "labels"), meta.get("labels")))
        )
        values.namespaces.setdefault(name, dict(namespace))
    return values


def _load_user(path: Path | None) -> UserInfo | None:
    if path is None:
        return None
    document = _one_document(path)
    data = document.data
    info = _mapping(document, ("userInfo",), data.get("userInfo"))
    return UserInfo(
        username=_text(document, ("userInfo", "username"), info.get("username")),
        groups=_strings(document, ("userInfo", "groups"), info.get("groups")),
        roles=_strings(document, ("roles",), data.get("roles")),
        cluster_roles=_strings(document, ("clusterRoles",), data.get("clusterRoles")),
    )


@dataclass(frozen=True)
class _Row:
    policy: str
    rule: str
    resources: tuple[str, ...]
    kind: str
    expected: str
    operation: str


def _rows(document: Document) -> Iterator[_Row]:
    results = document.data.get("results")
    if not isinstance(results, list):
        raise document.error(("results",), "expected a list of results")
    for index, row in enumerate(results):
        if not isinstance(row, dict):
            raise document.error(("results", index), "expected a mapping")
        expected = str(row.get("result", row.get("status", "")))
        if expected not in _RESULTS:
            raise document.error(
                ("results", index, "result"),
                f"expected one of {', '.join(sorted(_RESULTS))}, got {expected!r}",
            )
        resources = row.get("resources")
        if resources is None and row.get("resource") is not None:
            namespace = row.get("namespace")
            resources = [f"{namespace}/{row['resource']}" if namespace else row["resource"]]
        if not isinstance(resources, list) or not resources:
            raise document.error(
                ("results", index, "resources"), "expected a non-empty list of resource names"
            )
        yield _Row(
            policy=str(row.get("policy", "")),
            rule=str(row.get("rule", "")),
            resources=tuple(str(r) for r in resources),
            kind=str(row.get("kind", "")),
            expected=expected,
            operation=str(row.get("operation", "")),
        )


class _TestCase:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.document = _one_document(path)
        data = self.document.data
        base = path.parent
        self.policies: dict[str, Policy] = {}
        policy_paths = [
            _path(self.document, ("policies", index), base, name)
            for index, name in enumerate(_string_list(self.document, data, "policies"))
        ]
        documents = _loader.load_documents(
            # A file named twice is read once (its policies would be the same ones again).
            list(dict.fromkeys(policy_paths)),
            record=False,  # a test's files are not the server's policy sources
        )
        compiled, _ = _loader.compile_policies(d for d in documents if not _loader.is_exception(d.data))
        for policy in compiled:
            self.policies.setdefault(policy.key, policy)
        # ``exceptions:`` files hold PolicyExceptions (a policy file may carry some as well).
        exception_documents = [d for d in documents if _loader.is_exception(d.data)]
        exception_paths: dict[Path, None] = {}
        for index, name in enumerate(_string_list(self.document, data, "exceptions")):
            exception_paths.setdefault(_path(self.document, ("exceptions", index), base, name))
        for exception_path in exception_paths:
            for document in read_documents(exception_path):
                if not _loader.is_exception(document.data):
                    raise document.error(("kind",), "expected a kyverno.io PolicyException")
                exception_documents.append(document)
        self.exceptions = tuple(_exceptions.compile_exceptions(exception_documents))
        self.resources = _load_resources(
            self.document, "resources", base, _string_list(self.document, data, "resources")
        )
        self.values = self._values(base, data)
        user = _file_name(self.document, data, "userinfo")
        self.user = _load_user(_path(self.document, ("userinfo",), base, user) if user else None)
        self.cel = self._cel_inputs(base, data)
        self._cache: dict[tuple[str, int, str], list[RuleResponse]] = {}

    def _values(self, base: Path, data: Mapping[str, Any]) -> _Values:
        """Inline ``values:``, else the ``variables:`` file (read, and checked, either way)."""
        variables = _file_name(self.document, data, "variables")
        values_doc = (
            _one_document(_path(self.document, ("variables",), base, variables)) if variables else None
        )
        if data.get("values") is not None or values_doc is None:
            return _load_values(self.document, ("values",), data.get("values"))
        return _load_values(values_doc, (), values_doc.data)

    def _cel_inputs(self, base: Path, data: Mapping[str, Any]) -> _cel_policy.CelInputs:
        """The CLI's offline channel for CEL policies: the ``context:`` file and paramResources."""
        resources: list[Mapping[str, Any]] = []
        images: dict[str, Mapping[str, Any]] = {}
        context = _file_name(self.document, data, "context")
        if context:
            document = _one_document(_path(self.document, ("context",), base, context))
            spec = _mapping(document, ("spec",), document.data.get("spec"))
            for _, item in _entries(document, ("spec", "resources"), spec.get("resources")):
                resources.append(item)
            for here, item in _entries(document, ("spec", "images"), spec.get("images")):
                if not isinstance(item.get("image"), str):
                    got = _type_of(item.get("image"))
                    raise document.error(
                        (*here, "image"), f"expected an image reference (a string), got {got}"
                    )
                images[item["image"]] = item
        params = [
            r.data
            for r in _load_resources(
                self.document, "paramResources", base, _string_list(self.document, data, "paramResources")
            )
        ]
        return _cel_policy.CelInputs(
            data=_cel_libs.RequestData(images=images, resources=tuple(resources)),
            namespaces=self.values.namespaces,
            params=tuple(params),
            offline_cli=True,
        )

    def responses(self, policy: Policy, index: int, operation: str) -> list[RuleResponse]:
        key = (policy.key, index, operation)
        if key not in self._cache:
            self._cache[key] = self._evaluate(policy, self.resources[index], operation)
        return self._cache[key]

    def _evaluate(self, policy: Policy, resource: _Resource, operation: str) -> list[RuleResponse]:
        merged = dict(self.values.global_values)
        merged.update(self.values.resources.get((policy.name, resource.name)) or {})
        op = operation or str(merged.get("request.operation") or "CREATE")
        if op == "DELETE":
            request = AdmissionRequest(operation=op, old_object=resource.data, user_info=self.user)
        elif op == "UPDATE":
            request = AdmissionRequest(
                operation=op, object=resource.data, old_object=resource.data, user_info=self.user
            )
        else:
            request = AdmissionRequest(operation=op, object=resource.data, user_info=self.user)
        namespace_labels = self.values.namespace_labels.get(resource.namespace)
        if namespace_labels is not None or resource.kind != "Namespace":
            request = AdmissionRequest(
                operation=request.operation,
                object=request.object,
                old_object=request.old_object,
                user_info=request.user_info,
                namespace=resource.namespace,
                namespace_labels=namespace_labels or {},
            )
        merged["request.operation"] = op
        values = ContextValues(
            global_values=merged,
            rule_values={(policy.key, r): v for (p, r), v in self.values.rules.items() if p == policy.name},
            foreach_values={
                (policy.key, r): v for (p, r), v in self.values.foreach.items() if p == policy.name
            },
            cel=self.cel,
            exceptions=self.exceptions,
        )
        state = _engine.prepare(request, values)
        return _engine.evaluate_policy(policy, state)

    def compare(self, display: str) -> Iterator[RowResult]:
        for number, row in enumerate(_rows(self.document)):
            policy = self.policies.get(row.policy)
            for name in row.resources:
                yield self._compare_one(display, row, policy, name, number)

    def _compare_one(
        self, display: str, row: _Row, policy: Policy | None, name: str, number: int
    ) -> RowResult:
        def result(actual: str, passed: bool, reason: str, *, no_response: bool = False) -> RowResult:
            return RowResult(
                display,
                row.policy,
                row.rule,
                name,
                row.kind,
                row.expected,
                actual,
                passed,
                reason,
                no_response,
                number,
            )

        if policy is None:
            return result("", False, f"policy {row.policy!r} is not loaded by this test")
        namespace, _, short = name.rpartition("/")
        candidates = [
            i
            for i, r in enumerate(self.resources)
            if r.name == short and (not namespace or r.namespace == namespace)
        ]
        if not candidates:
            return result("", False, "Not found")
        wanted = {row.rule, f"autogen-{row.rule}", f"autogen-cronjob-{row.rule}"}
        # ValidatingPolicy rows name no rule (the CLI ignores one if given).
        any_rule = not row.rule or policy.kind in _cel_policy.VPOL_KINDS
        actuals: list[str] = []
        for index in candidates:
            for response in self.responses(policy, index, row.operation):
                if any_rule or response.rule in wanted:
                    actuals.append(response.report_outcome.value)
        if not actuals:
            if policy.kind in _cel_policy.VPOL_KINDS and policy.cel.simple_match:
                # The CLI drops the empty response of a policy whose match is one resource rule.
                return result("", False, "Not found")
            return result("", True, "Excluded (no rule response)", no_response=True)
        mismatched = [a for a in actuals if a != row.expected]
        actual = ",".join(sorted(set(actuals)))
        if mismatched:
            return result(actual, False, "Want " + row.expected + ", Got " + actual)
        return result(actual, True, "Ok")


def run_tests(root: Path, file_name: str = TEST_FILE, *, confine: bool = False) -> SuiteReport:
    """Run every test file under ``root``; with ``confine`` the tests may only read files under it."""
    token = _CONFINED_TO.set(root if confine else None)
    try:
        return _run_tests(root, file_name)
    finally:
        _CONFINED_TO.reset(token)


def _run_tests(root: Path, file_name: str) -> SuiteReport:
    report = SuiteReport()
    base = root if root.is_dir() else root.parent
    for path in find_tests(root, file_name):
        display = shown_path(path.relative_to(base) if path.is_relative_to(base) else path)
        try:
            case = _TestCase(path)
            report.rows.extend(case.compare(display))
        except PolicyLoadError as exc:
            report.errors.append(f"{display}: {exc.message}")
        except EvidenceError as exc:
            report.errors.append(f"{display}: {exc.message}")
    return report
