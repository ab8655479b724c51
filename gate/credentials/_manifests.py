"""The Kubernetes objects of a project's pipeline credentials, built from validated input (pure)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from gate.errors import InvalidArgument
from gate.model import DNS_LABEL

# A private key file is a few KiB at most (RSA 16384 is ~13 KiB in PEM).
MAX_KEY_BYTES = 16 * 1024
MAX_PASSWORD_BYTES = 4 * 1024
MAX_KNOWN_HOSTS_BYTES = 64 * 1024
_REGISTRY = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?")
# The longest suffix added to a project name; object names are DNS labels of at most 63.
_LONGEST_SUFFIX = len("-registry-creds")
MANAGED_BY = {"app.kubernetes.io/managed-by": "gate"}
PROJECT_LABEL = "gate.dev/project"


@dataclass(frozen=True, slots=True)
class ProjectRef:
    """A project and the namespace its objects live in."""

    project: str
    namespace: str

    @classmethod
    def of(cls, project: str, namespace: str = "") -> ProjectRef:
        """Check the names (DNS labels) and default the namespace to the project.

        Raises:
            InvalidArgument: a name is not a DNS label or the project name is too long.
        """
        if not DNS_LABEL.fullmatch(project) or len(project) > 63 - _LONGEST_SUFFIX:
            raise InvalidArgument(
                "project",
                f"expected a DNS label of at most {63 - _LONGEST_SUFFIX} characters "
                f"(lowercase letters, digits, '-'), got {project[:80]!r}",
            )
        namespace = namespace or project
        if not DNS_LABEL.fullmatch(namespace) or len(namespace) > 63:
            raise InvalidArgument("namespace", f"expected a DNS label, got {namespace[:80]!r}")
        return cls(project, namespace)

    @property
    def git_secret(self) -> str:
        """Name of the SSH Secret."""
        return f"{self.project}-git-creds"

    @property
    def registry_secret(self) -> str:
        """Name of the dockerconfigjson Secret."""
        return f"{self.project}-registry-creds"

    @property
    def service_account(self) -> str:
        """Name of the ServiceAccount pipeline runs use."""
        return f"{self.project}-pipeline"

    @property
    def role(self) -> str:
        """Name of the Role (and RoleBinding) that lets the ServiceAccount read the Secrets."""
        return f"{self.project}-pipeline-creds"

    def object_keys(self) -> list[tuple[str, str]]:
        """(kind, name) of every object, in the order they are applied (deleted in reverse)."""
        return [
            ("Secret", self.git_secret),
            ("Secret", self.registry_secret),
            ("ServiceAccount", self.service_account),
            ("Role", self.role),
            ("RoleBinding", self.role),
        ]


@dataclass(frozen=True, slots=True)
class CredentialMaterial:
    """Validated secret material; its repr never shows the secrets."""

    ssh_private_key: bytes
    known_hosts: bytes
    registry: str
    username: str
    password: bytes
    git_host: str = ""

    def __repr__(self) -> str:
        return f"CredentialMaterial(registry={self.registry!r}, username={self.username!r}, secrets=<hidden>)"

    @classmethod
    def check(
        cls,
        *,
        ssh_private_key: bytes,
        known_hosts: bytes,
        registry: str,
        username: str,
        password: bytes,
        git_host: str = "",
    ) -> CredentialMaterial:
        """Validate every field; the private key must load with ``cryptography``.

        Raises:
            InvalidArgument: naming the field and the problem, never echoing a secret.
        """
        validate_private_key(ssh_private_key)
        if len(known_hosts) > MAX_KNOWN_HOSTS_BYTES:
            raise InvalidArgument("known_hosts", f"larger than {MAX_KNOWN_HOSTS_BYTES} bytes")
        if not _REGISTRY.fullmatch(registry) or len(registry) > 253:
            raise InvalidArgument("registry", f"expected a registry host[:port], got {registry[:80]!r}")
        if not username or len(username) > 256 or any(c in username for c in ":\r\n"):
            raise InvalidArgument("username", "required; at most 256 characters, no ':' or line breaks")
        password = password.rstrip(b"\r\n")
        if not password:
            raise InvalidArgument("password", "required, got an empty password")
        if len(password) > MAX_PASSWORD_BYTES or b"\n" in password:
            raise InvalidArgument("password", f"one line of at most {MAX_PASSWORD_BYTES} bytes expected")
        try:
            password.decode()
        except UnicodeDecodeError:
            raise InvalidArgument("password", "not UTF-8 text") from None
        if git_host and not _REGISTRY.fullmatch(git_host):
            raise InvalidArgument("git_host", f"expected a host name, got {git_host[:80]!r}")
        return cls(ssh_private_key, known_hosts, registry, username, password, git_host)


def validate_private_key(data: bytes) -> None:
    """Check that ``data`` is one unencrypted private key, OpenSSH or PEM.

    Raises:
        InvalidArgument: empty, too large, encrypted, or not a key ``cryptography`` can load.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if not data.strip():
        raise InvalidArgument("ssh_private_key", "required, got an empty key")
    if len(data) > MAX_KEY_BYTES:
        raise InvalidArgument("ssh_private_key", f"{len(data)} bytes exceeds the {MAX_KEY_BYTES}-byte limit")
    openssh = b"-----BEGIN OPENSSH PRIVATE KEY-----" in data
    try:
        if openssh:
            serialization.load_ssh_private_key(data, password=None)
        else:
            serialization.load_pem_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError for a key that needs a password.
        raise InvalidArgument(
            "ssh_private_key", "the key is encrypted; pipelines cannot type a passphrase, store it decrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # The library's message can quote parts of the input: say only what was expected.
        kind = "OpenSSH" if openssh else "PEM (PKCS#1, PKCS#8, SEC1)"
        raise InvalidArgument("ssh_private_key", f"not a valid {kind} private key") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _metadata(ref: ProjectRef, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ref.namespace,
        "labels": {**MANAGED_BY, PROJECT_LABEL: ref.project},
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def docker_config_json(registry: str, username: str, password: bytes) -> bytes:
    """The ``.dockerconfigjson`` document for one registry."""
    auth = _b64(username.encode() + b":" + password)
    document = {"auths": {registry: {"username": username, "password": password.decode(), "auth": auth}}}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def secret_manifests(ref: ProjectRef, material: CredentialMaterial) -> list[dict[str, Any]]:
    """The two Secrets."""
    ssh_data = {"ssh-privatekey": _b64(material.ssh_private_key)}
    if material.known_hosts:
        ssh_data["known_hosts"] = _b64(material.known_hosts)
    # Tekton's credential initialisation picks Secrets of a run's ServiceAccount by these annotations.
    git_annotations = {"tekton.dev/git-0": material.git_host} if material.git_host else None
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _metadata(ref, ref.git_secret, git_annotations),
            "type": "kubernetes.io/ssh-auth",
            "data": ssh_data,
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _metadata(ref, ref.registry_secret, {"tekton.dev/docker-0": material.registry}),
            "type": "kubernetes.io/dockerconfigjson",
            "data": {
                ".dockerconfigjson": _b64(
                    docker_config_json(material.registry, material.username, material.password)
                )
            },
        },
    ]


def access_manifests(ref: ProjectRef) -> list[dict[str, Any]]:
    """The ServiceAccount, and the Role and RoleBinding that let it only get the two Secrets."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _metadata(ref, ref.service_account),
            "secrets": [{"name": ref.git_secret}, {"name": ref.registry_secret}],
            "imagePullSecrets": [{"name": ref.registry_secret}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _metadata(ref, ref.role),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [ref.git_secret, ref.registry_secret],
                    "verbs": ["get"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _metadata(ref, ref.role),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ref.role},
            "subjects": [{"kind": "ServiceAccount", "name": ref.service_account, "namespace": ref.namespace}],
        },
    ]


# Per kind, the top-level fields gate owns (compared, and overwritten on update).
OWNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Secret": ("type", "data"),
    "ServiceAccount": ("secrets", "imagePullSecrets"),
    "Role": ("rules",),
    "RoleBinding": ("roleRef", "subjects"),
}
