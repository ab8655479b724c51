"""Building image layers (tar archives) in tests, hostile ones included."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import zstandard


@dataclass(frozen=True)
class Entry:
    """One tar member: a file (``data``), a directory, a symbolic or hard link, or a special file."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""
    mode: int = 0o644


def file(name: str, data: bytes | str = b"", mode: int = 0o644) -> Entry:
    """A regular file."""
    return Entry(name, data.encode() if isinstance(data, str) else data, mode=mode)


def directory(name: str) -> Entry:
    """A directory."""
    return Entry(name, kind=tarfile.DIRTYPE, mode=0o755)


def symlink(name: str, target: str) -> Entry:
    """A symbolic link."""
    return Entry(name, kind=tarfile.SYMTYPE, link=target)


def hardlink(name: str, target: str) -> Entry:
    """A hard link to an earlier member."""
    return Entry(name, kind=tarfile.LNKTYPE, link=target)


def tar(*entries: Entry) -> bytes:
    """An uncompressed tar holding ``entries`` in order (names are written as given, unchecked)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.kind
            info.mode = entry.mode
            info.linkname = entry.link
            if entry.kind == tarfile.REGTYPE:
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def tgz(*entries: Entry) -> bytes:
    """A gzip-compressed tar."""
    return gzip.compress(tar(*entries), mtime=0)


def tree_layer(directory_path: Path, prefix: str = "") -> bytes:
    """An uncompressed tar of a directory tree (sorted, so the bytes are reproducible)."""
    entries: list[Entry] = []
    for path in sorted(directory_path.rglob("*")):
        name = prefix + path.relative_to(directory_path).as_posix()
        if path.is_symlink():
            entries.append(symlink(name, os.readlink(path)))
        elif path.is_dir():
            entries.append(directory(name))
        else:
            entries.append(file(name, path.read_bytes(), mode=path.stat().st_mode & 0o777))
    return tar(*entries)


def diff_id(layer: bytes) -> str:
    """The diff_id of a layer: the digest of its uncompressed tar."""
    raw = gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def image_config(layers: list[bytes], diff_ids: list[str] | None = None) -> bytes:
    """A minimal image configuration for ``layers``."""
    ids = diff_ids if diff_ids is not None else [diff_id(layer) for layer in layers]
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ids}}
    return json.dumps(config, sort_keys=True).encode()


def docker_archive(
    path: Path, layers: list[bytes], repo_tags: list[str], *, oci: bool = False, config: bytes | None = None
) -> str:
    """Write a ``docker save`` tar of an image made of ``layers``; returns the image's digest.

    With ``oci`` the archive is laid out as docker 25+ writes it: blobs under
    ``blobs/sha256`` plus ``index.json``, and the digest is the manifest's;
    otherwise it is the classic layout and the digest is the config's.
    """
    config = config if config is not None else image_config(layers)
    config_hex = hashlib.sha256(config).hexdigest()
    members: list[Entry] = []
    layer_names: list[str] = []
    for layer in layers:
        layer_hex = hashlib.sha256(layer).hexdigest()
        name = f"blobs/sha256/{layer_hex}" if oci else f"{layer_hex}/layer.tar"
        layer_names.append(name)
        members.append(file(name, layer))
    config_name = f"blobs/sha256/{config_hex}" if oci else f"{config_hex}.json"
    members.append(file(config_name, config))
    manifest = [{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]
    members.append(file("manifest.json", json.dumps(manifest)))
    digest = "sha256:" + config_hex
    if oci:
        oci_manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + config_hex,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                    "size": len(layer),
                }
                for layer in layers
            ],
        }
        raw = json.dumps(oci_manifest).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        members.append(file(f"blobs/sha256/{digest.removeprefix('sha256:')}", raw))
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest,
                    "size": len(raw),
                    "annotations": {"io.containerd.image.name": repo_tags[0]} if repo_tags else {},
                }
            ],
        }
        members.append(file("index.json", json.dumps(index)))
        members.append(file("oci-layout", '{"imageLayoutVersion": "1.0.0"}'))
    path.write_bytes(tar(*members))
    return digest
