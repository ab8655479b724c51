"""Helpers for the policy engine unit tests."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from policies import PolicyBundle, parse_policies


def policy(rules: str, *, name: str = "p", spec: str = "", annotations: str = "") -> PolicyBundle:
    """A ClusterPolicy with the given rules (YAML list text)."""
    head = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: " + name + "\n"
    if annotations:
        head += "  annotations:\n" + textwrap.indent(textwrap.dedent(annotations).strip(), "    ") + "\n"
    body = "spec:\n"
    if spec:
        body += textwrap.indent(textwrap.dedent(spec).strip(), "  ") + "\n"
    body += "  rules:\n" + textwrap.indent(textwrap.dedent(rules).strip(), "  ") + "\n"
    return parse_policies(head + body)


def pod(name: str = "p1", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """A Pod with one container unless ``containers`` is given."""
    body = {"containers": [{"name": "c", "image": "nginx:1.0"}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "web"}},
        "spec": body,
    }


def load(text: str) -> Any:
    """YAML text to data."""
    return yaml.safe_load(textwrap.dedent(text))
