"""Applying a project's credential objects to a cluster, idempotently."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gate._kube import answer_object
from gate.credentials._manifests import (
    OWNED_FIELDS,
    CredentialMaterial,
    ProjectRef,
    access_manifests,
    secret_manifests,
)
from gate.errors import Conflict, InfrastructureError, NotFound

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger("gate.credentials")

# Updates that lose a resourceVersion race are retried from a fresh read this many times.
UPDATE_ATTEMPTS = 5
# Largest object read back from the API server.
MAX_OBJECT_BYTES = 1024 * 1024


class AlreadyExists(Exception):
    """A create found the object already there (HTTP 409, reason AlreadyExists)."""


class StaleVersion(Exception):
    """An update carried an old resourceVersion (HTTP 409, reason Conflict)."""


class ClusterObjects(Protocol):
    """The few API server operations credentials need, on plain JSON objects."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""

    def create(self, manifest: dict[str, Any]) -> None:
        """Create; raise :class:`AlreadyExists` if it exists."""

    def replace(self, manifest: dict[str, Any]) -> None:
        """Replace (``metadata.resourceVersion`` set); raise :class:`StaleVersion` on a lost race."""

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete; False when it did not exist."""


@dataclass(frozen=True, slots=True)
class Change:
    """What happened to one object."""

    kind: str
    name: str
    namespace: str
    action: str  # created, updated, unchanged, deleted, absent


@dataclass(frozen=True, slots=True)
class CredentialsResult:
    """The changes, in order, and the ServiceAccount pipeline runs use."""

    changes: tuple[Change, ...]
    service_account: str


class ProjectCredentials:
    """Creates, rotates and deletes a project's credential objects through :class:`ClusterObjects`.

    The cluster connection is made on first use (``objects`` is a factory), so a
    gate that never manages credentials needs no cluster.
    """

    def __init__(self, objects: Callable[[], ClusterObjects]) -> None:
        self._factory = objects
        self._objects: ClusterObjects | None = None

    def _cluster(self) -> ClusterObjects:
        if self._objects is None:
            self._objects = self._factory()
        return self._objects

    def apply(self, ref: ProjectRef, material: CredentialMaterial) -> CredentialsResult:
        """Create or update the five objects so that they match ``material``."""
        manifests = [*secret_manifests(ref, material), *access_manifests(ref)]
        return self._apply(ref, manifests, "apply")

    def rotate(self, ref: ProjectRef, material: CredentialMaterial) -> CredentialsResult:
        """Replace the Secrets of a project that has them.

        Raises:
            NotFound: the project has no credential Secrets in the namespace.
        """
        cluster = self._cluster()
        for name in (ref.git_secret, ref.registry_secret):
            if cluster.get("Secret", ref.namespace, name) is None:
                raise NotFound("Secret", f"{ref.namespace}/{name}")
        return self._apply(ref, [*secret_manifests(ref, material), *access_manifests(ref)], "rotate")

    def delete(self, ref: ProjectRef) -> CredentialsResult:
        """Delete the objects (the RoleBinding first, the Secrets last)."""
        cluster = self._cluster()
        changes = []
        for kind, name in reversed(ref.object_keys()):
            action = "deleted" if cluster.delete(kind, ref.namespace, name) else "absent"
            changes.append(Change(kind, name, ref.namespace, action))
        log.info(
            "project credentials deleted",
            extra={"project": ref.project, "namespace": ref.namespace, "changes": _summary(changes)},
        )
        return CredentialsResult(tuple(changes), ref.service_account)

    def _apply(self, ref: ProjectRef, manifests: list[dict[str, Any]], what: str) -> CredentialsResult:
        changes = tuple(self._apply_one(manifest) for manifest in manifests)
        # Names and actions only: the manifests hold the secrets.
        log.info(
            f"project credentials {what}",
            extra={"project": ref.project, "namespace": ref.namespace, "changes": _summary(changes)},
        )
        return CredentialsResult(changes, ref.service_account)

    def _apply_one(self, manifest: dict[str, Any]) -> Change:
        cluster = self._cluster()
        kind = manifest["kind"]
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        for _ in range(UPDATE_ATTEMPTS):
            current = cluster.get(kind, namespace, name)
            if current is None:
                try:
                    cluster.create(manifest)
                except AlreadyExists:
                    continue  # created by someone else meanwhile: compare with theirs
                return Change(kind, name, namespace, "created")
            if kind == "Secret" and current.get("type") != manifest["type"]:
                # A Secret's type is immutable: replacing would fail; say what to do instead.
                raise Conflict(
                    f"Secret {namespace}/{name} exists with type {current.get('type')!r}, "
                    f"expected {manifest['type']!r}; delete it first"
                )
            if kind == "RoleBinding" and current.get("roleRef") != manifest["roleRef"]:
                raise Conflict(f"RoleBinding {namespace}/{name} binds another role (roleRef is immutable)")
            if _owned_equal(kind, current, manifest):
                return Change(kind, name, namespace, "unchanged")
            try:
                cluster.replace(_merged(current, manifest))
            except StaleVersion:
                continue
            return Change(kind, name, namespace, "updated")
        raise InfrastructureError(
            f"kubernetes: {kind} {namespace}/{name} kept changing under gate ({UPDATE_ATTEMPTS} attempts)"
        )


def _owned_equal(kind: str, current: dict[str, Any], desired: dict[str, Any]) -> bool:
    if any(current.get(key) != desired.get(key) for key in OWNED_FIELDS[kind]):
        return False
    meta, wanted = current.get("metadata") or {}, desired["metadata"]
    return all(
        (meta.get(part) or {}).get(key) == value
        for part in ("labels", "annotations")
        for key, value in (wanted.get(part) or {}).items()
    )


def _merged(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """``current`` with gate's fields and labels from ``desired`` (other fields kept)."""
    merged = dict(current)
    for key in OWNED_FIELDS[desired["kind"]]:
        if key in desired:
            merged[key] = desired[key]
        else:
            merged.pop(key, None)
    meta = dict(current.get("metadata") or {})
    for part in ("labels", "annotations"):
        if desired["metadata"].get(part):
            meta[part] = {**(meta.get(part) or {}), **desired["metadata"][part]}
    merged["metadata"] = meta
    merged["apiVersion"], merged["kind"] = desired["apiVersion"], desired["kind"]
    return merged


def _summary(changes: tuple[Change, ...] | list[Change]) -> list[str]:
    return [f"{c.kind}/{c.name}: {c.action}" for c in changes]


class KubernetesObjects:
    """:class:`ClusterObjects` through the ``kubernetes`` client (CoreV1 and RbacAuthorizationV1)."""

    def __init__(self, client: ApiClient, *, timeout: float = 10.0) -> None:
        from kubernetes.client import CoreV1Api, RbacAuthorizationV1Api

        core, rbac = CoreV1Api(client), RbacAuthorizationV1Api(client)
        self._timeout = timeout
        # kind -> (read, create, replace, delete, model class name)
        self._ops: dict[str, tuple[Any, Any, Any, Any, str]] = {
            "Secret": (
                core.read_namespaced_secret,
                core.create_namespaced_secret,
                core.replace_namespaced_secret,
                core.delete_namespaced_secret,
                "V1Secret",
            ),
            "ServiceAccount": (
                core.read_namespaced_service_account,
                core.create_namespaced_service_account,
                core.replace_namespaced_service_account,
                core.delete_namespaced_service_account,
                "V1ServiceAccount",
            ),
            "Role": (
                rbac.read_namespaced_role,
                rbac.create_namespaced_role,
                rbac.replace_namespaced_role,
                rbac.delete_namespaced_role,
                "V1Role",
            ),
            "RoleBinding": (
                rbac.read_namespaced_role_binding,
                rbac.create_namespaced_role_binding,
                rbac.replace_namespaced_role_binding,
                rbac.delete_namespaced_role_binding,
                "V1RoleBinding",
            ),
        }

    def _model(self, manifest: dict[str, Any]) -> Any:
        import kubernetes.client

        return getattr(kubernetes.client, self._ops[manifest["kind"]][4]).from_dict(manifest)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Read one object as JSON (the raw answer: the client's models drop unknown fields)."""
        read = self._ops[kind][0]
        try:
            response = self._call(kind, namespace, name, read, name, namespace, _preload_content=False)
        except _Missing:
            return None
        try:
            return answer_object(response.read(MAX_OBJECT_BYTES + 1), MAX_OBJECT_BYTES)
        except ValueError as exc:
            raise InfrastructureError(
                f"kubernetes: reading {kind} {namespace}/{name}: the answer is {exc}"
            ) from None

    def create(self, manifest: dict[str, Any]) -> None:
        """POST the object."""
        meta = manifest["metadata"]
        create = self._ops[manifest["kind"]][1]
        self._call(
            manifest["kind"],
            meta["namespace"],
            meta["name"],
            create,
            meta["namespace"],
            self._model(manifest),
        )

    def replace(self, manifest: dict[str, Any]) -> None:
        """PUT the object."""
        meta = manifest["metadata"]
        replace = self._ops[manifest["kind"]][2]
        self._call(
            manifest["kind"],
            meta["namespace"],
            meta["name"],
            replace,
            meta["name"],
            meta["namespace"],
            self._model(manifest),
        )

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """DELETE the object."""
        try:
            self._call(kind, namespace, name, self._ops[kind][3], name, namespace)
        except _Missing:
            return False
        return True

    def _call(self, kind: str, namespace: str, name: str, operation: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return operation(*args, _request_timeout=self._timeout, **kwargs)
        except ApiException as exc:
            status = _status_of(exc)
            reason = status.get("reason", "")
            message = str(status.get("message") or exc.reason or "")[:300]
            if exc.status == 404:
                raise _Missing from None
            if exc.status == 409 and reason == "AlreadyExists":
                raise AlreadyExists from None
            if exc.status == 409:
                raise StaleVersion from None
            raise InfrastructureError(
                f"kubernetes: {kind} {namespace}/{name}: the API server answered {exc.status} "
                f"{reason or exc.reason}: {message}"
            ) from None
        except (HTTPError, OSError) as exc:
            raise InfrastructureError(f"kubernetes: cannot reach the API server: {exc}") from None


class _Missing(Exception):
    pass


def _status_of(exc: Any) -> dict[str, Any]:
    """The ``Status`` object of an error answer (empty when it has none)."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body) if body else {}
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}
