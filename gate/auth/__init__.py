"""Authentication: who is calling gate, from bearer tokens, Kubernetes tokens or client certificates.

:func:`authenticator_from_config` builds the :class:`Authenticator` ``gate serve``
uses; the transport puts the resulting :class:`Identity` in the request's context
(:func:`set_identity`) so that decisions record it as their caller.
"""

from __future__ import annotations

from collections.abc import Mapping

from gate.auth._authenticate import Authenticator, Credentials
from gate.auth._identity import (
    ALL_PROJECTS,
    ROLES,
    Identity,
    current_caller,
    current_identity,
    reset_identity,
    set_identity,
)
from gate.auth._kubernetes import KubernetesTokenReviewer, TokenReviewer, TokenReviewResult
from gate.auth._tokens import ReloadingTokens, hash_token, load_tokens
from gate.config import Config


def authenticator_from_config(config: Config) -> Authenticator:
    """The authenticator ``auth`` configures (tokens file read, Kubernetes client built now).

    Raises:
        ConfigError: the tokens file is unreadable or malformed.
        Unsupported: Kubernetes tokens are enabled but the ``kubernetes`` extra is missing.
        InfrastructureError: Kubernetes tokens are enabled but no cluster configuration is usable.
    """
    settings = config.auth
    tokens: Mapping[str, Identity] = (
        ReloadingTokens(settings.tokens_file) if settings.tokens_file is not None else {}
    )
    certificates = {
        name: Identity.of(f"cert:{name}", grant.roles, grant.projects)
        for name, grant in settings.certificates.items()
    }
    reviewer: TokenReviewer | None = None
    kube = settings.kubernetes
    if kube.enabled:
        from gate._kube import api_client

        reviewer = KubernetesTokenReviewer(api_client(config.kubernetes), timeout=config.kubernetes.timeout)
    return Authenticator(
        tokens=tokens,
        certificates=certificates,
        reviewer=reviewer,
        audiences=kube.audiences,
        service_accounts={
            username: Identity.of(f"k8s:{username}", grant.roles, grant.projects)
            for username, grant in kube.identities.items()
        },
        cache_ttl=kube.cache_ttl,
    )


__all__ = [
    "ALL_PROJECTS",
    "ROLES",
    "Authenticator",
    "Credentials",
    "Identity",
    "KubernetesTokenReviewer",
    "ReloadingTokens",
    "TokenReviewResult",
    "TokenReviewer",
    "authenticator_from_config",
    "current_caller",
    "current_identity",
    "hash_token",
    "load_tokens",
    "reset_identity",
    "set_identity",
]
