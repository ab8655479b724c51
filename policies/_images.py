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
    if resource.get("kind") == "Pod":
        return spec
    template = _template(resource, spec)
    inner = template.get("spec") if template is not None else None
    return inner if isinstance(inner, dict) else None


def _template(resource: Mapping[str, Any], spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod template of a controller's ``spec`` (a CronJob's is inside its job template).

    Every level is checked: objects come from outside, and a ``jobTemplate`` that is a
    string must read as "no pod", not fail the evaluation.
    """
    if resource.get("kind") == "CronJob":
        job = spec.get("jobTemplate")
        job_spec = job.get("spec") if isinstance(job, dict) else None
        if not isinstance(job_spec, dict):
            return None
        spec = job_spec
    template = spec.get("template")
    return template if isinstance(template, dict) else None


def container_images(resource: Mapping[str, Any]) -> list[str]:
    """The container images of a Pod or pod template, as written, init containers first.

    Entries that are not a container with a non-empty string image are skipped.
    """
    spec = pod_spec(resource)
    if spec is None:
        return []
    found: list[str] = []
    for group in ("initContainers", "containers", "ephemeralContainers"):
        entries = spec.get(group)
        if not isinstance(entries, list):
            continue
        for container in entries:
            image = container.get("image") if isinstance(container, Mapping) else None
            if isinstance(image, str) and image:
                found.append(image)
    return found


def pod_object(resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``{metadata, spec}`` of the Pod a resource describes (itself, or its template)."""
    if resource.get("kind") == "Pod":
        return resource
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        return None
    return _template(resource, spec)


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
