"""Per-project pipeline credentials on Kubernetes (the "Authentication and Credentials Management" design).

For a project ``P`` in namespace ``N`` (``P`` unless given), gate keeps:

* ``P-git-creds`` (``kubernetes.io/ssh-auth``): the Git SSH private key, validated first;
* ``P-registry-creds`` (``kubernetes.io/dockerconfigjson``): the registry login;
* ``P-pipeline``: the ServiceAccount pipeline runs use (both Secrets attached);
* ``P-pipeline-creds``: a Role allowing only ``get`` on exactly those two
  Secrets (``resourceNames``), and the RoleBinding granting it to the ServiceAccount.

:class:`ProjectCredentials` applies, rotates and deletes them idempotently;
secrets are never logged.
"""

from __future__ import annotations

from gate.config import KubernetesSettings
from gate.credentials._apply import (
    AlreadyExists,
    Change,
    ClusterObjects,
    CredentialsResult,
    KubernetesObjects,
    ProjectCredentials,
    StaleVersion,
)
from gate.credentials._manifests import (
    CredentialMaterial,
    ProjectRef,
    access_manifests,
    docker_config_json,
    secret_manifests,
    validate_private_key,
)


def credentials_from_settings(settings: KubernetesSettings) -> ProjectCredentials:
    """Project credentials on the cluster ``settings`` names (connected on first use)."""

    def connect() -> ClusterObjects:
        from gate._kube import api_client

        return KubernetesObjects(api_client(settings), timeout=settings.timeout)

    return ProjectCredentials(connect)


__all__ = [
    "AlreadyExists",
    "Change",
    "ClusterObjects",
    "CredentialMaterial",
    "CredentialsResult",
    "KubernetesObjects",
    "ProjectCredentials",
    "ProjectRef",
    "StaleVersion",
    "access_manifests",
    "credentials_from_settings",
    "docker_config_json",
    "secret_manifests",
    "validate_private_key",
]
