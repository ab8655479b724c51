"""A minimal AdmissionReview the listener tests send: a ConfigMap CREATE that no policy denies."""

from __future__ import annotations

from typing import Any


def configmap_review(uid: str) -> dict[str, Any]:
    """An AdmissionReview v1 for creating ConfigMap ``payments/c``, with ``uid``."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "operation": "CREATE",
            "namespace": "payments",
            "userInfo": {"username": "alice"},
            "object": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "payments"},
            },
        },
    }
