"""Building providers from configuration: built-ins, a deployment's class, every error naming its key."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from gate.config import Config, ScannerProvider
from gate.errors import ConfigError
from gate.model import ScanTarget, TargetKind
from scanners import SCANNER_FOR_NAME, ScanRequest, load_providers
from scanners import ScannerProvider as Protocol

CUSTOM = "tests.unit.scanners.providers_custom"


def config(**scanners: dict[str, Any]) -> dict[str, ScannerProvider]:
    return Config.model_validate({"scanners": scanners}).scanners


def test_builtins_are_registered_explicitly() -> None:
    assert sorted(SCANNER_FOR_NAME) == ["gitleaks", "snyk", "sonarqube", "trivy"]


def test_only_enabled_providers_are_built() -> None:
    providers = load_providers(config(trivy={}, gitleaks={"enabled": False}))
    assert list(providers) == ["trivy"]
    assert isinstance(providers["trivy"], Protocol)
    assert providers["trivy"].report_format == "trivy"


def test_a_builtin_can_run_twice_under_other_names() -> None:
    providers = load_providers(
        config(**{"trivy-images": {"class": "trivy", "options": {"scanners": "vuln"}}})
    )
    assert providers["trivy-images"].name == "trivy-images"
    assert (
        f"{type(providers['trivy-images']).__module__}:{type(providers['trivy-images']).__name__}"
        == (SCANNER_FOR_NAME["trivy"])
    )


def test_a_deployment_class_is_imported_only_when_named(tmp_path: Path) -> None:
    sys.modules.pop(CUSTOM, None)
    load_providers(config(trivy={}, inventory={"enabled": False, "class": f"{CUSTOM}:FileInventoryProvider"}))
    assert CUSTOM not in sys.modules
    providers = load_providers(config(inventory={"class": f"{CUSTOM}:FileInventoryProvider"}))
    assert CUSTOM in sys.modules
    (tmp_path / "a.txt").write_text("a")
    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(tmp_path)), tmp_path)
    result = providers["inventory"].run(request, lambda _: None, threading.Event())
    assert [r["message"]["text"] for r in json.loads(result.report)["runs"][0]["results"]] == ["a.txt"]


def test_unknown_name_without_class_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_providers(config(grype={}))
    assert caught.value.key == "scanners.grype"
    assert "set class: package.module:Class" in caught.value.problem


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("not a path", "expected a built-in"),
        ("gate_nonexistent_module:Thing", "cannot import module 'gate_nonexistent_module'"),
        (f"{CUSTOM}:Missing", "has no attribute 'Missing'"),
        (f"{CUSTOM}:IMPORTED", "is not a class"),
        (
            f"{CUSTOM}:NotAProvider",
            "is not a scanner provider (missing supported_targets, report_format, version, run)",
        ),
        (
            f"{CUSTOM}:Exploding",
            "constructing Exploding failed: RuntimeError: cannot reach the licence server",
        ),
    ],
)
def test_a_bad_class_names_the_class_key(path: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_providers(config(custom={"class": path}))
    assert caught.value.key == "scanners.custom.class"
    assert problem in caught.value.problem


def test_an_unknown_option_names_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_providers(config(trivy={"options": {"scaners": "vuln"}}))
    assert caught.value.key == "scanners.trivy.options.scaners"
    assert "unknown option; this provider accepts" in caught.value.problem


def test_a_malformed_option_value_names_its_key_and_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load_providers(config(trivy={"options": {"scanners": "vuln,rootkit"}}))
    assert caught.value.key == "scanners.trivy.options.scanners"
    assert "got 'rootkit'" in caught.value.problem


def test_a_secret_option_value_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_providers(config(snyk={"options": {"token": "-leaky-token-value"}}))
    assert "leaky" not in str(caught.value)


def test_providers_survive_pickling_for_worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    monkeypatch.setenv("SNYK_TOKEN", "5f0c8e2a-token")
    built = load_providers(
        config(
            trivy={"options": {"scanners": "vuln"}},
            gitleaks={},
            snyk={},
            sonarqube={"options": {"server_url": "https://sonar.example", "token": "squ_x"}},
        )
    )
    copies = pickle.loads(pickle.dumps(built))
    assert {name: type(p) for name, p in copies.items()} == {name: type(p) for name, p in built.items()}
    assert copies["trivy"].options.items("scanners") == ("vuln",)


def test_providers_the_configuration_does_not_name_are_never_imported() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import gate.server; from scanners import load_providers; "
        "from gate.config import ScannerProvider as S; "
        "load_providers({'gitleaks': S()}); "
        "print(sorted(m for m in sys.modules if m.startswith('scanners._') and m[10:] in "
        "('trivy', 'gitleaks', 'snyk', 'sonarqube')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['scanners._gitleaks']"
