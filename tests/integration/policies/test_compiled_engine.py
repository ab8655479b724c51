"""The engine as the mypyc build hook compiles it passes the engine's own tests.

mypyc compiles Python with a few semantic differences (annotations are checked at run time,
an exception variable keeps the type of its first ``except`` clause): the interpreted suite
alone would not notice a change that breaks only the compiled build the image ships.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from policies import engine_compiled
from policies._native import compile_copy, hook_modules

ROOT = Path(__file__).resolve().parents[3]

# The engine's tests: unit and Kyverno conformance, the webhook and pipeline decisions built on
# it, and the property-based parsers test (hostile input must not meet a compiled type check).
SUITES = (
    "tests/unit/policies",
    "tests/integration/policies/test_conformance.py",
    "tests/integration/policies/test_cel_conformance.py",
    "tests/integration/policies/test_exception_suite.py",
    "tests/unit/decisions",
    "tests/unit/test_webhook.py",
    "tests/unit/test_pipeline.py",
    "tests/unit/hardening/test_parsers_never_crash.py",
)

# Run in a child: the compiled copy goes first on sys.path, and the engine is imported before
# pytest adds the checkout, so every test below gets the compiled modules.
_DRIVER = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
modules = [name.removesuffix(".py").replace("/", ".") for name in sys.argv[2].split(",")]
interpreted = [m for m in modules if not importlib.import_module(m).__file__.endswith(".so")]
if interpreted:
    sys.exit(f"not compiled: {interpreted}")
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[3:]]))
"""


def test_the_checkout_runs_the_interpreted_engine() -> None:
    # A compiled module left in the checkout would shadow edits of its .py file.
    assert not engine_compiled()


def test_the_hook_compiles_existing_engine_modules() -> None:
    files, _ = hook_modules(ROOT)
    assert files, "pyproject.toml's mypyc hook lists no module"
    assert all(f.startswith("policies/") and (ROOT / f).is_file() for f in files), files


@pytest.mark.timeout(1200)
def test_the_compiled_engine_passes_the_engine_tests(tmp_path: Path) -> None:
    compile_copy(ROOT, tmp_path)
    files, _ = hook_modules(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(tmp_path), ",".join(files), *SUITES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]
