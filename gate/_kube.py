"""The Kubernetes API client gate uses (TokenReview, project credentials, registry pull secrets).

The ``kubernetes`` package is an optional extra: importing this module never
needs it; :func:`api_client` says which extra to install when it is missing.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from gate._strict_json import StrictJsonError, loads_leniently
from gate.config import KubernetesSettings
from gate.errors import ConfigError, InfrastructureError, Unsupported

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

MISSING_EXTRA = "install gate's 'kubernetes' extra: pip install 'gate[kubernetes]'"


def kubernetes_module() -> Any:
    """Import the ``kubernetes`` client package.

    Raises:
        Unsupported: the package is not installed, naming the extra that brings it.
    """
    try:
        import kubernetes
    except ImportError:
        raise Unsupported("Kubernetes access", MISSING_EXTRA) from None
    return kubernetes


def api_client(settings: KubernetesSettings) -> ApiClient:
    """An API client from ``kubernetes.kubeconfig`` (or the in-cluster ServiceAccount when unset).

    Raises:
        Unsupported: the ``kubernetes`` extra is missing.
        InfrastructureError: no usable configuration (not in a cluster, a broken kubeconfig).
    """
    kubernetes = kubernetes_module()
    from kubernetes.config.config_exception import ConfigException

    configuration = kubernetes.client.Configuration()
    try:
        if settings.kubeconfig is not None:
            kubernetes.config.load_kube_config(
                config_file=str(settings.kubeconfig),
                context=settings.context or None,
                client_configuration=configuration,
            )
        else:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        where = f"kubeconfig {settings.kubeconfig}" if settings.kubeconfig else "in-cluster configuration"
        raise InfrastructureError(f"kubernetes: cannot use the {where}: {exc}") from None
    client: ApiClient = kubernetes.client.ApiClient(configuration)
    return client


def require_extra(setting: str) -> None:
    """Fail at start-up, not on first use, when ``setting`` needs the missing ``kubernetes`` extra.

    Raises:
        ConfigError: the package is not installed (the message names the setting and the extra).
    """
    if importlib.util.find_spec("kubernetes") is None:
        raise ConfigError("configuration", setting, MISSING_EXTRA)


def answer_object(data: bytes, limit: int) -> dict[str, Any]:
    """The JSON object an API server answered, read as at most ``limit + 1`` bytes.

    Raises:
        ValueError: what is wrong with it ("larger than N bytes", "not JSON", "not a JSON
            object"); the caller names the object and raises its own error.
    """
    if len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    try:
        document = loads_leniently(data)
    except StrictJsonError as exc:
        if exc.kind in ("syntax", "encoding"):
            raise ValueError("not JSON") from None
        # Deep nesting or a huge integer: no object an API server sends looks like that.
        raise ValueError(f"not JSON gate can read (got {exc.reason})") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document
