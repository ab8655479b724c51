"""Lock and requirement files: npm, Yarn, poetry, uv, Pipenv, pip requirements, go.mod."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gate.sbom import FoundComponent, GeneratedSbom, Hash, Scope, Subject, generate
from gate.sbom._npm import package_lock
from gate.sbom._python_locks import poetry, requirements
from gate.sbom._types import MalformedInput

from .conftest import ASSETS, FIXED_TIME


def named(sbom: GeneratedSbom) -> dict[str, FoundComponent]:
    return {c.component.purl.split("?")[0]: c for c in sbom.components}


def test_package_lock_v3_resolves_nested_node_modules_first(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    found = named(generate_asset("npm-v3"))
    assert len(found) == 11
    # lru-cache sees its own nested yallist 4, not the hoisted yallist 3.
    assert found["pkg:npm/lru-cache@6.0.0"].depends_on == (found["pkg:npm/yallist@4.0.0"].ref,)
    assert found["pkg:npm/react@18.2.0"].depends_on == (found["pkg:npm/loose-envify@1.4.0"].ref,)


def test_package_lock_marks_dev_and_optional_packages(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    found = named(generate_asset("npm-v3"))
    assert found["pkg:npm/typescript@5.2.2"].scope is Scope.EXCLUDED
    assert found["pkg:npm/%40esbuild/linux-x64@0.19.5"].scope is Scope.OPTIONAL
    assert found["pkg:npm/react@18.2.0"].scope is Scope.REQUIRED


def test_package_lock_root_is_an_application_with_scoped_names_split(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    found = named(generate_asset("npm-v3"))
    root = found["pkg:npm/web-frontend@1.4.0"]
    assert root.component.type == "application"
    assert len(root.depends_on) == 6
    scoped = found["pkg:npm/%40tanstack/query-core@5.8.1"].component
    assert (scoped.group, scoped.name, scoped.licenses) == ("@tanstack", "query-core", ("MIT",))


def test_package_lock_integrity_becomes_a_sha512_hash(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    react = named(generate_asset("npm-v3"))["pkg:npm/react@18.2.0"]
    lock = json.loads((ASSETS / "npm-v3" / "package-lock.json").read_text())
    integrity = lock["packages"]["node_modules/react"]["integrity"]
    assert react.hashes == (Hash("SHA-512", base64.b64decode(integrity.removeprefix("sha512-")).hex()),)


def test_package_lock_v1_of_the_shared_trivy_fixture(subject: Subject) -> None:
    shared = ASSETS.parents[2] / ".." / "shared" / "fixtures" / "scanners" / "inputs" / "trivy-fs" / "npm"
    text = (shared / "package-lock.json").read_text()
    found = package_lock("package-lock.json", text)
    by_name = {c.component.name: c for c in found.components}
    document = json.loads(text)
    assert set(by_name) == set(document["dependencies"])
    loose = by_name["loose-envify"]
    assert loose.depends_on == (by_name["js-tokens"].ref,)
    assert by_name["asap"].hashes[0].alg == "SHA-1"


def test_package_lock_v1_aliases_and_nested_dependencies() -> None:
    text = json.dumps(
        {
            "name": "svc",
            "version": "2.0.0",
            "lockfileVersion": 1,
            "dependencies": {
                "debug": {
                    "version": "2.6.9",
                    "requires": {"ms": "2.0.0"},
                    "dependencies": {"ms": {"version": "2.0.0"}},
                },
                "ms": {"version": "2.1.3"},
                "old-lodash": {"version": "npm:lodash@4.17.21", "dev": True},
                "local": {"version": "file:../local"},
            },
        }
    )
    found = {c.component.purl: c for c in package_lock("package-lock.json", text).components}
    assert set(found) == {
        "pkg:npm/debug@2.6.9",
        "pkg:npm/ms@2.0.0",
        "pkg:npm/ms@2.1.3",
        "pkg:npm/lodash@4.17.21",
        "pkg:npm/svc@2.0.0",
    }
    assert found["pkg:npm/debug@2.6.9"].depends_on == (found["pkg:npm/ms@2.0.0"].ref,)
    assert found["pkg:npm/lodash@4.17.21"].scope is Scope.EXCLUDED


def test_yarn_v1_lock_gives_the_graph_and_integrity(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    found = named(generate_asset("yarn-v1"))
    code_frame = found["pkg:npm/%40babel/code-frame@7.22.13"]
    assert set(code_frame.depends_on) == {
        found["pkg:npm/%40babel/highlight@7.22.20"].ref,
        found["pkg:npm/chalk@2.4.2"].ref,
    }
    assert found["pkg:npm/escape-string-regexp@1.0.5"].hashes[0].alg == "SHA-1"


def test_yarn_berry_lock_workspace_is_the_application(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    found = named(generate_asset("yarn-berry"))
    app = found["pkg:npm/api-server@0.0.0-use.local"]
    assert app.component.type == "application"
    assert set(app.depends_on) == {found["pkg:npm/%40types/node@20.8.10"].ref, found["pkg:npm/ms@2.1.3"].ref}
    assert found["pkg:npm/%40types/node@20.8.10"].depends_on == (found["pkg:npm/undici-types@5.26.5"].ref,)
    assert found["pkg:npm/ms@2.1.3"].hashes == ()  # Berry checksums hash Yarn's zip, not the tarball


def test_poetry_lock_graph_groups_and_normalised_names(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    found = named(generate_asset("poetry"))
    assert set(found) == {
        "pkg:pypi/anyio@4.6.2.post1",
        "pkg:pypi/idna@3.10",
        "pkg:pypi/iniconfig@2.0.0",
        "pkg:pypi/pytest@8.3.3",
        "pkg:pypi/sniffio@1.3.1",
    }
    assert found["pkg:pypi/sniffio@1.3.1"].component.name == "Sniffio"
    assert set(found["pkg:pypi/anyio@4.6.2.post1"].depends_on) == {
        found["pkg:pypi/idna@3.10"].ref,
        found["pkg:pypi/sniffio@1.3.1"].ref,
    }
    # colorama is a win32-only dependency and is not in the lock.
    assert found["pkg:pypi/pytest@8.3.3"].depends_on == (found["pkg:pypi/iniconfig@2.0.0"].ref,)
    assert found["pkg:pypi/pytest@8.3.3"].scope is Scope.EXCLUDED
    assert found["pkg:pypi/anyio@4.6.2.post1"].scope is Scope.REQUIRED


def test_poetry_lock_1x_category_dev_is_excluded() -> None:
    text = '[[package]]\nname = "black"\nversion = "23.1.0"\ncategory = "dev"\noptional = false\n'
    (black,) = poetry("poetry.lock", text).components
    assert black.scope is Scope.EXCLUDED


def test_uv_lock_project_dev_dependencies_and_sdist_hashes(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    found = named(generate_asset("uv"))
    project = found["pkg:pypi/ledger-service@0.3.0"]
    assert project.component.type == "application"
    assert set(project.depends_on) == {
        found["pkg:pypi/requests@2.32.3"].ref,
        found["pkg:pypi/iniconfig@2.0.0"].ref,
    }
    assert found["pkg:pypi/iniconfig@2.0.0"].scope is Scope.EXCLUDED
    assert len(found["pkg:pypi/requests@2.32.3"].depends_on) == 4
    assert found["pkg:pypi/idna@3.10"].hashes == (
        Hash("SHA-256", "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9"),
    )


def test_pipfile_lock_default_and_develop(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    found = named(generate_asset("pipenv"))
    assert set(found) == {"pkg:pypi/flask@3.0.3", "pkg:pypi/itsdangerous@2.2.0", "pkg:pypi/pytest@8.3.3"}
    assert found["pkg:pypi/pytest@8.3.3"].scope is Scope.EXCLUDED
    assert found["pkg:pypi/flask@3.0.3"].hashes[0].alg == "SHA-256"


def test_requirements_files_keep_pinned_lines_only(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    found = named(generate_asset("requirements"))
    assert set(found) == {
        "pkg:pypi/django@5.1.3",
        "pkg:pypi/asgiref@3.8.1",
        "pkg:pypi/sqlparse@0.5.2",
        "pkg:pypi/psycopg@3.2.3",
        "pkg:pypi/typing-extensions@4.12.2",
    }
    django = found["pkg:pypi/django@5.1.3"]
    assert django.hashes == (
        Hash("SHA-256", "8b38a9a12da3ae00cb0ba72da985ec4b14de6345046b1e174b1fd7254398f818"),
    )
    assert django.path == "requirements.txt"
    assert found["pkg:pypi/typing-extensions@4.12.2"].path == "requirements-base.txt"


def test_requirements_file_with_a_broken_line_names_file_and_line() -> None:
    with pytest.raises(MalformedInput, match=r"^requirements\.txt:2: not a requirement"):
        requirements("requirements.txt", "flask==3.0.3\nthis is (not valid\n")


def test_go_mod_requirements_replacements_and_go_sum(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    sbom = generate_asset("go")
    found = named(sbom)
    main = found["pkg:golang/github.com/example/inventory-svc"]
    assert main.component.type == "application"
    assert main.component.name == "github.com/example/inventory-svc"
    # golang.org/x/text v0.16.0 is replaced by v0.17.0.
    assert "pkg:golang/golang.org/x/text@v0.17.0" in found
    assert "pkg:golang/golang.org/x/text@v0.16.0" not in found
    assert len(main.depends_on) == 4
    pflag = found["pkg:golang/github.com/spf13/pflag@v1.0.5"]
    assert ("gate:go:indirect", "true") in pflag.properties
    assert ("gate:go:h1", "h1:iy+VFUOCP1a+8yFto/drg2CJ5u0yRoB7fZw3DKv/JXA=") in pflag.properties


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "package-lock.json",
            '{"lockfileVersion": 3, "packages": {"": ',
            "package-lock.json:1: invalid JSON",
        ),
        (
            "package-lock.json",
            '{"packages": []}',
            "package-lock.json: packages: expected an object, got list",
        ),
        ("poetry.lock", "[[package]\nname=", "poetry.lock: invalid TOML"),
        (
            "poetry.lock",
            '[[package]]\nname = "x"\n',
            "poetry.lock: package[0].version: expected a non-empty string",
        ),
        ("uv.lock", "version = 1\npackage = 3\n", "uv.lock: 'package' must be an array of tables, got int"),
        (
            "Pipfile.lock",
            '{"default": {"flask": "==1.0"}}',
            "Pipfile.lock: default.flask: expected an object, got str",
        ),
        ("yarn.lock", "  version 1.0\n", "yarn.lock:1: indented line before any entry"),
        ("yarn.lock", '__metadata:\n  version: 8\n"a@npm:1": [\n', "yarn.lock:"),
        ("go.mod", "require (\n  a v1\n", "go.mod: unclosed 'require (' block"),
        ("go.mod", "go 1.22\n", "go.mod: no 'module' line"),
    ],
)
def test_malformed_lock_files_become_warnings_naming_the_file(
    tmp_path: Path, subject: Subject, name: str, content: str, expected: str
) -> None:
    (tmp_path / name).write_text(content)
    (tmp_path / "requirements.txt").write_text("click==8.1.7\n")
    sbom = generate(tmp_path, subject=subject, timestamp=FIXED_TIME)
    assert [c.component.purl for c in sbom.components] == ["pkg:pypi/click@8.1.7"]
    assert len(sbom.warnings) == 1
    assert f"{sbom.warnings[0].path}: {sbom.warnings[0].message}".startswith(expected)


def test_strict_generation_raises_on_the_first_malformed_file(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "poetry.lock").write_text("[[package]\n")
    with pytest.raises(MalformedInput, match=r"^poetry\.lock: invalid TOML"):
        generate(tmp_path, subject=subject, strict=True)
