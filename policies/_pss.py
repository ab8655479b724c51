"""Pod Security Standards checks as Kyverno's ``validate.podSecurity`` applies them.

Kyverno runs the upstream ``k8s.io/pod-security-admission`` checks (its fork,
which also reports each offending field as a ``field.Error``) and then removes
the field errors a rule's ``exclude`` entries cover (``pkg/pss/evaluate.go``).
This module ports both halves:

* :func:`check_pod` evaluates every check of a level at a version and returns
  one :class:`PssViolation` per field error, in the order Kyverno reports them
  (checks in ``policy.DefaultChecks()`` order, containers visited as
  initContainers, containers, ephemeralContainers).
* :func:`apply_exclusions` re-evaluates the checks on the pod reduced to what an
  exclusion names (the pod without its containers, or only the containers whose
  image matches) and drops the default field errors those results match, by
  field path and container name, filtered by ``restrictedField`` and ``values``.
* :func:`format_message` renders Kyverno's failure text:
  ``(Forbidden reason: <reason>, field error list: [<errors>])`` per check.

Versions: a pinned ``v1.N`` runs only the checks that exist at 1.N, each at its
newest variant not newer than 1.N; ``latest`` (or empty) is 1.35. Kyverno does
not apply upstream's check overrides, so at restricted level a container adding
``SYS_ADMIN`` fails both "Capabilities" checks, as in Kyverno.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from gate.errors import InvalidArgument
from policies import _wildcard

__all__ = [
    "LATEST_VERSION",
    "PodChecks",
    "PssViolation",
    "apply_exclusions",
    "check_pod",
    "format_message",
]

LATEST_MINOR = 35
LATEST_VERSION = f"v1.{LATEST_MINOR}"
_LEVELS = ("privileged", "baseline", "restricted")
_VERSION = re.compile(r"v1\.(0|[1-9][0-9]{0,3})")


@dataclass(frozen=True)
class _Origin:
    """Where a violation came from, for exclusions and messages (not part of equality)."""

    check_id: str
    reason: str
    error_type: str  # "Forbidden" or "Required"
    field_path: str  # concrete path, e.g. spec.containers[1].securityContext.privileged
    bad_value: Any
    level: str
    version: str
    minor: int


@dataclass(frozen=True)
class PssViolation:
    """One field that breaks a Pod Security Standards control.

    Attributes:
        control: the control as Kyverno names it ("Privileged Containers", "Seccomp", ...).
        images: the image of the offending container; empty for pod-level fields.
        restricted_field: the field path with indexes as ``*``
            (``spec.containers[*].securityContext.privileged``), as ``exclude.restrictedField`` names it.
        values: the offending values as strings (``exclude.values`` is matched against them).
        message: the field error as Kyverno prints it.
    """

    control: str
    images: tuple[str, ...]
    restricted_field: str
    values: tuple[str, ...]
    message: str
    origin: _Origin | None = field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------------- #
# Field errors


@dataclass(frozen=True)
class _FieldError:
    kind: str
    path: str
    bad: Any = ""


def _forbidden(path: str, bad: Any = "") -> _FieldError:
    return _FieldError("Forbidden", path, bad)


def _required(path: str) -> _FieldError:
    return _FieldError("Required", path, "")


def _go_value(value: Any) -> str:
    """``fmt.Sprintf("%+v", v)`` for the bad values the checks report."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    return str(value)


def _render(error: _FieldError) -> str:
    if error.kind == "Required":
        return f"{error.path}: Required value"
    if isinstance(error.bad, str) and error.bad == "":
        return f"{error.path}: Forbidden"
    return f"{error.path} is forbidden, forbidden values found: {_go_value(error.bad)}"


def _bad_values(bad: Any) -> tuple[str, ...]:
    """Kyverno's extractBadValues: strings (non-empty), booleans, ints and string lists."""
    if isinstance(bad, bool):
        return ("true" if bad else "false",)
    if isinstance(bad, str):
        return (bad,) if bad else ()
    if isinstance(bad, int):
        return (str(bad),)
    if isinstance(bad, list | tuple):
        return tuple(str(v) for v in bad)
    return ()


_INDEX = re.compile(r"\d+")
_WORD = re.compile(r"[a-zA-Z]+")


def _star(path: str) -> str:
    return _INDEX.sub("*", path)


# --------------------------------------------------------------------------- #
# Reading the pod (types checked as the Kubernetes decoder would)


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"),
    ((int, float), "number"),
    (str, "string"),
    (Mapping, "object"),
    ((list, tuple), "array"),
)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    for types, name in _TYPE_NAMES:
        if isinstance(value, types):
            return name
    return type(value).__name__


def _map(parent: Mapping[str, Any] | None, key: str, path: str) -> Mapping[str, Any] | None:
    if parent is None:
        return None
    value = parent.get(key)
    if value is None or type(value) is dict or isinstance(value, Mapping):
        return value
    raise InvalidArgument(_where(path, key), f"expected an object, got {_type_name(value)}")


def _list(parent: Mapping[str, Any] | None, key: str, path: str) -> Sequence[Any]:
    if parent is None:
        return ()
    value = parent.get(key)
    if value is None:
        return ()
    if type(value) is list or isinstance(value, tuple):
        return value
    raise InvalidArgument(_where(path, key), f"expected an array, got {_type_name(value)}")


def _bool(parent: Mapping[str, Any] | None, key: str, path: str) -> bool | None:
    if parent is None:
        return None
    value = parent.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidArgument(_where(path, key), f"expected a boolean, got {_type_name(value)}")


def _str(parent: Mapping[str, Any] | None, key: str, path: str) -> str | None:
    if parent is None:
        return None
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidArgument(_where(path, key), f"expected a string, got {_type_name(value)}")


def _int(parent: Mapping[str, Any] | None, key: str, path: str) -> int | None:
    if parent is None:
        return None
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InvalidArgument(_where(path, key), f"expected an integer, got {_type_name(value)} {value!r}")


def _str_list(parent: Mapping[str, Any] | None, key: str, path: str) -> list[str]:
    items = _list(parent, key, path)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidArgument(
                f"{_where(path, key)}[{index}]", f"expected a string, got {_type_name(item)}"
            )
    return list(items)


class _Security:
    """The security settings of the pod or of one container, read and type-checked once."""

    __slots__ = (
        "allow_escalation",
        "apparmor",
        "capabilities",
        "host_process",
        "present",
        "privileged",
        "proc_mount",
        "run_as_non_root",
        "run_as_user",
        "seccomp",
        "selinux",
        "sysctls",
    )

    def __init__(self, context: Mapping[str, Any] | None, path: str, pod_level: bool) -> None:
        self.present = context is not None
        self.privileged: bool | None = None
        self.allow_escalation: bool | None = None
        self.proc_mount: str | None = None
        self.capabilities: tuple[list[str], list[str]] | None = None
        self.sysctls: tuple[str, ...] = ()
        self.run_as_non_root: bool | None = None
        self.run_as_user: int | None = None
        self.seccomp: str | None = None  # None: no seccompProfile; "" when it has no type
        self.apparmor: str | None = None
        self.selinux: tuple[str, str, str] | None = None  # type, user, role
        self.host_process: bool | None = None
        if context is None:
            return
        self.run_as_non_root = _bool(context, "runAsNonRoot", path)
        self.run_as_user = _int(context, "runAsUser", path)
        seccomp = _map(context, "seccompProfile", path)
        if seccomp is not None:
            self.seccomp = _str(seccomp, "type", f"{path}.seccompProfile") or ""
        apparmor = _map(context, "appArmorProfile", path)
        if apparmor is not None:
            self.apparmor = _str(apparmor, "type", f"{path}.appArmorProfile") or ""
        selinux = _map(context, "seLinuxOptions", path)
        if selinux is not None:
            where = f"{path}.seLinuxOptions"
            self.selinux = (
                _str(selinux, "type", where) or "",
                _str(selinux, "user", where) or "",
                _str(selinux, "role", where) or "",
            )
        windows = _map(context, "windowsOptions", path)
        if windows is not None:
            self.host_process = _bool(windows, "hostProcess", f"{path}.windowsOptions")
        if pod_level:
            self.sysctls = tuple(_sysctl_names(context, path))
            return
        self.privileged = _bool(context, "privileged", path)
        self.allow_escalation = _bool(context, "allowPrivilegeEscalation", path)
        self.proc_mount = _str(context, "procMount", path)
        capabilities = _map(context, "capabilities", path)
        if capabilities is not None:
            where = f"{path}.capabilities"
            self.capabilities = (
                _str_list(capabilities, "add", where),
                _str_list(capabilities, "drop", where),
            )


def _sysctl_names(context: Mapping[str, Any], path: str) -> list[str]:
    names = []
    for index, sysctl in enumerate(_list(context, "sysctls", path)):
        where = f"{path}.sysctls[{index}]"
        if not isinstance(sysctl, Mapping):
            raise InvalidArgument(where, f"expected an object, got {_type_name(sysctl)}")
        names.append(_str(sysctl, "name", where) or "")
    return names


_NO_SECURITY = _Security(None, "", pod_level=False)
_HANDLERS = ("livenessProbe", "readinessProbe", "startupProbe")
_HANDLER_KEYS = (*_HANDLERS, "lifecycle")


@dataclass(frozen=True, slots=True)
class _Container:
    path: str
    kind: str
    index: int
    name: str
    image: str
    security: _Security
    host_ports: tuple[tuple[str, int], ...]
    probe_hosts: tuple[tuple[str, str], ...]


def _read_container(item: Any, kind: str, index: int) -> _Container:
    path = f"spec.{kind}[{index}]"
    if type(item) is not dict and not isinstance(item, Mapping):
        raise InvalidArgument(path, f"expected an object, got {_type_name(item)}")
    context = _map(item, "securityContext", path)
    security = _NO_SECURITY if context is None else _Security(context, f"{path}.securityContext", False)
    host_ports = []
    for port_index, port in enumerate(_list(item, "ports", path)):
        where = f"{path}.ports[{port_index}]"
        if not isinstance(port, Mapping):
            raise InvalidArgument(where, f"expected an object, got {_type_name(port)}")
        host_port = _int(port, "hostPort", where)
        if host_port:
            host_ports.append((f"{where}.hostPort", host_port))
    probe_hosts: list[tuple[str, str]] = []
    if any(item.get(key) is not None for key in _HANDLER_KEYS):
        probe_hosts = _probe_hosts(item, path)
    return _Container(
        path,
        kind,
        index,
        _str(item, "name", path) or "",
        _str(item, "image", path) or "",
        security,
        tuple(host_ports),
        tuple(probe_hosts),
    )


def _probe_hosts(container: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    handlers = [
        (f"{path}.{name}", _map(container, name, path))
        for name in _HANDLERS
        if container.get(name) is not None
    ]
    lifecycle = _map(container, "lifecycle", path)
    if lifecycle is not None:
        handlers += [
            (f"{path}.lifecycle.{name}", _map(lifecycle, name, f"{path}.lifecycle"))
            for name in ("postStart", "preStop")
        ]
    hosts = []
    for where, handler in handlers:
        if handler is None:
            continue
        for kind in ("httpGet", "tcpSocket"):
            action = handler.get(kind)
            if action is None:
                continue
            host = _str(_map(handler, kind, where), "host", f"{where}.{kind}")
            if host:
                hosts.append((f"{where}.{kind}.host", host))
    return hosts


_CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")
_RESTRICTED_VOLUME_TYPES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)
_ALLOWED_VOLUME_TYPES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)


@dataclass(frozen=True, slots=True)
class _Volume:
    index: int
    host_path: str | None  # the hostPath's path ("" if unset); None without a hostPath
    restricted_kind: str | None  # the restricted source it uses ("unknown" if none); None if allowed


def _read_volume(volume: Any, index: int) -> _Volume:
    path = f"spec.volumes[{index}]"
    if not isinstance(volume, Mapping):
        raise InvalidArgument(path, f"expected an object, got {_type_name(volume)}")
    host_path_spec = _map(volume, "hostPath", path)
    host_path = None if host_path_spec is None else (_str(host_path_spec, "path", f"{path}.hostPath") or "")
    restricted: str | None = None
    if not any(volume.get(kind) is not None for kind in _ALLOWED_VOLUME_TYPES):
        restricted = next(
            (kind for kind in _RESTRICTED_VOLUME_TYPES if volume.get(kind) is not None), "unknown"
        )
    return _Volume(index, host_path, restricted)


@dataclass(frozen=True, slots=True)
class _PodView:
    annotations: Mapping[str, str]
    host_namespaces: tuple[str, ...]
    volumes: tuple[_Volume, ...]
    security: _Security
    containers: tuple[_Container, ...]
    windows: bool
    user_namespace: bool


def _view(pod: Mapping[str, Any]) -> _PodView:
    if not isinstance(pod, Mapping):
        raise InvalidArgument("pod", f"expected an object, got {_type_name(pod)}")
    metadata = _map(pod, "metadata", "") or {}
    annotations = _map(metadata, "annotations", "metadata") or {}
    for key, value in annotations.items():
        if not isinstance(value, str):
            raise InvalidArgument(
                f"metadata.annotations.{key}", f"expected a string, got {_type_name(value)}"
            )
    spec = _map(pod, "spec", "") or {}
    containers = tuple(
        _read_container(item, kind, index)
        for kind in _CONTAINER_KINDS
        for index, item in enumerate(_list(spec, kind, "spec"))
    )
    context = _map(spec, "securityContext", "spec")
    return _PodView(
        annotations=annotations,
        host_namespaces=tuple(
            key for key in ("hostNetwork", "hostPID", "hostIPC") if _bool(spec, key, "spec")
        ),
        volumes=tuple(
            _read_volume(volume, index) for index, volume in enumerate(_list(spec, "volumes", "spec"))
        ),
        security=_NO_SECURITY if context is None else _Security(context, "spec.securityContext", True),
        containers=containers,
        windows=_str(_map(spec, "os", "spec"), "name", "spec.os") == "windows",
        user_namespace=_bool(spec, "hostUsers", "spec") is False,
    )


# --------------------------------------------------------------------------- #
# The checks (k8s.io/pod-security-admission/policy, with field errors)

_CheckFn = Callable[[_PodView], list[_FieldError]]


def _privileged(pod: _PodView) -> list[_FieldError]:
    return [
        _forbidden(f"{c.path}.securityContext.privileged", True)
        for c in pod.containers
        if c.security.privileged
    ]


def _host_namespaces(pod: _PodView) -> list[_FieldError]:
    return [_forbidden(f"spec.{key}", True) for key in pod.host_namespaces]


def _host_path_volumes(pod: _PodView) -> list[_FieldError]:
    return [
        _forbidden(f"spec.volumes[{v.index}].hostPath", v.host_path)
        for v in pod.volumes
        if v.host_path is not None
    ]


def _host_ports(pod: _PodView) -> list[_FieldError]:
    return [_forbidden(path, port) for c in pod.containers for path, port in c.host_ports]


_BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _capabilities_baseline(pod: _PodView) -> list[_FieldError]:
    errors = []
    for c in pod.containers:
        capabilities = c.security.capabilities
        if capabilities is None:
            continue
        forbidden = sorted({cap for cap in capabilities[0] if cap not in _BASELINE_CAPABILITIES})
        if forbidden:
            errors.append(_forbidden(f"{c.path}.securityContext.capabilities.add", forbidden))
    return errors


def _capabilities_restricted_1_22(pod: _PodView) -> list[_FieldError]:
    missing_drop: list[_FieldError] = []
    adding: list[_FieldError] = []
    for c in pod.containers:
        drop_path = f"{c.path}.securityContext.capabilities.drop"
        capabilities = c.security.capabilities
        if capabilities is None:
            missing_drop.append(_required(drop_path))
            continue
        added, dropped = capabilities
        if "ALL" not in dropped:
            missing_drop.append(
                _forbidden(drop_path, sorted(set(dropped))) if dropped else _required(drop_path)
            )
        forbidden = sorted({cap for cap in added if cap != "NET_BIND_SERVICE"})
        if forbidden:
            adding.append(_forbidden(f"{c.path}.securityContext.capabilities.add", forbidden))
    return missing_drop + adding


def _windows_exempt(check: _CheckFn) -> _CheckFn:
    # Since 1.25, pods declaring spec.os.name=windows are exempt from some restricted checks.
    def exempted(pod: _PodView) -> list[_FieldError]:
        return [] if pod.windows else check(pod)

    return exempted


def _user_namespace_exempt(check: _CheckFn) -> _CheckFn:
    # Since 1.35, pods in a user namespace (hostUsers: false) are exempt from some checks.
    def exempted(pod: _PodView) -> list[_FieldError]:
        return [] if pod.user_namespace else check(pod)

    return exempted


def _allow_privilege_escalation(pod: _PodView) -> list[_FieldError]:
    errors = []
    for c in pod.containers:
        value = c.security.allow_escalation
        if not c.security.present:
            errors.append(_required(f"{c.path}.securityContext.allowPrivilegeEscalation"))
        elif value is None:
            errors.append(_forbidden(f"{c.path}.securityContext.allowPrivilegeEscalation", "nil"))
        elif value:
            errors.append(_forbidden(f"{c.path}.securityContext.allowPrivilegeEscalation", True))
    return errors


def _run_as_non_root(pod: _PodView) -> list[_FieldError]:
    setters: list[_FieldError] = []
    implicit: list[_FieldError] = []
    pod_value = pod.security.run_as_non_root
    if pod_value is False:
        setters.append(_forbidden("spec.securityContext.runAsNonRoot", False))
    for c in pod.containers:
        value = c.security.run_as_non_root
        if value is False:
            setters.append(_forbidden(f"{c.path}.securityContext.runAsNonRoot", False))
        elif value is None and not pod_value:
            implicit.append(_required(f"{c.path}.securityContext.runAsNonRoot"))
    return setters + implicit


def _run_as_user(pod: _PodView) -> list[_FieldError]:
    errors = []
    if pod.security.run_as_user == 0:
        errors.append(_forbidden("spec.securityContext.runAsUser", 0))
    errors.extend(
        _forbidden(f"{c.path}.securityContext.runAsUser", 0)
        for c in pod.containers
        if c.security.run_as_user == 0
    )
    return errors


def _proc_mount(pod: _PodView) -> list[_FieldError]:
    return [
        _forbidden(f"{c.path}.securityContext.procMount", c.security.proc_mount)
        for c in pod.containers
        if c.security.proc_mount is not None and c.security.proc_mount != "Default"
    ]


def _restricted_volumes(pod: _PodView) -> list[_FieldError]:
    return [
        _forbidden(f"spec.volumes[{v.index}].{v.restricted_kind}")
        for v in pod.volumes
        if v.restricted_kind is not None
    ]


_SECCOMP_VALID = ("RuntimeDefault", "Localhost")
_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"


def _seccomp_annotation_valid(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def _seccomp_baseline_1_0(pod: _PodView) -> list[_FieldError]:
    errors = []
    keys = [_SECCOMP_POD_ANNOTATION] + [_SECCOMP_CONTAINER_ANNOTATION + c.name for c in pod.containers]
    for key in keys:
        value = pod.annotations.get(key)
        if value is not None and not _seccomp_annotation_valid(value):
            errors.append(_forbidden(f"metadata.annotations[{key}]", value))
    return errors


def _seccomp_baseline_1_19(pod: _PodView) -> list[_FieldError]:
    errors = []
    kind = pod.security.seccomp
    if kind is not None and kind not in _SECCOMP_VALID:
        errors.append(_forbidden("spec.securityContext.seccompProfile.type", kind))
    for c in pod.containers:
        kind = c.security.seccomp
        if kind is not None and kind not in _SECCOMP_VALID:
            errors.append(_forbidden(f"{c.path}.securityContext.seccompProfile.type", kind))
    return errors


def _seccomp_restricted_1_19(pod: _PodView) -> list[_FieldError]:
    setters: list[_FieldError] = []
    implicit: list[_FieldError] = []
    kind = pod.security.seccomp
    pod_set = kind in _SECCOMP_VALID
    if kind is not None and not pod_set:
        setters.append(_forbidden("spec.securityContext.seccompProfile.type", kind))
    for c in pod.containers:
        kind = c.security.seccomp
        if kind is not None:
            if kind not in _SECCOMP_VALID:
                setters.append(_forbidden(f"{c.path}.securityContext.seccompProfile.type", kind))
        elif not pod_set:
            implicit.append(_required(f"{c.path}.securityContext.seccompProfile.type"))
    # Explicitly bad values are reported alone; only without them are the unset containers listed.
    return setters or implicit


_SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
_SELINUX_TYPES_1_31 = _SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(allowed: frozenset[str]) -> _CheckFn:
    def check(pod: _PodView) -> list[_FieldError]:
        errors: list[_FieldError] = []
        targets = [("spec.securityContext", pod.security)]
        targets += [(f"{c.path}.securityContext", c.security) for c in pod.containers]
        for path, security in targets:
            if security.selinux is None:
                continue
            kind, user, role = security.selinux
            if kind not in allowed:
                errors.append(_forbidden(f"{path}.seLinuxOptions.type", kind))
            if user:
                errors.append(_forbidden(f"{path}.seLinuxOptions.user", user))
            if role:
                errors.append(_forbidden(f"{path}.seLinuxOptions.role", role))
        return errors

    return check


_SYSCTLS_1_0 = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
)
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def _sysctls(allowed: frozenset[str]) -> _CheckFn:
    def check(pod: _PodView) -> list[_FieldError]:
        return [
            _forbidden(f"spec.securityContext.sysctls[{index}].name", name)
            for index, name in enumerate(pod.security.sysctls)
            if name not in allowed
        ]

    return check


def _windows_host_process(pod: _PodView) -> list[_FieldError]:
    errors = []
    if pod.security.host_process:
        errors.append(_forbidden("spec.securityContext.windowsOptions.hostProcess", True))
    errors.extend(
        _forbidden(f"{c.path}.securityContext.windowsOptions.hostProcess", True)
        for c in pod.containers
        if c.security.host_process
    )
    return errors


_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor(pod: _PodView) -> list[_FieldError]:
    errors = []
    targets = [("spec.securityContext", pod.security)]
    targets += [(f"{c.path}.securityContext", c.security) for c in pod.containers]
    for path, security in targets:
        kind = security.apparmor
        if kind is not None and kind not in ("RuntimeDefault", "Localhost"):
            errors.append(_forbidden(f"{path}.appArmorProfile.type", kind))
    for key in sorted(pod.annotations):
        value = pod.annotations[key]
        if key.startswith(_APPARMOR_ANNOTATION) and not (
            value in {"", "runtime/default"} or value.startswith("localhost/")
        ):
            errors.append(_forbidden(f"metadata.annotations[{key}]", value))
    return errors


def _apparmor_reason(errors: Sequence[_FieldError]) -> str:
    bad_types = {e.bad for e in errors if not e.path.startswith("metadata.")}
    count = len(bad_types) + sum(1 for e in errors if e.path.startswith("metadata."))
    return "forbidden AppArmor profile" if count == 1 else "forbidden AppArmor profiles"


def _host_probes(pod: _PodView) -> list[_FieldError]:
    return [_forbidden(path, host) for c in pod.containers for path, host in c.probe_hosts]


@dataclass(frozen=True)
class _Check:
    check_id: str
    level: str
    versions: tuple[tuple[int, _CheckFn], ...]  # (minimum minor version, check), increasing
    reason: str

    def at(self, minor: int) -> _CheckFn | None:
        """The newest variant of this check that exists at 1.<minor>, if any."""
        selected = None
        for minimum, check in self.versions:
            if minimum <= minor:
                selected = check
        return selected


# policy.DefaultChecks() order: upstream registers the checks from init() in file-name order.
_CHECKS = (
    _Check(
        "allowPrivilegeEscalation",
        "restricted",
        ((8, _allow_privilege_escalation), (25, _windows_exempt(_allow_privilege_escalation))),
        "allowPrivilegeEscalation != false",
    ),
    _Check("appArmorProfile", "baseline", ((0, _apparmor),), "forbidden AppArmor profile"),
    _Check("capabilities_baseline", "baseline", ((0, _capabilities_baseline),), "non-default capabilities"),
    _Check(
        "capabilities_restricted",
        "restricted",
        ((22, _capabilities_restricted_1_22), (25, _windows_exempt(_capabilities_restricted_1_22))),
        "unrestricted capabilities",
    ),
    _Check("hostNamespaces", "baseline", ((0, _host_namespaces),), "host namespaces"),
    _Check("hostPathVolumes", "baseline", ((0, _host_path_volumes),), "hostPath volumes"),
    _Check("hostPorts", "baseline", ((0, _host_ports),), "hostPort"),
    _Check("hostProbesAndHostLifecycle", "baseline", ((34, _host_probes),), "probe or lifecycle host"),
    _Check("privileged", "baseline", ((0, _privileged),), "privileged"),
    _Check(
        "procMount", "baseline", ((0, _proc_mount), (35, _user_namespace_exempt(_proc_mount))), "procMount"
    ),
    _Check("procMount_restricted", "restricted", ((35, _proc_mount),), "procMount"),
    _Check("restrictedVolumes", "restricted", ((0, _restricted_volumes),), "restricted volume types"),
    _Check(
        "runAsNonRoot",
        "restricted",
        ((0, _run_as_non_root), (35, _user_namespace_exempt(_run_as_non_root))),
        "runAsNonRoot != true",
    ),
    _Check(
        "runAsUser",
        "restricted",
        ((23, _run_as_user), (35, _user_namespace_exempt(_run_as_user))),
        "runAsUser=0",
    ),
    _Check(
        "seLinuxOptions",
        "baseline",
        ((0, _selinux(_SELINUX_TYPES_1_0)), (31, _selinux(_SELINUX_TYPES_1_31))),
        "seLinuxOptions",
    ),
    _Check(
        "seccompProfile_baseline",
        "baseline",
        ((0, _seccomp_baseline_1_0), (19, _seccomp_baseline_1_19)),
        "seccompProfile",
    ),
    _Check(
        "seccompProfile_restricted",
        "restricted",
        ((19, _seccomp_restricted_1_19), (25, _windows_exempt(_seccomp_restricted_1_19))),
        "seccompProfile",
    ),
    _Check(
        "sysctls",
        "baseline",
        (
            (0, _sysctls(_SYSCTLS_1_0)),
            (27, _sysctls(_SYSCTLS_1_27)),
            (29, _sysctls(_SYSCTLS_1_29)),
            (32, _sysctls(_SYSCTLS_1_32)),
        ),
        "forbidden sysctls",
    ),
    _Check("windowsHostProcess", "baseline", ((0, _windows_host_process),), "hostProcess"),
)

# Kyverno's control names (pkg/pss/utils/mapping.go) and the checks each covers.
CONTROL_CHECKS: Mapping[str, tuple[str, ...]] = {
    "Capabilities": ("capabilities_baseline", "capabilities_restricted"),
    "Seccomp": ("seccompProfile_baseline", "seccompProfile_restricted"),
    "Privileged Containers": ("privileged",),
    "Host Ports": ("hostPorts",),
    "/proc Mount Type": ("procMount", "procMount_restricted"),
    "Host Probes / Lifecycle Hooks": ("hostProbesAndHostLifecycle",),
    "HostProcess": ("windowsHostProcess",),
    "SELinux": ("seLinuxOptions",),
    "Host Namespaces": ("hostNamespaces",),
    "HostPath Volumes": ("hostPathVolumes",),
    "Sysctls": ("sysctls",),
    "AppArmor": ("appArmorProfile",),
    "Privilege Escalation": ("allowPrivilegeEscalation",),
    "Running as Non-root": ("runAsNonRoot",),
    "Running as Non-root user": ("runAsUser",),
    "Volume Types": ("restrictedVolumes",),
}
_CONTROL_OF = {check_id: control for control, ids in CONTROL_CHECKS.items() for check_id in ids}
_POD_LEVEL_CONTROLS = frozenset({"Host Namespaces", "HostPath Volumes", "Sysctls", "Volume Types"})
_CONTAINER_LEVEL_CONTROLS = frozenset(
    {
        "Capabilities",
        "Privileged Containers",
        "Host Ports",
        "/proc Mount Type",
        "Privilege Escalation",
        "Host Probes / Lifecycle Hooks",
    }
)


@lru_cache(maxsize=256)
def _plan(level: str, minor: int) -> tuple[tuple[_Check, _CheckFn], ...]:
    """The checks a level runs at 1.<minor>, each at its selected variant (pre-computed per pair)."""
    if level == "privileged":
        return ()
    planned = []
    for check in _CHECKS:
        if level == "baseline" and check.level != "baseline":
            continue
        variant = check.at(minor)
        if variant is not None:
            planned.append((check, variant))
    return tuple(planned)


def _parse_level_version(level: object, version: object) -> tuple[str, int]:
    if not isinstance(level, str) or level not in _LEVELS:
        raise InvalidArgument("podSecurity.level", f"must be one of {', '.join(_LEVELS)}; got {level!r}")
    if not isinstance(version, str):
        raise InvalidArgument("podSecurity.version", f"must be a string; got {_type_name(version)}")
    if version in ("", "latest"):
        return level, LATEST_MINOR
    match = _VERSION.fullmatch(version)
    if match is None:
        raise InvalidArgument(
            "podSecurity.version", f"must be 'latest' or v1.<minor> (e.g. v1.29); got {version!r}"
        )
    return level, int(match.group(1))


def _evaluate(view: _PodView, level: str, minor: int) -> list[tuple[_Check, list[_FieldError]]]:
    results = []
    for check, variant in _plan(level, minor):
        errors = variant(view)
        if errors:
            results.append((check, errors))
    return results


def _violation(
    check: _Check, reason: str, error: _FieldError, view: _PodView, level: str, version: str, minor: int
) -> PssViolation:
    image = _container_at(view, error.path)
    return PssViolation(
        control=_CONTROL_OF[check.check_id],
        images=(image.image,) if image is not None else (),
        restricted_field=_star(error.path),
        values=_bad_values(error.bad),
        message=_render(error),
        origin=_Origin(check.check_id, reason, error.kind, error.path, error.bad, level, version, minor),
    )


_CONTAINER_PATH = re.compile(r"spec\.(initContainers|containers|ephemeralContainers)\[(\d+)\]")


def _container_at(view: _PodView, path: str) -> _Container | None:
    match = _CONTAINER_PATH.match(path)
    if match is None:
        return None
    kind, index = match.group(1), int(match.group(2))
    for container in view.containers:
        if container.kind == kind and container.index == index:
            return container
    return None


def check_pod(pod: Mapping[str, Any], *, level: str, version: str) -> list[PssViolation]:
    """Evaluate the Pod Security Standards ``level`` at ``version`` on a Pod.

    Args:
        pod: a Pod-like mapping with ``metadata`` and ``spec`` (a controller's pod template
            must be extracted by the caller).
        level: ``baseline``, ``restricted`` or ``privileged`` (which checks nothing).
        version: ``latest`` (or empty) or ``v1.<minor>``.

    Returns:
        One violation per offending field, in Kyverno's order; empty when the pod passes.

    Raises:
        InvalidArgument: an unknown level or version, or a pod field of the wrong type.
    """
    level, minor = _parse_level_version(level, version)
    view = _view(pod)
    violations: list[PssViolation] = []
    for check, errors in _evaluate(view, level, minor):
        reason = _apparmor_reason(errors) if check.check_id == "appArmorProfile" else check.reason
        violations.extend(_violation(check, reason, e, view, level, version, minor) for e in errors)
    return violations


class PodChecks:
    """:func:`check_pod` results for the rules of one request: each pod, level and version once.

    A bundle's podSecurity rules tend to check the same pod at the same level and differ only
    in their ``exclude`` lists, which apply to the violations afterwards; the checks cost
    ~50 us a pod. Entries are keyed by the pod's identity (and keep it referenced, so the id
    cannot be reused), which is why one instance must not outlive the evaluation of one
    request: the engine does not modify the objects it evaluates, a caller between two
    requests may.
    """

    __slots__ = ("_found",)

    def __init__(self) -> None:
        self._found: dict[tuple[int, str, str], tuple[Mapping[str, Any], tuple[PssViolation, ...]]] = {}

    def check(self, pod: Mapping[str, Any], *, level: str, version: str) -> list[PssViolation]:
        """What ``check_pod(pod, level=level, version=version)`` returns (a new list each call).

        Raises:
            InvalidArgument: as :func:`check_pod` (errors are not remembered).
        """
        key = (id(pod), level, version)
        found = self._found.get(key)
        if found is None or found[0] is not pod:
            found = (pod, tuple(check_pod(pod, level=level, version=version)))
            self._found[key] = found
        return list(found[1])


# --------------------------------------------------------------------------- #
# Exclusions (Kyverno's ApplyPodSecurityExclusion / exemptExclusions)


@dataclass(frozen=True)
class _Exclusion:
    control: str
    images: tuple[str, ...]
    restricted_field: str
    values: tuple[str, ...]


def _parse_exclusion(raw: Any, index: int) -> _Exclusion:
    where = f"exclude[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidArgument(where, f"expected an object, got {_type_name(raw)}")
    unknown = sorted(set(raw) - {"controlName", "images", "restrictedField", "values"})
    if unknown:
        raise InvalidArgument(f"{where}.{unknown[0]}", "unknown field")
    control = raw.get("controlName")
    if not isinstance(control, str) or control not in CONTROL_CHECKS:
        raise InvalidArgument(
            f"{where}.controlName", f"must be one of {', '.join(sorted(CONTROL_CHECKS))}; got {control!r}"
        )
    images = tuple(_str_list(raw, "images", where))
    if control in _CONTAINER_LEVEL_CONTROLS and not images:
        raise InvalidArgument(
            f"{where}.images", f"must be specified for the container-level control {control!r}"
        )
    if control in _POD_LEVEL_CONTROLS and images:
        raise InvalidArgument(
            f"{where}.images", f"must not be specified for the pod-level control {control!r}"
        )
    restricted = _str(raw, "restrictedField", where) or ""
    values = tuple(_str_list(raw, "values", where))
    return _Exclusion(control, images, restricted, values)


def _matches_any(patterns: Iterable[str], text: str) -> bool:
    return any(_wildcard.match(p, text) for p in patterns)


def _parse_field(path: str) -> tuple[str, int | None, str, bool]:
    """Kyverno's parseField: starred path, first index, second word, whether it is a container field."""
    indexes = _INDEX.findall(path)
    words = _WORD.findall(path)
    kind = words[1] if len(words) > 1 else ""
    return _star(path), int(indexes[0]) if indexes else None, kind, kind in _CONTAINER_KINDS


def _container_name(pod: Mapping[str, Any], kind: str, index: int | None) -> str | None:
    spec = pod.get("spec")
    items = spec.get(kind) if isinstance(spec, Mapping) else None
    if index is None or not isinstance(items, list | tuple) or index >= len(items):
        return None
    item = items[index]
    name = item.get("name") if isinstance(item, Mapping) else None
    return name if isinstance(name, str) else ""


def _reduced_pods(pod: Mapping[str, Any], exclusion: _Exclusion) -> tuple[dict[str, Any], bool]:
    """The pod an exclusion is evaluated on, and whether the exclusion is container-level."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    if not exclusion.images:
        # Pod-level: the pod's own fields with a single bare container standing in.
        reduced_spec = {k: v for k, v in spec.items() if k not in _CONTAINER_KINDS}
        reduced_spec["containers"] = [{"name": "fake"}]
        return {"metadata": pod.get("metadata") or {}, "spec": reduced_spec}, False
    metadata = pod.get("metadata") if isinstance(pod.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    reduced: dict[str, Any] = {}
    for kind in _CONTAINER_KINDS:
        kept = [
            c
            for c in spec.get(kind) or ()
            if isinstance(c, Mapping) and _matches_any(exclusion.images, str(c.get("image") or ""))
        ]
        if kept:
            reduced[kind] = kept
    identity = {k: metadata[k] for k in ("name", "namespace") if k in metadata}
    return {"metadata": identity, "spec": reduced}, True


def apply_exclusions(
    violations: Sequence[PssViolation],
    exclusions: Sequence[Mapping[str, Any]],
    pod: Mapping[str, Any],
) -> list[PssViolation]:
    """The violations left after a podSecurity rule's ``exclude`` entries, as Kyverno computes them.

    Each exclusion is evaluated on a reduced pod: without ``images``, the pod's own fields
    with one bare container (so pod-level fields, and one container's worth of unset
    container fields, are exempted); with ``images``, only the containers whose image
    matches a wildcard. A default violation is removed when that evaluation reports the
    same field (indexes ignored) for a check of the named control, for the same container
    name, with ``restrictedField`` (if set) equal to the field and every offending value
    matching one of ``values`` (if set).

    Args:
        violations: what :func:`check_pod` returned for ``pod``.
        exclusions: the rule's ``podSecurity.exclude`` entries.
        pod: the same pod.

    Raises:
        InvalidArgument: a malformed exclusion (unknown control, images missing for a
            container-level control or present for a pod-level one, wrong types).
    """
    parsed = [_parse_exclusion(raw, i) for i, raw in enumerate(exclusions)]
    if not violations or not parsed:
        return list(violations)
    first = violations[0].origin
    # Violations built elsewhere carry no origin; they are taken as restricted at latest.
    level, version = (first.level, first.version) if first else ("restricted", "latest")
    groups: dict[str, list[PssViolation]] = {}
    for violation in violations:
        check_id = violation.origin.check_id if violation.origin else violation.control
        groups.setdefault(check_id, []).append(violation)
    for exclusion in parsed:
        reduced, container_level = _reduced_pods(pod, exclusion)
        excluded = check_pod(reduced, level=level, version=version)
        ids = CONTROL_CHECKS[exclusion.control]
        for found in excluded:
            origin = found.origin
            assert origin is not None
            if origin.check_id not in ids:
                continue
            _exempt(groups, origin, found, exclusion, pod, reduced, container_level)
    return [v for group in groups.values() for v in group]


def _exempt(
    groups: dict[str, list[PssViolation]],
    origin: _Origin,
    found: PssViolation,
    exclusion: _Exclusion,
    pod: Mapping[str, Any],
    reduced: Mapping[str, Any],
    container_level: bool,
) -> None:
    if container_level:
        field_path, index, kind, is_container = _parse_field(origin.field_path)
    else:
        field_path, index, kind, is_container = _star(origin.field_path), None, "", False
    excluded_name = _container_name(reduced, kind, index) if is_container else None
    if exclusion.restricted_field and field_path != exclusion.restricted_field:
        return
    if exclusion.values and not all(_matches_any(exclusion.values, bad) for bad in found.values):
        return
    group = groups.get(origin.check_id)
    if not group:
        return
    for position, candidate in enumerate(group):
        concrete = candidate.origin.field_path if candidate.origin else candidate.restricted_field
        if container_level:
            default_path, default_index, default_kind, default_is_container = _parse_field(concrete)
        else:
            default_path, default_index, default_kind, default_is_container = _star(concrete), None, "", False
        if default_is_container:
            same = field_path == default_path and excluded_name == _container_name(
                pod, default_kind, default_index
            )
        else:
            same = field_path == default_path
        if same:
            # Go removes by moving the last error into the freed slot.
            group[position] = group[-1]
            group.pop()
            break
    if not group:
        del groups[origin.check_id]


# --------------------------------------------------------------------------- #
# Messages

_TEMPLATE_PREFIX = {
    "Pod": "",
    "CronJob": "spec.jobTemplate.spec.template.",
}


def format_message(
    violations: Sequence[PssViolation],
    *,
    rule: str | None = None,
    level: str | None = None,
    version: str | None = None,
    kind: str = "Pod",
) -> str:
    """Kyverno's podSecurity failure text.

    Without ``rule``: the check list, ``(Forbidden reason: <reason>, field error list: [<errors>])``
    once per failing check. With ``rule``: the whole rule message,
    ``Validation rule '<rule>' failed. It violates PodSecurity "<level>:<version>": <checks>``,
    ``level`` and ``version`` defaulting to those the violations were checked with (as written
    in the policy). For a pod controller (``kind``), field paths are shown under its pod
    template (``spec.template.spec.containers[0]...``), as Kyverno shows them.
    """
    prefix = _TEMPLATE_PREFIX.get(kind, "spec.template.")
    parts: list[str] = []
    current: str | None = None
    errors: list[str] = []
    reason = ""
    for violation in violations:
        origin = violation.origin
        check_id = origin.check_id if origin else violation.control
        if check_id != current:
            if current is not None:
                parts.append(f"(Forbidden reason: {reason}, field error list: [{', '.join(errors)}])")
            current, errors = check_id, []
            reason = origin.reason if origin else violation.control
        message = violation.message
        if prefix and (message.startswith(("spec.", "metadata."))):
            message = prefix + message
        errors.append(message)
    if current is not None:
        parts.append(f"(Forbidden reason: {reason}, field error list: [{', '.join(errors)}])")
    checks = "".join(parts)
    if rule is None:
        return checks
    first = violations[0].origin if violations else None
    shown_level = level if level is not None else (first.level if first else "")
    shown_version = version if version is not None else (first.version if first else "")
    where = f"{shown_level}:{shown_version}"
    return f"Validation rule '{rule}' failed. It violates PodSecurity \"{where}\": {checks}"
