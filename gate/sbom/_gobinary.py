"""Go modules from the build information Go embeds in ELF executables (the ``\\xff Go buildinf:`` blob).

The blob sits at the start of the ``.go.buildinfo`` section (or, without
section headers, of the first writable loadable segment). Since Go 1.18 it
holds the Go version and the module information inline as varint-prefixed
strings; older binaries store pointers to Go strings elsewhere in memory, which
are mapped back to file offsets through the program headers. Every read is
bounded: headers, the blob and the strings it points at.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from typing import BinaryIO

from packageurl import PackageURL

from gate.sbom._types import ComponentType, Found, SbomWarning, component

MAGIC = b"\xff Go buildinf:"
_ELF = b"\x7fELF"
_MAX_HEADERS = 4096
_MAX_BLOB = 64 * 1024
_MAX_STRING = 4 * 1024 * 1024
_PT_LOAD = 1
_PF_W = 2


class _NotGo(Exception):
    """The file is not a Go executable with readable build information."""


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """What a Go binary says about how it was built."""

    go_version: str
    path: str
    main: tuple[str, str, str]
    deps: tuple[tuple[str, str, str], ...]
    settings: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Elf:
    little: bool
    wide: bool
    sections: list[tuple[str, int, int, int]]  # name, vaddr, offset, size
    segments: list[tuple[int, int, int, int]]  # flags, vaddr, offset, filesz


def looks_like_elf(handle: BinaryIO) -> bool:
    """True if the open file starts with the ELF magic."""
    handle.seek(0)
    return handle.read(4) == _ELF


def read_build_info(handle: BinaryIO, size: int) -> BuildInfo | None:
    """The build information of the ELF file open in ``handle`` (``size`` bytes), or None if it has none.

    Raises:
        ValueError: The file is ELF with a Go build-info blob that is corrupt.
    """
    try:
        elf = _parse_elf(handle, size)
        blob = _find_blob(handle, elf, size)
    except _NotGo:
        return None
    if blob is None:
        return None
    pointer_size, flags = blob[14], blob[15]
    if flags & 2:
        version, rest = _varint_string(blob, 32)
        modinfo, _ = _varint_string(blob, rest)
    else:
        if pointer_size not in (4, 8):
            raise ValueError(f"pointer size {pointer_size} in the build-info header")
        big = bool(flags & 1)
        version = _go_string(handle, elf, size, blob, 16, pointer_size, big)
        modinfo = _go_string(handle, elf, size, blob, 16 + pointer_size, pointer_size, big)
    if len(modinfo) >= 33 and modinfo[-17] == 0x0A:
        modinfo = modinfo[16:-16]
    return _parse_modinfo(version.decode("utf-8", "replace"), modinfo.decode("utf-8", "replace"))


def _parse_elf(handle: BinaryIO, size: int) -> _Elf:  # noqa: PLR0912 -- 32/64-bit and header-table checks
    handle.seek(0)
    ident = handle.read(64)
    if len(ident) < 52 or ident[:4] != _ELF or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise _NotGo
    wide, little = ident[4] == 2, ident[5] == 1
    end = "<" if little else ">"
    if wide:
        phoff, shoff = struct.unpack_from(end + "QQ", ident, 0x20)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(end + "HHHHH", ident, 0x36)
    else:
        phoff, shoff = struct.unpack_from(end + "II", ident, 0x1C)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(end + "HHHHH", ident, 0x2A)
    segments: list[tuple[int, int, int, int]] = []
    if 0 < phnum <= _MAX_HEADERS and phentsize >= (56 if wide else 32) and phoff + phnum * phentsize <= size:
        handle.seek(phoff)
        table = handle.read(phnum * phentsize)
        for i in range(phnum):
            base = i * phentsize
            if wide:
                p_type, p_flags, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
                    end + "IIQQQQ", table, base
                )
            else:
                p_type, p_offset, p_vaddr, _, p_filesz, _, p_flags = struct.unpack_from(
                    end + "IIIIIII", table, base
                )
            if p_type == _PT_LOAD:
                segments.append((p_flags, p_vaddr, p_offset, p_filesz))
    sections: list[tuple[str, int, int, int]] = []
    if 0 < shnum <= _MAX_HEADERS and shentsize >= (64 if wide else 40) and shoff + shnum * shentsize <= size:
        handle.seek(shoff)
        table = handle.read(shnum * shentsize)
        raw: list[tuple[int, int, int, int]] = []
        for i in range(shnum):
            base = i * shentsize
            if wide:
                name, _, _, addr, offset, length = struct.unpack_from(end + "IIQQQQ", table, base)
            else:
                name, _, _, addr, offset, length = struct.unpack_from(end + "IIIIII", table, base)
            raw.append((name, addr, offset, length))
        if shstrndx < len(raw):
            _, _, str_offset, str_size = raw[shstrndx]
            if str_offset + min(str_size, _MAX_BLOB * 4) <= size:
                handle.seek(str_offset)
                names = handle.read(min(str_size, _MAX_BLOB * 4))
                for name, addr, offset, length in raw:
                    label = (
                        names[name : names.find(b"\0", name)].decode("ascii", "replace")
                        if name < len(names)
                        else ""
                    )
                    sections.append((label, addr, offset, length))
    return _Elf(little=little, wide=wide, sections=sections, segments=segments)


def _find_blob(handle: BinaryIO, elf: _Elf, size: int) -> bytes | None:
    for label, _, offset, length in elf.sections:
        if label == ".go.buildinfo":
            handle.seek(offset)
            blob = handle.read(min(length, _MAX_BLOB))
            return blob if blob.startswith(MAGIC) and len(blob) >= 32 else None
    if elf.sections and not any(s[0] == ".go.buildinfo" for s in elf.sections):
        # Section headers are present and name no build info; Go always writes the section.
        return None
    for flags, _, offset, filesz in elf.segments:
        if flags & _PF_W and offset < size:
            handle.seek(offset)
            window = handle.read(min(filesz, _MAX_BLOB))
            for at in range(0, max(len(window) - 32, 0), 16):
                if window.startswith(MAGIC, at):
                    return window[at : at + _MAX_BLOB]
            return None
    return None


def _varint_string(blob: bytes, at: int) -> tuple[bytes, int]:
    length = 0
    shift = 0
    while True:
        if at >= len(blob) or shift > 63:
            raise ValueError("truncated length in the build-info blob")
        byte = blob[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if length > len(blob) - at:
        raise ValueError(f"string of {length} bytes overruns the {len(blob)}-byte build-info blob")
    return blob[at : at + length], at + length


def _read_virtual(handle: BinaryIO, elf: _Elf, size: int, address: int, length: int) -> bytes:
    for _, vaddr, offset, filesz in elf.segments:
        if vaddr <= address and address + length <= vaddr + filesz:
            start = offset + address - vaddr
            if start + length > size:
                break
            handle.seek(start)
            return handle.read(length)
    raise ValueError(f"address {address:#x} (+{length}) is not in a loaded segment")


def _go_string(handle: BinaryIO, elf: _Elf, size: int, blob: bytes, at: int, width: int, big: bool) -> bytes:
    end = ">" if big else "<"
    fmt = end + ("Q" if width == 8 else "I")
    pointer = struct.unpack_from(fmt, blob, at)[0]
    header = _read_virtual(handle, elf, size, pointer, 2 * width)
    data, length = struct.unpack_from(end + ("QQ" if width == 8 else "II"), header, 0)
    if length > _MAX_STRING:
        raise ValueError(f"string of {length} bytes in the build info, over the {_MAX_STRING}-byte cap")
    return _read_virtual(handle, elf, size, data, length) if length else b""


def _parse_modinfo(go_version: str, text: str) -> BuildInfo:
    path = ""
    main = ("", "", "")
    deps: list[tuple[str, str, str]] = []
    settings: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind == "path" and len(fields) > 1:
            path = fields[1]
        elif kind == "mod" and len(fields) > 2:
            main = (fields[1], fields[2], fields[3] if len(fields) > 3 else "")
        elif kind == "dep" and len(fields) > 2:
            deps.append((fields[1], fields[2], fields[3] if len(fields) > 3 else ""))
        elif kind == "=>" and len(fields) > 2 and deps:
            # Replaces the dep on the line before it.
            deps[-1] = (fields[1], fields[2], fields[3] if len(fields) > 3 else "")
        elif kind == "build" and len(fields) > 1:
            key, _, value = fields[1].partition("=")
            settings.append((key, value))
    return BuildInfo(go_version, path, main, tuple(deps), tuple(settings))


def module_purl(module: str, version: str) -> PackageURL:
    """The purl of a Go module: namespace is the path up to the last ``/``."""
    namespace, _, name = module.rpartition("/")
    return PackageURL("golang", namespace or None, name, version or None)


def catalogue(host_path: str, rel: str, max_bytes: int) -> Found:
    """Modules linked into the Go executable at ``host_path`` (``rel`` inside the root).

    Non-ELF files and ELF files without Go build information give nothing. The
    main module depends on every other module (the build information does not
    say which are direct) and on the Go standard library.
    """
    found = Found()
    try:
        fd = os.open(host_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return found
    with os.fdopen(fd, "rb") as handle:
        info_stat = os.fstat(handle.fileno())
        if not stat.S_ISREG(info_stat.st_mode) or info_stat.st_size > max_bytes or not looks_like_elf(handle):
            return found
        try:
            info = read_build_info(handle, info_stat.st_size)
        except (ValueError, struct.error) as exc:
            found.warnings.append(SbomWarning(rel, f"corrupt Go build information: {exc}"))
            return found
    if info is None:
        return found
    go = info.go_version.split()[0] if info.go_version else ""
    stdlib = None
    if go.startswith("go"):
        stdlib = component(
            PackageURL("golang", None, "stdlib", "v" + go[2:]),
            path=rel,
            found_by="go-binary",
        )
    deps = [
        component(
            module_purl(path, version),
            path=rel,
            found_by="go-binary",
            name=path,
            properties=(("gate:go:h1", checksum),) if checksum else (),
        )
        for path, version, checksum in info.deps
        if path
    ]
    module, version, _ = info.main
    main_version = "" if version in ("", "(devel)") else version
    props = [("gate:go:toolchain", info.go_version)] if info.go_version else []
    props.extend(
        (f"gate:go:build:{k}", v)
        for k, v in info.settings
        if k in ("vcs.revision", "vcs.time", "GOOS", "GOARCH")
    )
    children = [d.ref for d in deps] + ([stdlib.ref] if stdlib else [])
    if module or info.path:
        found.components.append(
            component(
                module_purl(module or info.path, main_version),
                path=rel,
                found_by="go-binary",
                name=module or info.path,
                type=ComponentType.APPLICATION,
                properties=tuple(props),
                depends_on=tuple(dict.fromkeys(children)),
            )
        )
    found.components.extend(deps)
    if stdlib:
        found.components.append(stdlib)
    return found
