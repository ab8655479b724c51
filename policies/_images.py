"""The ``images`` variable: container images of a Pod or pod template, parsed like Kyverno."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_DEFAULT_REGISTRY = "docker.io"


def parse_image(reference: str) -> dict[str, str]:
    """Split an image reference into registry, path, name, tag and digest."""
    rest = reference
    digest = ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
    registry = _DEFAULT_REGISTRY
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    tag = ""
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
    if not tag and not digest:
        tag = "latest"
    path = rest
    name = rest.rsplit("/", 1)[-1]
    info = {"registry": registry, "path": path, "name": name, "tag": tag, "digest": digest}
    base = f"{registry}/{path}"
    info["reference"] = f"{base}@{digest}" if digest else f"{base}:{tag}"
    info["referenceWithTag"] = f"{base}:{tag}" if tag else base
    return info


def pod_spec(resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a Pod or of a pod controller's template."""
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        return None
    kind = resource.get("kind")
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec")
        return spec if isinstance(spec, dict) else None
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        result: Mapping[str, Any] = template["spec"]
        return result
    return None


def pod_object(resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``{metadata, spec}`` of the Pod a resource describes (itself, or its template)."""
    if resource.get("kind") == "Pod":
        return resource
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        return None
    if resource.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") if isinstance(spec, dict) else None
    return template if isinstance(template, dict) else None


def images(resource: Mapping[str, Any]) -> dict[str, dict[str, dict[str, str]]] | None:
    """``images.containers.<name>`` etc., or None when the resource has no pod spec."""
    spec = pod_spec(resource)
    if spec is None:
        return None
    result: dict[str, dict[str, dict[str, str]]] = {}
    for section in ("containers", "initContainers", "ephemeralContainers"):
        entries = spec.get(section)
        if not isinstance(entries, list):
            continue
        found = {
            str(c.get("name", "")): parse_image(str(c["image"]))
            for c in entries
            if isinstance(c, dict) and isinstance(c.get("image"), str)
        }
        if found:
            result[section] = found
    return result
