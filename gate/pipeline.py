"""What a pipeline Decide evaluates: its subject as resources, the policies of its stage, hints.

Kyverno policies match Kubernetes resources, so a pipeline subject is turned
into the resources a cluster would see:

- an image becomes the Pod that would run it (namespace = the project, or
  ``default``), so image rules, autogen rules and evidence rules apply to it
  exactly as at admission;
- a manifest is evaluated document by document, as the API server would
  receive them;
- a source tree becomes a ``SourceTree`` resource (``gate.dev/v1``) with
  ``spec.repository``, ``spec.commit`` and ``spec.artifact`` (the digest gate
  keeps its evidence under), for policies written for the source stages.

A policy applies to the stages listed in its ``gate.dev/stages`` annotation
(comma-separated); without the annotation it applies to every stage and to
admission. Remediation hints come from ``gate.dev/remediation`` (whole policy)
or ``gate.dev/remediation.<rule>`` annotations.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gate._git import COMMIT
from gate.errors import InvalidArgument
from gate.model import DNS_LABEL
from policies import Policy, PolicyBundle, PolicyLoadError, ResourceLimitError
from policies._images import container_images
from policies._yaml import MAX_DEPTH, MAX_NODES, check_depth, parse_documents

STAGES_ANNOTATION = "gate.dev/stages"
REMEDIATION_ANNOTATION = "gate.dev/remediation"
ADMISSION_STAGE = "admission"
# A pipeline manifest is a release's worth of YAML, not a cluster dump.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_DOCUMENTS = 500
_STAGE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_NAME_UNSAFE = re.compile(r"[^a-z0-9.-]+")
MAX_REPOSITORY_CHARS = 2048


@dataclass(frozen=True, slots=True)
class SourceTree:
    """A repository at a commit, and the artifact digest gate records its evidence under."""

    repository: str
    commit: str
    artifact_digest: str = ""


@dataclass(frozen=True, slots=True)
class DecideSubject:
    """What a pipeline Decide is about: exactly one of an image, a manifest or a source tree.

    ``image`` is a reference as a pipeline names it (tag or digest); ``manifest`` the bytes
    of a YAML or JSON manifest; ``source`` a repository at a commit.
    """

    image: str = ""
    manifest: bytes = b""
    source: SourceTree | None = None

    def describe(self) -> str:
        """A short description for the audit trail."""
        if self.image:
            return f"image {self.image}"
        if self.source is not None:
            return f"source {self.source.repository}@{self.source.commit}"
        return f"manifest ({len(self.manifest)} bytes)"


def source_tree(repository: str, commit: str) -> SourceTree:
    """A source tree from a request, checked (``source.repository``, ``source.commit``).

    The commit is what gate keys the tree's evidence under (``repository@commit``): a
    near-miss (short, uppercase, padded) would name no evidence and silently decide on none.

    Raises:
        InvalidArgument: on ``source`` or the field that is wrong.
    """
    if not repository or not commit:
        raise InvalidArgument("source", "required: repository and commit")
    if not COMMIT.fullmatch(commit):
        raise InvalidArgument("source.commit", f"expected 40 or 64 lowercase hex characters, got {commit!r}")
    if len(repository) > MAX_REPOSITORY_CHARS:
        raise InvalidArgument(
            "source.repository", f"at most {MAX_REPOSITORY_CHARS} characters, got {len(repository)}"
        )
    if repository.strip() != repository or any(
        unicodedata.category(char) in ("Cc", "Cf") for char in repository
    ):
        raise InvalidArgument(
            "source.repository",
            f"expected a repository URL or path without spaces around it or control characters, "
            f"got {repository!r}",
        )
    return SourceTree(repository, commit)


def check_stage(stage: str) -> str:
    """The stage name, checked: lowercase letters, digits, ``-`` and ``_``, at most 63 characters.

    Raises:
        InvalidArgument: on ``stage`` naming what is wrong.
    """
    if not _STAGE.fullmatch(stage):
        raise InvalidArgument(
            "stage", f"expected a lowercase stage name such as 'publish' or 'deploy', got {stage!r}"
        )
    return stage


def check_project(project: str) -> str:
    """The project, checked: empty, or a DNS label, since it names the namespace its Pod is decided in.

    Rewriting a project that is not one into a label ("Team_A" into "team-a") would decide two
    projects in one namespace, under each other's namespaced exceptions and waivers.

    Raises:
        InvalidArgument: on ``project`` naming what is wrong.
    """
    if project and not DNS_LABEL.fullmatch(project):
        shown = project if len(project) <= 80 else project[:77] + "..."
        raise InvalidArgument(
            "project",
            "expected a DNS label (lowercase letters, digits and '-', at most 63 characters, "
            f"starting and ending with a letter or digit), got {shown!r}",
        )
    return project


def policy_stages(policy: Policy) -> frozenset[str] | None:
    """The stages a policy is limited to, or None when it applies everywhere."""
    raw = policy.annotations.get(STAGES_ANNOTATION, "")
    stages = frozenset(part.strip().lower() for part in raw.split(",") if part.strip())
    return stages or None


def policies_for_stage(bundle: PolicyBundle, stage: str) -> list[str]:
    """Keys of the bundle's policies that apply to ``stage``, in load order."""
    chosen = []
    for policy in bundle.policies:
        stages = policy_stages(policy)
        if stages is None or stage in stages:
            chosen.append(policy.key)
    return chosen


def remediation(bundle: PolicyBundle, policy_key: str, rule: str) -> str:
    """The remediation hint for a failing rule, when its policy gives one."""
    policy = bundle.policy(policy_key)
    if policy is None:
        return ""
    return policy.annotations.get(f"{REMEDIATION_ANNOTATION}.{rule}") or policy.annotations.get(
        REMEDIATION_ANNOTATION, ""
    )


def _dns_label(text: str) -> str:
    label = _NAME_UNSAFE.sub("-", text.lower()).strip("-.")
    return label[:63].rstrip("-.") or "subject"


def image_pod(image: str, project: str) -> dict[str, Any]:
    """The Pod that would run ``image`` in the project's namespace."""
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": _dns_label(f"gate-decide-{repository}"),
            "namespace": project or "default",
            "labels": {"app.kubernetes.io/managed-by": "gate"},
        },
        "spec": {"containers": [{"name": _dns_label(repository), "image": image}]},
    }


def source_resource(source: SourceTree, project: str) -> dict[str, Any]:
    """The ``SourceTree`` resource that stands for a repository at a commit."""
    name = source.repository.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return {
        "apiVersion": "gate.dev/v1",
        "kind": "SourceTree",
        "metadata": {
            "name": _dns_label(name),
            "namespace": project or "default",
        },
        "spec": {
            "repository": source.repository,
            "commit": source.commit,
            "artifact": source.artifact_digest,
        },
    }


def manifest_resources(manifest: bytes) -> list[dict[str, Any]]:
    """The Kubernetes objects of a YAML or JSON manifest (``List`` kinds expanded).

    Raises:
        InvalidArgument: on ``manifest``: not UTF-8, malformed, too large, too deep, or a
            document that is not a Kubernetes object, naming the document.
    """
    if len(manifest) > MAX_MANIFEST_BYTES:
        raise InvalidArgument("manifest", f"expected at most {MAX_MANIFEST_BYTES} bytes, got {len(manifest)}")
    try:
        text = manifest.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidArgument(
            "manifest", f"expected UTF-8 text: {error.reason} at byte {error.start}"
        ) from None
    resources: list[dict[str, Any]] = []
    # Documents are checked as they are parsed: a stream of thousands of documents is refused
    # at the first bad one or past the limit, not after parsing all of it.
    try:
        for index, document in enumerate(parse_documents(text, "manifest")):
            _add_resources(resources, document.data, f"manifest[{index}]")
    except PolicyLoadError as error:
        raise InvalidArgument("manifest", str(error).removeprefix("manifest: ")) from None
    if not resources:
        raise InvalidArgument("manifest", "expected at least one Kubernetes object, got an empty document")
    return resources


def _add_resources(resources: list[dict[str, Any]], data: Any, field: str) -> None:
    try:
        check_depth(data, field, MAX_DEPTH, MAX_NODES)
    except ResourceLimitError as error:
        raise InvalidArgument(field, str(error)) from None
    if isinstance(data, dict) and data.get("kind") == "List":
        items = data.get("items")
        if not isinstance(items, list):
            raise InvalidArgument(f"{field}.items", f"expected a list, got {type(items).__name__}")
        fields = [f"{field}.items[{index}]" for index in range(len(items))]
    else:
        items, fields = [data], [field]
    for item, item_field in zip(items, fields, strict=True):
        resources.append(_check_object(item, item_field))
        if len(resources) > MAX_MANIFEST_DOCUMENTS:
            raise InvalidArgument("manifest", f"expected at most {MAX_MANIFEST_DOCUMENTS} objects")


def _check_object(item: Any, field: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidArgument(field, f"expected a Kubernetes object (a mapping), got {type(item).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise InvalidArgument(f"{field}.{key}", f"expected a non-empty string, got {item.get(key)!r}")
    # What every consumer of a resource reads first (its namespace, its name): a metadata that
    # is not a mapping is no Kubernetes object.
    metadata = item.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgument(f"{field}.metadata", f"expected a mapping, got {type(metadata).__name__}")
    return item


def canonical_json(value: Any) -> bytes:
    """Sorted-key compact JSON: what request digests and signed records are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def images_of(resources: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every container image the resources run, as written (what ``element.image`` is), in order."""
    seen: dict[str, None] = {}
    for resource in resources:
        for image in container_images(resource):
            seen.setdefault(image, None)
    return list(seen)
