"""Container images as SBOM targets: docker-archive tars, OCI image layouts and registry images.

An image is opened as an :class:`ImageContent` (its identity, its config's
``diff_ids`` and a way to stream each layer), its layers are applied into a
private temporary directory (:mod:`gate.sbom._layers`, only the files the
cataloguers read), and that directory is catalogued like a root filesystem.
The directory is removed afterwards, whatever happens.

Locations, as scans name them (``TargetKind.IMAGE``):

* ``oci:<dir>`` or ``oci:<dir>:<name>`` -- an OCI image layout; ``<name>``
  is a tag or reference of its ``index.json`` (needed when it holds several);
* ``docker-archive:<file.tar>`` -- ``docker save`` output (also the OCI
  layout docker 25+ writes alongside ``manifest.json``);
* anything else -- a registry reference ``[registry/]repo[:tag][@digest]``
  (``docker://`` and ``registry:`` prefixes allowed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from gate.config import RegistrySettings
from gate.errors import InvalidArgument, Unsupported
from gate.model import CONTROL_CHARACTER, ArtifactKind, TargetKind
from gate.sbom._fs import Limits
from gate.sbom._generate import Progress, generate
from gate.sbom._layers import LayerWriter, UnsafeArchive, normalise_member, private_directory
from gate.sbom._result import GeneratedSbom, Subject
from gate.sbom._types import SbomWarning, shown
from gate.sbom._walk import read_by_cataloguers

_FIELD = "target.location"
_MAX_CONFIG_BYTES = 16 * 1024 * 1024
_MAX_ARCHIVE_JSON_BYTES = 4 * 1024 * 1024
_LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)
_NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
# Names in an archive or a layout are untrusted: each bad one is a warning, up to this many.
_MAX_NAME_WARNINGS = 5
# Images and names listed in the error refusing an archive or layout of several images.
_MAX_LISTED = 5

LayerOpener = Callable[[], contextlib.AbstractContextManager[BinaryIO]]


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of an image: how to name it, its size (0 if unknown), its diff_id, and a way to read it."""

    label: str
    size: int
    diff_id: str
    open: LayerOpener


@dataclass(frozen=True, slots=True)
class ImageContent:
    """What an SBOM of an image needs: its identity and its layers in order.

    Attributes:
        name: The repository (``registry.example/team/app``) or, lacking one, the file or directory name.
        tag: The tag, if the location named one.
        digest: The manifest (or index) digest the location resolves to; for a
            classic docker-archive, which carries no manifest, the image ID (config digest).
        config_digest: The image configuration's digest (the image ID).
        layers: The layers, bottom first.
        warnings: What the caller should know about the identity.
    """

    name: str
    tag: str
    digest: str
    config_digest: str
    layers: tuple[Layer, ...]
    warnings: tuple[SbomWarning, ...] = ()

    @property
    def subject(self) -> Subject:
        """The SBOM subject: the image by its digest, tagged if a tag is known."""
        return Subject(self.name, self.digest, ArtifactKind.IMAGE, version=self.tag)


@dataclass(frozen=True, slots=True)
class ImageLocation:
    """A parsed image location: ``kind`` is ``oci``, ``docker-archive`` or ``registry``."""

    kind: str
    path: str
    name: str = ""


def parse_location(location: str) -> ImageLocation:
    """Split an image location into its kind, path or reference, and the name within a layout.

    ``oci:<dir>:<name>`` is told from a directory with a colon in its name by
    checking which one exists.

    Raises:
        InvalidArgument: an empty location or path.
    """
    if not location.strip():
        raise InvalidArgument(_FIELD, "required, got an empty string")
    if location.startswith("oci:"):
        rest = location.removeprefix("oci:")
        path, name = rest, ""
        if not Path(rest).exists() and ":" in rest:
            # The name may itself hold colons (registry:port/repo:tag): split at the
            # first colon that leaves an existing directory before it.
            splits = [i for i, char in enumerate(rest) if char == ":"]
            at = next((i for i in splits if Path(rest[:i]).is_dir()), splits[-1])
            path, name = rest[:at], rest[at + 1 :]
        if not path:
            raise InvalidArgument(_FIELD, f"expected oci:<dir>[:<name>], got {location!r}")
        return ImageLocation("oci", path, name)
    if location.startswith("docker-archive:"):
        path = location.removeprefix("docker-archive:")
        if not path:
            raise InvalidArgument(_FIELD, f"expected docker-archive:<file.tar>, got {location!r}")
        return ImageLocation("docker-archive", path)
    for prefix in ("docker://", "registry:"):
        location = location.removeprefix(prefix)
    return ImageLocation("registry", location)


def _diff_ids(config: bytes, where: str, layer_count: int) -> tuple[str, ...]:
    try:
        document = json.loads(config)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(_FIELD, f"{where}: image configuration is not JSON: {exc}") from None
    rootfs = document.get("rootfs") if isinstance(document, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidArgument(_FIELD, f"{where}: image configuration has no rootfs.diff_ids list")
    if len(ids) != layer_count:
        raise InvalidArgument(
            _FIELD, f"{where}: image configuration lists {len(ids)} diff_ids for {layer_count} layers"
        )
    return tuple(ids)


# --- OCI layouts and registries (gate.oci) -----------------------------------------------------


def from_source(source: Any, ref: Any, *, name: str, tag: str, platform: str, limits: Limits) -> ImageContent:
    """The image ``ref`` names in a :class:`gate.oci.ImageSource` (an OCI layout or a registry).

    Args:
        source: The image source.
        ref: The :class:`gate.oci.ImageRef` to read.
        name: The repository to name the image by.
        tag: The tag to record, if any.
        platform: The platform to pick from an index (``linux/amd64``).
        limits: Caps (the largest layer blob is ``limits.max_unpacked_bytes``).

    Raises:
        gate.errors.EvidenceError: missing or malformed content, digest mismatches.
        gate.errors.InfrastructureError: the registry failed.
        Unsupported: a layer media type that is not a tar.
    """
    from gate.oci import ImageManifest

    top = source.resolve(ref)
    manifest = source.image_manifest(ref.with_digest(top.digest), platform=platform)
    assert isinstance(manifest, ImageManifest)
    where = f"image {name}@{top.digest}"
    for index, layer in enumerate(manifest.layers):
        if layer.media_type not in _LAYER_TYPES:
            raise Unsupported(
                f"layers of type {layer.media_type!r}", f"{where}: layer {index + 1} is not a tar layer"
            )
    config = source.read_blob(ref, manifest.config, _MAX_CONFIG_BYTES)
    diff_ids = _diff_ids(config, where, len(manifest.layers))

    def opener(descriptor: Any) -> LayerOpener:
        return lambda: contextlib.closing(source.open_blob(ref, descriptor, limits.max_unpacked_bytes))

    layers = tuple(
        Layer(f"layer {i + 1} ({d.digest})", d.size, diff_ids[i], opener(d))
        for i, d in enumerate(manifest.layers)
    )
    return ImageContent(name, tag, top.digest, manifest.config.digest, layers)


def open_oci_layout(path: Path, name_in_layout: str, *, platform: str, limits: Limits) -> ImageContent:
    """The image of an OCI image layout directory (the only one, or the one named ``name_in_layout``).

    Raises:
        InvalidArgument: not a layout, or several images and no name given.
        gate.errors.NotFound: the name is not in ``index.json``.
    """
    from gate.oci import ImageRef, OciLayout

    layout = OciLayout(path)
    entries = layout.index().manifests
    if name_in_layout:
        ref = ImageRef("oci-layout", path.name or "image", tag=name_in_layout)
        descriptor = layout.resolve(ref)
    else:
        if len({e.digest for e in entries}) != 1:
            # Named by their ref.name when it is a name (a hostile one is no part of the message).
            names = sorted(
                {
                    e.annotations[_NAME_ANNOTATIONS[1]]
                    if _image_name(e.annotations.get(_NAME_ANNOTATIONS[1])) is not None
                    else e.digest
                    for e in entries
                }
            )
            raise InvalidArgument(
                _FIELD,
                f"the OCI layout {path} holds {len(names)} images ({_listed(names, ', ') or 'none'}); "
                "name one as oci:<dir>:<name>",
            )
        descriptor = entries[0]
        ref = ImageRef("oci-layout", path.name or "image", digest=descriptor.digest)
    index = next((i for i, e in enumerate(entries) if e == descriptor), None)
    where = f"index.json manifests[{index}]" if index is not None else f"index.json entry {descriptor.digest}"
    named = _Names(path.name or str(path))
    for key in _NAME_ANNOTATIONS:
        if key in descriptor.annotations:
            named.add(descriptor.annotations[key], f"{where}.annotations[{key!r}]")
    repository, tag = named.first
    if not repository:
        repository = path.resolve().name or "image"
        tag = tag or name_in_layout
    image = from_source(
        layout, ref.with_digest(descriptor.digest), name=repository, tag=tag, platform=platform, limits=limits
    )
    return replace(image, warnings=(*named.warnings, *image.warnings))


def _image_name(value: object) -> tuple[str, str] | None:
    """Repository and tag of a name an archive or a layout gives its image (``registry/repo:tag``,
    or a bare tag as ``org.opencontainers.image.ref.name`` often is), or None when it is not one.

    The names are the archive's word, not the caller's: anything but a valid reference (a
    number, a control character, a megabyte of text) must not become the image's name.
    """
    from gate.oci import ImageRef

    if not isinstance(value, str) or CONTROL_CHARACTER.search(value) is not None:
        # The reference grammar's "$" also matches before a final line feed: checked here.
        return None
    repository, tag = _split_name(value)
    try:
        if repository:
            ImageRef.parse(value, field="image name")
        else:
            ImageRef("oci-layout", "image").with_tag(tag)
    except InvalidArgument:
        return None
    return repository, tag


def _kind_of(value: object) -> str:
    if isinstance(value, str):
        return shown(value)  # escaped and cut: a hostile name may be megabytes long
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "an object" if isinstance(value, dict) else "an array"


def _listed(names: list[str], separator: str) -> str:
    more = f"{separator}and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return separator.join(names[:_MAX_LISTED]) + more


class _Names:
    """The valid image names of an archive or a layout, and a warning for each other one."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.names: list[tuple[str, str]] = []
        self.warnings: list[SbomWarning] = []
        self.refused = 0

    def add(self, value: object, where: str) -> None:
        name = _image_name(value)
        if name is not None:
            self.names.append(name)
            return
        self.refused += 1
        if self.refused <= _MAX_NAME_WARNINGS:
            self.warn(
                f"{where}: expected an image reference, got {_kind_of(value)}; not used to name the image"
            )

    def warn(self, message: str) -> None:
        self.warnings.append(SbomWarning(self.label, message))

    def done(self, where: str) -> None:
        if self.refused > _MAX_NAME_WARNINGS:
            self.warn(
                f"{where}: {self.refused - _MAX_NAME_WARNINGS} more entries that are not image references"
            )

    @property
    def first(self) -> tuple[str, str]:
        """The first valid name as repository and tag (``("", "")`` for none)."""
        return self.names[0] if self.names else ("", "")


def _split_name(reference: str) -> tuple[str, str]:
    """``registry/repo:tag`` into repository and tag; a bare tag gives no repository."""
    if not reference:
        return "", ""
    reference = reference.split("@", 1)[0]
    slash, colon = reference.rfind("/"), reference.rfind(":")
    if colon > slash:
        repository, tag = reference[:colon], reference[colon + 1 :]
    else:
        repository, tag = reference, ""
    if "/" not in repository and tag == "":
        # Just a tag (as ``org.opencontainers.image.ref.name`` often is).
        return "", repository
    return repository, tag


@contextlib.contextmanager
def open_registry_image(
    reference: str, settings: RegistrySettings, *, platform: str, limits: Limits
) -> Iterator[ImageContent]:
    """The image a registry reference names, with the client open while the context lasts.

    Credentials come from ``settings.docker_config`` (else ``$DOCKER_CONFIG/config.json``);
    ``settings.insecure`` hosts are reached over plain HTTP.

    Raises:
        InvalidArgument: a malformed reference.
        gate.oci.RegistryError: the registry failed (an InfrastructureError).
    """
    from gate.oci import Credentials, ImageRef, RegistryClient

    ref = ImageRef.parse(reference, field=_FIELD)
    config_file = settings.docker_config
    if config_file is None and os.environ.get("DOCKER_CONFIG"):
        config_file = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    credentials = (
        Credentials.from_docker_config(config_file)
        if config_file is not None and config_file.is_file()
        else Credentials.anonymous()
    )
    client = RegistryClient(
        credentials,
        timeout=settings.timeout,
        tls_verify=str(settings.ca_file) if settings.ca_file else True,
        plain_http_hosts=settings.insecure,
    )
    with client:
        yield from_source(client, ref, name=ref.name, tag=ref.tag or "", platform=platform, limits=limits)


@contextlib.contextmanager
def open_image(
    location: ImageLocation, path: Path | None, settings: RegistrySettings, *, platform: str, limits: Limits
) -> Iterator[ImageContent]:
    """Open the image at a parsed location (``path``: the checked local path of a layout or archive)."""
    if location.kind == "registry":
        with open_registry_image(location.path, settings, platform=platform, limits=limits) as image:
            yield image
        return
    if path is None:
        raise InvalidArgument(_FIELD, f"a local path is required for {location.kind} images")
    if location.kind == "oci":
        if not path.is_dir():
            raise InvalidArgument(_FIELD, f"{path} is not a directory (an OCI image layout)")
        yield open_oci_layout(path, location.name, platform=platform, limits=limits)
        return
    if not path.is_file():
        raise InvalidArgument(_FIELD, f"{path} is not a file (a docker-archive tar)")
    with open_docker_archive(path, limits=limits) as image:
        yield image


# --- docker-archive ----------------------------------------------------------------------------


class _Archive:
    """The members of a ``docker save`` tar, by normalised name, read without extracting anything."""

    def __init__(self, tar: tarfile.TarFile, label: str, limits: Limits) -> None:
        self.tar = tar
        self.label = label
        self.members: dict[str, tarfile.TarInfo] = {}
        total = 0
        for count, member in enumerate(tar, start=1):
            if count > limits.max_unpacked_entries:
                raise UnsafeArchive(label, member.name, f"more than {limits.max_unpacked_entries} members")
            # Listing a compressed archive decompresses it; its declared sizes are capped like layers.
            total += max(member.size, 0)
            if total > limits.max_unpacked_bytes:
                raise UnsafeArchive(
                    label, member.name, f"members larger than {limits.max_unpacked_bytes} bytes"
                )
            self.members[normalise_member(label, member.name)] = member

    def open(self, name: str) -> BinaryIO:
        member = self.members.get(normalise_member(self.label, name))
        if member is None:
            raise InvalidArgument(_FIELD, f"{self.label}: {name!r} is listed but not in the archive")
        try:
            # extractfile follows links between members inside the tar; nothing touches the disk.
            handle = self.tar.extractfile(member)
        except (KeyError, tarfile.TarError) as exc:
            raise InvalidArgument(_FIELD, f"{self.label}: {name!r} cannot be read: {exc}") from None
        if handle is None:
            raise InvalidArgument(_FIELD, f"{self.label}: {name!r} is not a file")
        return handle  # type: ignore[return-value]

    def read(self, name: str, cap: int) -> bytes:
        with self.open(name) as handle:
            data = handle.read(cap + 1)
        if len(data) > cap:
            raise InvalidArgument(_FIELD, f"{self.label}: {name!r} is larger than {cap} bytes")
        return data

    def json(self, name: str) -> Any:
        raw = self.read(name, _MAX_ARCHIVE_JSON_BYTES)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArgument(_FIELD, f"{self.label}: {name} is not JSON: {exc}") from None


@contextlib.contextmanager
def open_docker_archive(path: Path, *, limits: Limits) -> Iterator[ImageContent]:
    """The image of a ``docker save`` tar (one image per archive), open while the context lasts.

    Raises:
        InvalidArgument: not a tar, no or a malformed ``manifest.json``, several
            images, a missing member, a config whose digest is not its name.
    """
    label = path.name
    try:
        # "r:*" also reads ``docker save | gzip`` output, more slowly (members are read by seeking).
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 -- closed by contextlib.closing below
    except (tarfile.TarError, OSError) as exc:
        raise InvalidArgument(_FIELD, f"{path}: not a readable tar archive: {exc}") from None
    with contextlib.closing(tar):
        try:
            archive = _Archive(tar, label, limits)
            yield _docker_image(archive, path)
        except tarfile.TarError as exc:
            raise InvalidArgument(_FIELD, f"{path}: damaged tar archive: {exc}") from None


def _repo_tags(entry: Mapping[str, Any], label: str, index: int) -> _Names:
    """An entry's ``RepoTags``: the names that are image references, and a warning for each other
    entry (the field is optional, and untrusted: the image is named by its digest anyway)."""
    names = _Names(label)
    where = f"manifest.json[{index}].RepoTags"
    tags = entry.get("RepoTags")
    if tags is None:  # an untagged image
        return names
    if not isinstance(tags, list):
        names.warn(
            f"{where}: expected a list of image references, got {_kind_of(tags)}; not used to name the image"
        )
        return names
    for position, tag in enumerate(tags):
        names.add(tag, f"{where}[{position}]")
    names.done(where)
    return names


def _shown_tags(entry: Mapping[str, Any]) -> str:
    tags = entry.get("RepoTags")
    valid = [t for t in tags if _image_name(t) is not None] if isinstance(tags, list) else []
    return _listed(valid, ", ") or "<untagged>"


def _docker_image(archive: _Archive, path: Path) -> ImageContent:
    label = archive.label
    manifest = archive.json("manifest.json")
    if not isinstance(manifest, list) or not manifest or not all(isinstance(m, dict) for m in manifest):
        raise InvalidArgument(_FIELD, f"{label}: manifest.json is not a non-empty list of images")
    if len(manifest) > 1:
        # Only the names that are image references are shown: the rest could be anything.
        tags = [_shown_tags(m) for m in manifest]
        raise InvalidArgument(
            _FIELD,
            f"{label}: holds {len(manifest)} images ({_listed(tags, '; ')}); save one image per archive",
        )
    entry = manifest[0]
    config_name, layer_names = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise InvalidArgument(_FIELD, f"{label}: manifest.json entry lacks Config or Layers")
    if not all(isinstance(n, str) for n in layer_names):
        raise InvalidArgument(_FIELD, f"{label}: manifest.json Layers must be file names")
    config = archive.read(config_name, _MAX_CONFIG_BYTES)
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    stem = PurePosixPath(config_name).name.removesuffix(".json")
    if len(stem) == 64 and stem != config_digest.removeprefix("sha256:"):
        raise InvalidArgument(
            _FIELD, f"{label}: {config_name} does not hash to its name (got {config_digest})"
        )
    diff_ids = _diff_ids(config, label, len(layer_names))
    names = _repo_tags(entry, label, 0)
    repository, tag = names.first
    digest, warnings = _archive_manifest_digest(archive, config_digest)

    def opener(name: str) -> LayerOpener:
        return lambda: contextlib.closing(archive.open(name))

    layers = tuple(
        Layer(
            f"layer {i + 1} ({n})",
            archive.members[normalise_member(label, n)].size
            if normalise_member(label, n) in archive.members
            else 0,
            diff_ids[i],
            opener(n),
        )
        for i, n in enumerate(layer_names)
    )
    return ImageContent(
        repository or path.name.removesuffix(".tar"),
        tag,
        digest,
        config_digest,
        layers,
        (*names.warnings, *warnings),
    )


def _archive_manifest_digest(archive: _Archive, config_digest: str) -> tuple[str, list[SbomWarning]]:
    """The digest of the ``index.json`` entry whose image has the config ``config_digest``."""
    from gate.oci import ImageIndex, parse_manifest

    if "index.json" not in archive.members:
        note = "a classic docker-archive has no image manifest: the image ID (config digest) names it"
        return config_digest, [SbomWarning(archive.label, note)]
    index = parse_manifest(
        archive.read("index.json", _MAX_ARCHIVE_JSON_BYTES), where=f"{archive.label}: index.json"
    )
    if not isinstance(index, ImageIndex):
        raise InvalidArgument(_FIELD, f"{archive.label}: index.json is not an image index")
    for top in index.manifests:
        pending = [top]
        for _ in range(3):  # an index of manifests, or of indexes of manifests
            following: list[Any] = []
            for descriptor in pending:
                found = _archive_blob_manifest(archive, descriptor.digest)
                if found is None:
                    continue
                if isinstance(found, ImageIndex):
                    following.extend(found.manifests)
                elif found.config.digest == config_digest:
                    return top.digest, []
            pending = following
    note = "index.json names no manifest of this image's config: the image ID (config digest) names it"
    return config_digest, [SbomWarning(archive.label, note)]


def _archive_blob_manifest(archive: _Archive, digest: str) -> Any:
    from gate.oci import parse_digest, parse_manifest

    algorithm, encoded = parse_digest(digest)
    name = f"blobs/{algorithm}/{encoded}"
    if name not in archive.members:
        return None
    return parse_manifest(
        archive.read(name, _MAX_ARCHIVE_JSON_BYTES), where=f"{archive.label}: {name}", digest=digest
    )


# --- generation ---------------------------------------------------------------------------------


def generate_image(
    image: ImageContent,
    *,
    subject: Subject | None = None,
    progress: Progress | None = None,
    limits: Limits | None = None,
    timestamp: datetime | None = None,
    strict: bool = False,
) -> GeneratedSbom:
    """Apply the image's layers in a private temporary directory and inventory the result.

    Only what the cataloguers read is extracted (package databases,
    os-release, Python metadata, lock files, jars, executables); links and
    directories are kept so that paths resolve as in the container.

    Args:
        image: The opened image.
        subject: The artifact to name (default: the image by its digest).
        progress: Called with a stage and the fraction done; unpacking takes the first half.
        limits: Caps on decompressed bytes, members, layers and file sizes.
        timestamp: The document timestamp; give one for byte-identical output.
        strict: Raise on the first unreadable input instead of a warning.

    Raises:
        UnsafeArchive: a hostile or damaged layer (the layer and member are named).
    """
    limits = limits or Limits()
    total = sum(layer.size for layer in image.layers) or len(image.layers) or 1
    done = 0

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    with private_directory() as root:
        writer = LayerWriter(root, limits, read_by_cataloguers)
        for index, layer in enumerate(image.layers):
            report(f"unpacking {layer.label}, {index + 1} of {len(image.layers)}", 0.5 * done / total)
            with layer.open() as stream:
                writer.apply(stream, layer.label, layer.diff_id)
                # Read to the end so that a digest-verifying stream checks the whole blob.
                while stream.read(1024 * 1024):
                    pass
            done += layer.size or 1
        for warning in writer.warnings:
            if strict:
                raise UnsafeArchive(warning.path, "", warning.message)
        inner = (lambda stage, fraction: report(stage, 0.5 + 0.5 * fraction)) if progress else None
        sbom = generate(
            root,
            subject=subject or image.subject,
            progress=inner,
            limits=limits,
            timestamp=timestamp,
            strict=strict,
        )
    return replace(
        sbom,
        target_kind=TargetKind.IMAGE,
        warnings=(*image.warnings, *writer.warnings, *sbom.warnings),
    )
