"""Regenerate gate's gRPC stubs from ``proto/gate/v1/*.proto``.

Usage (from the repository root, with the ``dev`` extra installed)::

    python proto/generate.py          # rewrite gate/v1/*_pb2*.py[i]
    python proto/generate.py --check  # exit 1 if the committed stubs drifted

The stubs are committed so that installing gate needs no code generation; the
tool versions are pinned in ``pyproject.toml`` (extra ``dev``) so that the
output is reproducible byte for byte.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE_DIR = Path("gate") / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
INIT_TEXT = '"""Generated gRPC stubs of the gate.v1 API (see proto/generate.py). Do not edit."""\n'


def _plugin(name: str) -> str:
    # The plug-ins are console scripts of mypy-protobuf, installed beside the
    # interpreter that runs this script.
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        sys.exit(f"generate.py: {name} not found; install the dev extra: pip install -e '.[dev]'")
    return found


def generate(out_dir: Path) -> None:
    """Write the generated modules for every proto file under ``out_dir/gate/v1``."""
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "gate" / "v1").glob("*.proto"))
    (out_dir / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    subprocess.run(cmd, check=True, cwd=PROTO_DIR)
    (out_dir / PACKAGE_DIR / "__init__.py").write_text(INIT_TEXT)
    (out_dir / PACKAGE_DIR / "py.typed").write_text("")


def _generated_files(base: Path) -> set[str]:
    folder = base / PACKAGE_DIR
    return {p.name for p in folder.iterdir() if p.name.endswith(GENERATED_SUFFIXES)} | {"__init__.py"}


def check() -> list[str]:
    """Return the names of committed stub files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        names = _generated_files(fresh) | _generated_files(ROOT)
        return sorted(
            name
            for name in names
            if not (ROOT / PACKAGE_DIR / name).exists()
            or not (fresh / PACKAGE_DIR / name).exists()
            or not filecmp.cmp(ROOT / PACKAGE_DIR / name, fresh / PACKAGE_DIR / name, shallow=False)
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 when found")
    args = parser.parse_args()
    if args.check:
        drift = check()
        if drift:
            print("generated stubs differ from proto/: " + ", ".join(drift))
            print("run: python proto/generate.py")
            return 1
        print("generated stubs match proto/")
        return 0
    for stale in (ROOT / PACKAGE_DIR).glob("*_pb2*.py*") if (ROOT / PACKAGE_DIR).exists() else []:
        stale.unlink()
    generate(ROOT)
    print(f"wrote {ROOT / PACKAGE_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
