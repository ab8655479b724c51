"""Installed Python distributions: dist-info and egg-info metadata, licences, Requires-Dist."""

from __future__ import annotations

from pathlib import Path

from gate.sbom import Subject, generate, generate_python_environment

SITE = "lib/python3.11/site-packages"


def dist_info(root: Path, name: str, version: str, headers: str) -> None:
    folder = root / SITE / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n{headers}\n"
        "Long description body.\nLicense: not a header\n"
    )


def make_environment(root: Path) -> None:
    dist_info(
        root,
        "Flask",
        "3.0.3",
        "License-Expression: BSD-3-Clause\nRequires-Dist: Werkzeug>=3.0.0\n"
        'Requires-Dist: itsdangerous>=2.1.2\nRequires-Dist: asgiref>=3.2; extra == "async"\n'
        'Requires-Dist: pywin32; sys_platform == "win32"',
    )
    dist_info(
        root,
        "Werkzeug",
        "3.0.4",
        "Classifier: License :: OSI Approved :: BSD License\nClassifier: Programming Language :: Python",
    )
    dist_info(
        root,
        "itsdangerous",
        "2.2.0",
        "Classifier: License :: OSI Approved :: MIT License\n"
        "Classifier: License :: OSI Approved :: Apache Software License",
    )
    dist_info(root, "asgiref", "3.8.1", "License: BSD")
    egg = root / SITE / "legacy_pkg.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text(
        "Metadata-Version: 1.1\nName: legacy-pkg\nVersion: 0.4\nLicense: Apache 2.0\n"
    )
    (egg / "requires.txt").write_text("Flask>=2\n\n[tests]\npytest\n")
    (root / SITE / "single_file-1.0-py3.11.egg-info").write_text(
        "Metadata-Version: 1.0\nName: single-file\nVersion: 1.0\n"
    )
    (root / SITE / "broken-1.0.dist-info").mkdir()


def test_environment_lists_dist_info_and_egg_info_distributions(tmp_path: Path) -> None:
    make_environment(tmp_path)
    sbom = generate_python_environment(tmp_path, subject=Subject("env", "sha256:" + "1" * 64))
    purls = sorted(c.component.purl for c in sbom.components)
    assert purls == [
        "pkg:pypi/asgiref@3.8.1",
        "pkg:pypi/flask@3.0.3",
        "pkg:pypi/itsdangerous@2.2.0",
        "pkg:pypi/legacy-pkg@0.4",
        "pkg:pypi/single-file@1.0",
        "pkg:pypi/werkzeug@3.0.4",
    ]
    assert [(w.path, w.message) for w in sbom.warnings] == [
        (f"{SITE}/broken-1.0.dist-info", "no METADATA/PKG-INFO file; distribution skipped")
    ]


def test_licences_prefer_expression_then_classifiers_then_the_licence_field(tmp_path: Path) -> None:
    make_environment(tmp_path)
    sbom = generate_python_environment(tmp_path, subject=Subject("env", "sha256:" + "1" * 64))
    licences = {c.component.name: c.component.licenses for c in sbom.components}
    assert licences["Flask"] == ("BSD-3-Clause",)
    assert licences["Werkzeug"] == ()  # "BSD License" names a family, not one licence
    assert licences["itsdangerous"] == ("MIT", "Apache-2.0")
    assert licences["asgiref"] == ("BSD",)  # kept as a licence name
    assert licences["legacy-pkg"] == ("Apache-2.0",)


def test_requires_dist_edges_skip_extras_and_other_platforms(tmp_path: Path) -> None:
    make_environment(tmp_path)
    sbom = generate_python_environment(tmp_path, subject=Subject("env", "sha256:" + "1" * 64))
    refs = {c.component.name: c.ref for c in sbom.components}
    assert set(sbom.dependencies[refs["Flask"]]) == {refs["Werkzeug"], refs["itsdangerous"]}
    assert sbom.dependencies[refs["legacy-pkg"]] == (refs["Flask"],)


def test_directory_walk_finds_site_packages_anywhere_with_progress(tmp_path: Path) -> None:
    make_environment(tmp_path / "opt" / "venv")
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "requirements.txt").write_text("gunicorn==23.0.0\n")
    seen: list[tuple[str, float]] = []
    sbom = generate(
        tmp_path, subject=Subject("env", "sha256:" + "1" * 64), progress=lambda s, f: seen.append((s, f))
    )
    assert len(sbom.components) == 7
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    assert seen[-1] == ("done", 1.0)
    assert "lock file: srv/requirements.txt" in [stage for stage, _ in seen]
