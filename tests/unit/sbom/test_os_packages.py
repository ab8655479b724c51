"""dpkg and apk databases and os-release, read from small real-world root filesystems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gate.model import TargetKind
from gate.sbom import GeneratedSbom, Scope, Subject, generate
from gate.sbom._os_release import parse

DEBIAN = "pkg:deb/debian/{}?arch=amd64&distro=debian-12"


def purls(sbom: GeneratedSbom) -> set[str]:
    return {c.component.purl for c in sbom.components if c.component.purl}


def test_dpkg_status_lists_installed_packages_only(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    sbom = generate_asset("rootfs-debian")
    names = {c.component.name for c in sbom.components if c.found_by == "dpkg"}
    assert len(names) == 12
    assert "nano" not in names  # "deinstall ok config-files" is not installed
    assert sbom.target_kind is TargetKind.ROOTFS
    assert sbom.warnings == ()


def test_dpkg_purls_keep_the_epoch_in_the_version_and_name_the_distro(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    sbom = generate_asset("rootfs-debian")
    assert DEBIAN.format("bsdutils@1:2.38.1-5%2Bdeb12u3") in purls(sbom)
    assert "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u2?arch=all&distro=debian-12" in purls(sbom)
    bsdutils = next(c for c in sbom.components if c.component.name == "bsdutils")
    assert bsdutils.component.version == "1:2.38.1-5+deb12u3"
    assert ("gate:deb:source", "util-linux") in bsdutils.properties
    assert ("gate:deb:source-version", "2.38.1-5+deb12u3") in bsdutils.properties


def test_dpkg_dependencies_follow_depends_and_pre_depends(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    sbom = generate_asset("rootfs-debian")
    ref = {c.component.name: c.ref for c in sbom.components}
    assert set(sbom.dependencies[ref["bash"]]) == {
        ref["base-files"],
        ref["debianutils"],
        ref["libc6"],
        ref["libtinfo6"],
    }
    assert set(sbom.dependencies[ref["libgcc-s1"]]) == {ref["gcc-12-base"], ref["libc6"]}


def test_dpkg_licences_come_from_machine_readable_copyright_files(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    sbom = generate_asset("rootfs-debian")
    licences = {c.component.name: c.component.licenses for c in sbom.components}
    assert licences["zlib1g"] == ("Zlib",)
    assert licences["bash"] == ("GPL-3.0-or-later", "GPL-3+ with Bison exception", "GFDL-NIV-1.3")
    assert licences["tzdata"] == ()  # public domain is no licence
    assert licences["libc6"] == ()  # free-text copyright file


def test_os_release_becomes_an_operating_system_component(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    sbom = generate_asset("rootfs-debian")
    assert sbom.operating_system is not None
    assert (sbom.operating_system.id, sbom.operating_system.version_id) == ("debian", "12")
    (os_component,) = [c for c in sbom.components if c.component.type == "operating-system"]
    assert (os_component.component.name, os_component.component.version) == ("debian", "12")
    assert os_component.ref in sbom.dependencies[sbom.subject.bom_ref]


def test_os_release_in_usr_lib_is_found_through_an_absolute_symlink(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib/os-release").write_text('ID=ubuntu\nVERSION_ID="24.04"\n')
    # Absolute links in an image point inside the image, not at the host's /usr.
    (tmp_path / "etc/os-release").symlink_to("/usr/lib/os-release")
    sbom = generate(tmp_path, subject=subject)
    assert sbom.operating_system is not None
    assert sbom.operating_system.id == "ubuntu"
    assert sbom.operating_system.distro == "ubuntu-24.04"


def test_os_release_parsing_tolerates_quotes_comments_and_garbage() -> None:
    info = parse(
        "# comment\nID='alpine'\nVERSION_ID=3.20.3\nnot a pair\n"
        'PRETTY_NAME="Alpine \\"Linux\\""\nX="unbalanced\n',
        "etc/os-release",
    )
    assert info is not None
    assert (info.id, info.version_id, info.pretty_name) == ("alpine", "3.20.3", 'Alpine "Linux"')
    assert parse("NAME=nothing\n", "etc/os-release") is None


def test_apk_database_gives_purls_licences_and_dependencies(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    sbom = generate_asset("rootfs-alpine")
    found = {c.component.name: c for c in sbom.components if c.found_by == "apk"}
    assert set(found) == {"musl", "busybox", "ca-certificates-bundle", "ssl_client"}
    assert found["musl"].component.purl == "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=3.20.3"
    assert found["ca-certificates-bundle"].component.licenses == ("MPL-2.0 AND MIT",)
    # "so:libc.musl-x86_64.so.1" is provided by musl; libssl/libcrypto are not installed.
    assert found["busybox"].depends_on == (found["musl"].ref,)
    assert sbom.dependencies[found["ssl_client"].ref] == (found["musl"].ref,)
    assert ("gate:apk:origin", "busybox") in found["ssl_client"].properties
    assert all(c.scope is Scope.REQUIRED for c in found.values())


def test_dpkg_status_d_paragraphs_are_read_like_distroless_images_keep_them(
    tmp_path: Path, subject: Subject
) -> None:
    status_d = tmp_path / "var/lib/dpkg/status.d"
    status_d.mkdir(parents=True)
    (status_d / "base").write_text(
        "Package: base-files\nVersion: 12.4+deb12u11\nArchitecture: amd64\nStatus: install ok installed\n"
    )
    (status_d / "libssl3").write_text(
        "Package: libssl3\nSource: openssl\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\n"
        "Depends: libc6 (>= 2.34)\n"
    )
    (status_d / "libssl3.md5sums").write_text("d41d8cd98f00b204e9800998ecf8427e  usr/lib/libssl.so.3\n")
    sbom = generate(tmp_path, subject=subject)
    names = sorted(c.component.name for c in sbom.components)
    assert names == ["base-files", "libssl3"]
    assert all(c.component.purl.startswith("pkg:deb/debian/") for c in sbom.components)


def test_dpkg_paragraph_without_version_is_skipped_with_a_warning(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(
        "Package: good\nStatus: install ok installed\nVersion: 1.0\n\n"
        "Package: broken\nStatus: install ok installed\n"
    )
    sbom = generate(tmp_path, subject=subject)
    assert [c.component.name for c in sbom.components] == ["good"]
    assert [(w.path, w.message) for w in sbom.warnings] == [
        ("var/lib/dpkg/status:5", "paragraph without a valid Package/Version (got 'broken')")
    ]


def test_free_text_copyright_files_give_versioned_common_licence_references(
    tmp_path: Path, subject: Subject
) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text("Package: adduser\nVersion: 3.134\nArchitecture: all\n")
    (tmp_path / "usr/share/doc/adduser").mkdir(parents=True)
    (tmp_path / "usr/share/doc/adduser/copyright").write_text(
        "This package was debianized long ago.\n\n"
        "On Debian systems, the complete text of the GNU General Public License\n"
        "version 2 can be found in /usr/share/common-licenses/GPL-2.\n"
        "An older notice points at /usr/share/common-licenses/GPL without a version.\n"
    )
    (package,) = generate(tmp_path, subject=subject).components
    assert package.component.licenses == ("GPL-2.0-only",)
