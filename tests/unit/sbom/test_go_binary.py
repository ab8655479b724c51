"""Go build information read from ELF files built here byte by byte."""

from __future__ import annotations

import struct
from pathlib import Path

from gate.sbom import Subject, generate
from gate.sbom._gobinary import MAGIC, catalogue

START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
END = bytes.fromhex("f932433186182072008242104116d8f2")
MODINFO = (
    "path\tgithub.com/example/tool/cmd/tool\n"
    "mod\tgithub.com/example/tool\tv1.2.3\th1:aaaa=\n"
    "dep\tgithub.com/google/uuid\tv1.6.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\n"
    "dep\tgolang.org/x/sys\tv0.20.0\th1:old=\n"
    "=>\tgolang.org/x/sys\tv0.21.0\th1:new=\n"
    "build\t-compiler=gc\n"
    "build\tGOOS=linux\n"
    "build\tvcs.revision=0123456789abcdef0123456789abcdef01234567\n"
)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def inline_blob(version: str, modinfo: str) -> bytes:
    header = MAGIC + bytes([8, 2]) + b"\0" * 16
    mod = START + modinfo.encode() + END
    return header + varint(len(version)) + version.encode() + varint(len(mod)) + mod


def elf_with_section(name: str, data: bytes) -> bytes:
    """A 64-bit little-endian ELF with a null section, ``name`` and a section-name table."""
    names = b"\0" + name.encode() + b"\0.shstrtab\0"
    data_offset = 64
    names_offset = data_offset + len(data)
    table_offset = (names_offset + len(names) + 7) & ~7
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<QQ", header, 0x20, 0, table_offset)  # no program headers; section table
    struct.pack_into("<HHHHH", header, 0x36, 56, 0, 64, 3, 2)
    body = bytearray(header) + data + names
    body += b"\0" * (table_offset - len(body))
    body += b"\0" * 64  # null section
    body += struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0x1000, data_offset, len(data), 0, 0, 16, 0)
    body += struct.pack("<IIQQQQIIQQ", 1 + len(name) + 1, 3, 0, 0, names_offset, len(names), 0, 0, 1, 0)
    return bytes(body) + b"\0" * 4096


def test_inline_build_info_gives_main_module_deps_replacements_and_stdlib(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(elf_with_section(".go.buildinfo", inline_blob("go1.22.5", MODINFO)))
    found = catalogue(str(binary), "usr/local/bin/tool", 1 << 30)
    assert found.warnings == []
    purls = {c.component.purl: c for c in found.components}
    assert set(purls) == {
        "pkg:golang/github.com/example/tool@v1.2.3",
        "pkg:golang/github.com/google/uuid@v1.6.0",
        "pkg:golang/golang.org/x/sys@v0.21.0",
        "pkg:golang/stdlib@v1.22.5",
    }
    main = purls["pkg:golang/github.com/example/tool@v1.2.3"]
    assert main.component.type == "application"
    assert len(main.depends_on) == 3
    assert ("gate:go:build:vcs.revision", "0123456789abcdef0123456789abcdef01234567") in main.properties
    assert ("gate:go:toolchain", "go1.22.5") in main.properties


def test_build_info_is_found_by_the_walk_in_executables_only(tmp_path: Path) -> None:
    data = elf_with_section(".go.buildinfo", inline_blob("go1.22.5", MODINFO))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/tool").write_bytes(data)
    (tmp_path / "bin/tool").chmod(0o755)
    (tmp_path / "data.bin").write_bytes(data)  # not executable: not inspected
    sbom = generate(tmp_path, subject=Subject("img", "sha256:" + "2" * 64))
    assert {c.path for c in sbom.components} == {"bin/tool"}


def test_string_overrunning_the_blob_is_a_warning(tmp_path: Path) -> None:
    blob = MAGIC + bytes([8, 2]) + b"\0" * 16 + varint(10_000) + b"go1.22"
    binary = tmp_path / "tool"
    binary.write_bytes(elf_with_section(".go.buildinfo", blob))
    found = catalogue(str(binary), "tool", 1 << 30)
    assert found.components == []
    assert [w.message for w in found.warnings] == [
        "corrupt Go build information: string of 10000 bytes overruns the 40-byte build-info blob"
    ]


def test_elf_without_go_build_info_gives_nothing(tmp_path: Path) -> None:
    binary = tmp_path / "c-program"
    binary.write_bytes(elf_with_section(".text", b"\x90" * 64))
    found = catalogue(str(binary), "c-program", 1 << 30)
    assert (found.components, found.warnings) == ([], [])


def test_binary_over_the_size_cap_is_not_read(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(elf_with_section(".go.buildinfo", inline_blob("go1.22.5", MODINFO)))
    assert catalogue(str(binary), "tool", 1024).components == []


def elf_with_pointer_blob(version: str, modinfo: str) -> bytes:
    """A Go < 1.18 layout: the blob holds pointers to Go string headers in a loaded segment."""
    base_offset, base_address = 0x1000, 0x400000
    mod = START + modinfo.encode() + END
    headers_at = base_address + 32
    version_at = headers_at + 32
    mod_at = version_at + len(version)
    blob = MAGIC + bytes([8, 0]) + struct.pack("<QQ", headers_at, headers_at + 16)
    segment = blob + struct.pack("<QQQQ", version_at, len(version), mod_at, len(mod)) + version.encode() + mod
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<QQ", header, 0x20, 64, 0)  # program headers right after the ELF header, no sections
    struct.pack_into("<HHHHH", header, 0x36, 56, 1, 64, 0, 0)
    program = struct.pack(
        "<IIQQQQQQ", 1, 6, base_offset, base_address, base_address, len(segment), len(segment), 0x1000
    )
    body = bytes(header) + program
    return body + b"\0" * (base_offset - len(body)) + segment + b"\0" * 4096


def test_pointer_format_build_info_of_older_go_is_read_through_the_segments(tmp_path: Path) -> None:
    binary = tmp_path / "old-tool"
    binary.write_bytes(elf_with_pointer_blob("go1.16.15", MODINFO))
    found = catalogue(str(binary), "old-tool", 1 << 30)
    assert found.warnings == []
    assert sorted(c.component.purl for c in found.components) == [
        "pkg:golang/github.com/example/tool@v1.2.3",
        "pkg:golang/github.com/google/uuid@v1.6.0",
        "pkg:golang/golang.org/x/sys@v0.21.0",
        "pkg:golang/stdlib@v1.16.15",
    ]
