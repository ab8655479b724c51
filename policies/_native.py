"""Whether the engine's per-request modules run as native code, and building a native copy.

``pyproject.toml``'s mypyc build hook (``HATCH_BUILD_HOOK_ENABLE_MYPYC=1 pip install .``)
compiles the modules it lists into the wheel. :func:`compile_copy` compiles the same list
into a copy of the sources instead, so that tests and benchmarks can run both builds side by
side without leaving compiled modules in the checkout (where they would shadow later edits
of the ``.py`` files).
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

# What the compiled copy needs: the engine and the gate modules it imports (mypy follows them).
_COPIED = ("gate", "policies")


def compiled() -> bool:
    """Whether the engine's evaluation modules were compiled (mypyc) rather than interpreted."""
    from policies import _engine

    return str(_engine.__file__).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def hook_modules(project: Path) -> tuple[list[str], list[str]]:
    """The source files the mypyc hook compiles, and the mypy arguments it passes."""
    # Imported here, as in compile_copy: every `import policies` loads this module (for
    # compiled()), and these two functions are for tests and benchmarks only (~10 ms of imports).
    import tomllib

    data = tomllib.loads((project / "pyproject.toml").read_text())
    hook = data["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    return list(hook["include"]), list(hook.get("mypy-args", []))


def compile_copy(project: Path, target: Path, *, timeout: float = 900) -> None:
    """Copy ``gate/`` and ``policies/`` of ``project`` under ``target`` and compile the hook's modules there.

    ``target`` then goes first on ``sys.path``. Needs mypy (the dev extra), a C compiler and
    Python's headers.

    Raises:
        RuntimeError: mypyc failed (its output is in the message).
    """
    import shutil
    import subprocess
    import sys

    for name in _COPIED:
        shutil.copytree(
            project / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
        )
    files, mypy_args = hook_modules(project)
    # Without a pyproject.toml beside the copy, mypy reads no configuration: as in the hook,
    # which hides the project's while it compiles.
    done = subprocess.run(  # noqa: S603  # this interpreter's mypyc, arguments from pyproject.toml
        [sys.executable, "-m", "mypyc", *mypy_args, *files],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mypyc failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
