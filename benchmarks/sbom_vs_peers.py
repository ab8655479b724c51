"""gate's native SBOM generation against syft and Trivy on the same inputs: agreement and wall time.

Inputs (built once and cached under ``~/.cache/gate-bench/``):

* ``venv``: a Python virtual environment, by default this repository's own
  ``.venv`` (about 100 installed distributions; ``--venv PATH`` for another);
* ``locks``: a directory holding a real ``frontend/package-lock.json`` (made by
  ``npm install --package-lock-only`` from the package.json below) and a real
  ``backend/poetry.lock`` (made by ``poetry lock``, poetry installed in a
  private venv of the cache), both resolved against the live registries the
  first time and kept;
* ``rootfs``: Debian bookworm by ``debootstrap --variant=minbase``.

For each input it prints the components each generator found, agreement by
normalised purl (``gate.sbom._purl_key``: epoch folded into Debian versions,
qualifiers dropped, PyPI names PEP 503-normalised), every difference with a
reason read from the tools' own location properties, and wall times (median of
``--runs``): native generation in this process, each tool's whole CLI run, and
``GenerateSbom`` on a running ``gate serve`` (SQLite in a temporary directory)
from the call to the last streamed event, the SBOM stored.

Targets: native finds at least 99 % of what syft and Trivy both find, and the
RPC is faster than the faster tool's whole run, on every input.

    python benchmarks/sbom_vs_peers.py
    python benchmarks/sbom_vs_peers.py --runs 5 --inputs venv,rootfs --json /tmp/sbom.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

h.import_checkout()

import grpc  # noqa: E402

from gate.model import ArtifactKind  # noqa: E402
from gate.sbom import Subject, generate, generate_python_environment  # noqa: E402
from gate.sbom._purl_key import normalise  # noqa: E402
from gate.sbom._tool_generators import _bundled_binary, trivy_sbom_flags  # noqa: E402
from gate.v1 import common_pb2, sbom_pb2, scan_pb2  # noqa: E402

CACHE = Path.home() / ".cache" / "gate-bench"
ROOTFS = CACHE / "rootfs-bookworm"
LOCKS = CACHE / "locks"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DIGEST = "sha256:" + "b" * 64

# A front end and a FastAPI back end with the dependencies such projects have (dev tools included).
PACKAGE_JSON = {
    "name": "frontend",
    "version": "0.0.0",
    "private": True,
    "dependencies": {
        "@chakra-ui/react": "^3.8.0",
        "@emotion/react": "^11.14.0",
        "@tanstack/react-query": "^5.66.0",
        "@tanstack/react-router": "^1.99.0",
        "axios": "^1.8.0",
        "form-data": "^4.0.0",
        "next-themes": "^0.4.4",
        "react": "^18.3.1",
        "react-dom": "^18.3.1",
        "react-error-boundary": "^5.0.0",
        "react-hook-form": "^7.54.0",
        "react-icons": "^5.4.0",
    },
    "devDependencies": {
        "@biomejs/biome": "^1.9.4",
        "@playwright/test": "^1.50.0",
        "@types/node": "^22.13.0",
        "@types/react": "^18.3.18",
        "@types/react-dom": "^18.3.5",
        "@vitejs/plugin-react-swc": "^3.8.0",
        "typescript": "^5.7.3",
        "vite": "^6.1.0",
    },
}
PYPROJECT = """\
[project]
name = "app"
version = "0.1.0"
description = "benchmark input: a FastAPI backend"
requires-python = ">=3.10,<4.0"
dependencies = [
    "fastapi[standard]>=0.114.2,<1.0.0",
    "python-multipart>=0.0.7,<1.0.0",
    "email-validator>=2.1.0.post1,<3.0.0.0",
    "passlib[bcrypt]>=1.7.4,<2.0.0",
    "tenacity>=8.2.3,<9.0.0",
    "pydantic>2.0",
    "jinja2>=3.1.4,<4.0.0",
    "alembic>=1.12.1,<2.0.0",
    "httpx>=0.25.1,<1.0.0",
    "psycopg[binary]>=3.1.13,<4.0.0",
    "sqlmodel>=0.0.21,<1.0.0",
    "bcrypt>=4.0.1",
    "pydantic-settings>=2.2.1,<3.0.0",
    "sentry-sdk[fastapi]>=1.40.6,<2.0.0",
    "pyjwt>=2.8.0,<3.0.0",
]

[tool.poetry.group.dev.dependencies]
pytest = ">=7.4.3"
mypy = ">=1.8.0"
ruff = ">=0.2.2"
pre-commit = ">=3.6.2"
coverage = ">=7.4.3"

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"

# Poetry's default PyPI source reads the per-release JSON API, which the proxy
# here does not serve; the simple index (PEP 503/658) gives the same resolution.
[[tool.poetry.source]]
name = "pypi-simple"
url = "https://pypi.org/simple/"
priority = "primary"
"""
IN1_FREEZE = Path("/work/shared/notes/sbom-in1-freeze.txt")


# --- inputs ------------------------------------------------------------------------------------


def build_rootfs() -> Path:
    """Debian bookworm minbase, built once (needs root and the Debian mirror)."""
    if (ROOTFS / "var" / "lib" / "dpkg" / "status").is_file():
        return ROOTFS
    partial = ROOTFS.with_name(ROOTFS.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"building {ROOTFS} with debootstrap (once) ...", flush=True)
    subprocess.run(
        ["/usr/sbin/debootstrap", "--variant=minbase", "bookworm", str(partial), DEBIAN_MIRROR],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    partial.rename(ROOTFS)
    return ROOTFS


def build_locks() -> Path:
    """A directory with a real package-lock.json and poetry.lock, resolved once."""
    frontend, backend = LOCKS / "frontend", LOCKS / "backend"
    if (frontend / "package-lock.json").is_file() and (backend / "poetry.lock").is_file():
        return LOCKS
    frontend.mkdir(parents=True, exist_ok=True)
    backend.mkdir(parents=True, exist_ok=True)
    print(f"resolving lock files into {LOCKS} (once) ...", flush=True)
    (frontend / "package.json").write_text(json.dumps(PACKAGE_JSON, indent=2) + "\n")
    subprocess.run(
        ["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=frontend,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (backend / "pyproject.toml").write_text(PYPROJECT)
    poetry_venv = CACHE / "poetry-venv"
    if not (poetry_venv / "bin" / "poetry").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(poetry_venv)], check=True)
        subprocess.run([str(poetry_venv / "bin" / "pip"), "install", "-q", "poetry"], check=True)
    subprocess.run(
        [str(poetry_venv / "bin" / "poetry"), "lock", "--no-interaction"],
        cwd=backend,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return LOCKS


def build_venv() -> Path:
    """The SBOM notes' input 1: a venv of 114 distributions pinned by their freeze list, installed once."""
    venv = CACHE / "venv-in1"
    if (venv / "pyvenv.cfg").is_file():
        return venv
    partial = venv.with_name(venv.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"installing {venv} from {IN1_FREEZE} (once) ...", flush=True)
    requirements = CACHE / "in1-requirements.txt"
    requirements.write_text(
        "".join(x for x in IN1_FREEZE.read_text().splitlines(True) if not x.startswith("#"))
    )
    subprocess.run([sys.executable, "-m", "venv", str(partial)], check=True)
    subprocess.run([str(partial / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True)
    # The venv is only read here, never run, so moving it after installing is harmless.
    partial.rename(venv)
    return venv


@dataclass
class Input:
    """One benchmark input and how each generator is pointed at it."""

    name: str
    path: Path
    trivy_mode: str
    python_environment: bool = False
    what: str = ""


# --- running the generators --------------------------------------------------------------------


@dataclass
class Run:
    """What one generator produced on one input."""

    generator: str
    times: list[float] = field(default_factory=list)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    without_purl: int = 0
    components: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def timed(action: Callable[[], bytes], runs: int) -> tuple[list[float], bytes]:
    times: list[float] = []
    document = b""
    for _ in range(runs):
        started = time.perf_counter()
        document = action()
        times.append(time.perf_counter() - started)
    return times, document


def key_of(purl: str) -> str | None:
    parsed = normalise(purl)
    if parsed is None:
        return None
    return f"{parsed.identity}@{parsed.version}"


def index(generator: str, times: list[float], document: bytes) -> Run:
    data = json.loads(document)
    run = Run(generator, times)
    stack = list(data.get("components") or [])
    while stack:
        component = stack.pop()
        stack.extend(component.get("components") or [])
        run.components += 1
        key = key_of(component.get("purl", "")) if component.get("purl") else None
        if key is None:
            run.without_purl += 1
            continue
        run.keys.setdefault(key, component)
    return run


def tool_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")}
    env.update(HOME=str(workdir), TMPDIR=str(workdir), SYFT_CHECK_FOR_APP_UPDATE="false", NO_COLOR="1")
    return env


def run_tool(argv: list[str], output: Path, workdir: Path) -> bytes:
    output.unlink(missing_ok=True)
    done = subprocess.run(argv, cwd=workdir, env=tool_env(workdir), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return output.read_bytes()


def run_syft(target: Input, workdir: Path, runs: int) -> Run:
    binary = shutil.which("syft") or _bundled_binary("syft")
    output = workdir / "syft.json"
    argv = [binary, "scan", f"dir:{target.path}", "-o", f"cyclonedx-json={output}", "-q"]
    return index("syft", *timed(lambda: run_tool(argv, output, workdir), runs))


def run_trivy(target: Input, workdir: Path, runs: int) -> Run:
    binary = shutil.which("trivy") or _bundled_binary("trivy")
    output = workdir / "trivy.json"
    argv = [
        binary,
        target.trivy_mode,
        *trivy_sbom_flags(output, str(workdir / "trivy-cache")),
        str(target.path),
    ]
    return index("trivy", *timed(lambda: run_tool(argv, output, workdir), runs))


def run_native(target: Input, runs: int) -> Run:
    subject = Subject(target.name, DIGEST, ArtifactKind.FILE)
    make = generate_python_environment if target.python_environment else generate
    return index("native", *timed(lambda: make(target.path, subject=subject).to_cyclonedx_json(), runs))


class ServedGate:
    """``gate serve`` on SQLite in a temporary directory, for GenerateSbom timings."""

    def __init__(self, children: h.Children, workdir: Path) -> None:
        self.ports = h.GatePorts.pick()
        env = h.gate_env(workdir / "data", self.ports)
        self.proc = children.add(h.spawn(h.gate_command(), env, workdir / "gate.log"))
        h.wait_until(
            h.serving_probe(self.ports.grpc_target), self.proc, started=time.perf_counter(), limit=60
        )
        self.channel = grpc.insecure_channel(self.ports.grpc_target)
        self.stub = self.channel.unary_stream(
            "/gate.v1.SbomService/GenerateSbom",
            request_serializer=sbom_pb2.GenerateSbomRequest.SerializeToString,
            response_deserializer=sbom_pb2.GenerateSbomEvent.FromString,
        )

    def generate(self, target: Input, runs: int) -> list[float]:
        kind = (
            scan_pb2.TARGET_KIND_ROOTFS
            if target.trivy_mode == "rootfs" and not target.python_environment
            else scan_pb2.TARGET_KIND_FILESYSTEM
        )
        request = sbom_pb2.GenerateSbomRequest(
            target_kind=kind, location=str(target.path), artifact=common_pb2.ArtifactRef(digest=DIGEST)
        )
        # One call first, untimed: the server imports the cataloguers on its first generation.
        list(self.stub(request, timeout=600))
        times: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            events = list(self.stub(request, timeout=600))
            times.append(time.perf_counter() - started)
            if not events or not events[-1].HasField("sbom"):
                raise RuntimeError("GenerateSbom ended without a stored SBOM")
        return times


# --- agreement ---------------------------------------------------------------------------------


def where(component: dict[str, Any]) -> str:
    """Where a tool says it found a component (Trivy FilePath, syft location, gate location)."""
    for prop in component.get("properties") or []:
        if prop.get("name") in ("aquasecurity:trivy:FilePath", "syft:location:0:path", "gate:location"):
            return str(prop.get("value"))
    return "?"


def reason(key: str, present: dict[str, dict[str, Any]], target: Input, runs: dict[str, Run]) -> str:
    """Why the generators disagree on ``key``, from what the ones that found it say."""
    names = sorted(present)
    places = {name: where(component) for name, component in present.items()}
    identity = key.rsplit("@", 1)[0]
    others = {
        name: sorted(k.rsplit("@", 1)[1] for k in run.keys if k.rsplit("@", 1)[0] == identity and k != key)
        for name, run in runs.items()
        if name not in present
    }
    if others and all(others.values()) and target.name == "locks":
        kept = "; ".join(f"{n} lists only {', '.join(v)}" for n, v in others.items())
        return f"the lock file pins this package twice, under different environment markers ({kept})"
    if "native" in present and present["native"].get("scope") == "excluded":
        return f"development dependency (native keeps it with scope excluded; found by {', '.join(names)})"
    if key.startswith("pkg:golang/") and target.python_environment and "native" not in present:
        return (
            f"Go build info of an executable outside site-packages ({next(iter(places.values()))}); "
            "native reads only a Python environment's site-packages"
        )
    if key.startswith("pkg:nuget/"):
        return f"a Windows .exe launcher read as a .NET assembly by syft ({places.get('syft', '?')})"
    if any("/_vendor/" in place for place in places.values()):
        return (
            f"a library vendored inside another package ({next(iter(places.values()))}), not installed itself"
        )
    if target.name == "rootfs" and key.startswith("pkg:deb/") and "native" not in present:
        return "dpkg status is not 'install ok installed' (only configuration files are left)"
    if target.name == "locks" and "trivy" not in present and identity.endswith("/frontend"):
        return "the project itself (the lock file's root entry), which Trivy does not list as a dependency"
    if "native" not in present:
        return f"MISSED by native; {', '.join(f'{n} at {p}' for n, p in places.items())}"
    return f"found by {', '.join(names)} only ({'; '.join(f'{n} at {p}' for n, p in places.items())})"


def compare(target: Input, runs: dict[str, Run]) -> dict[str, Any]:
    native, syft, trivy = runs["native"], runs["syft"], runs["trivy"]
    both = set(syft.keys) & set(trivy.keys)
    found = both & set(native.keys)
    differences = []
    for key in sorted(set(native.keys) | set(syft.keys) | set(trivy.keys)):
        present = {name: run.keys[key] for name, run in runs.items() if key in run.keys}
        if len(present) < len(runs):
            differences.append(
                {"key": key, "in": sorted(present), "reason": reason(key, present, target, runs)}
            )
    return {
        "both": len(both),
        "native_of_both": len(found),
        "ratio": len(found) / len(both) if both else 1.0,
        "differences": differences,
    }


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inputs", default="venv,locks,rootfs")
    parser.add_argument(
        "--venv", type=Path, help="a virtual environment (default: the notes' input 1, built once)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    wanted = set(args.inputs.split(","))
    inputs = []
    if "venv" in wanted:
        venv = args.venv.resolve() if args.venv else build_venv()
        inputs.append(
            Input("venv", venv, "rootfs", python_environment=True, what="Python virtual environment")
        )
    if "locks" in wanted:
        inputs.append(Input("locks", build_locks(), "fs", what="package-lock.json + poetry.lock"))
    if "rootfs" in wanted:
        inputs.append(
            Input("rootfs", build_rootfs(), "rootfs", what="debootstrap --variant=minbase bookworm")
        )
    report: dict[str, Any] = {}
    children = h.Children()
    ok = True
    with h.sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="gate-sbom-bench-") as temp:
        workdir = Path(temp)
        try:
            served = ServedGate(children, workdir)
            for target in inputs:
                runs = {
                    "native": run_native(target, args.runs),
                    "syft": run_syft(target, workdir, args.runs),
                    "trivy": run_trivy(target, workdir, args.runs),
                }
                rpc = served.generate(target, args.runs)
                agreement = compare(target, runs)
                fastest_tool = min(runs["syft"].median, runs["trivy"].median)
                passed = agreement["ratio"] >= 0.99 and statistics.median(rpc) < fastest_tool
                ok = ok and passed
                report[target.name] = {
                    "what": target.what,
                    "components": {n: r.components for n, r in runs.items()},
                    "purls": {n: len(r.keys) for n, r in runs.items()},
                    "median_s": {n: round(r.median, 3) for n, r in runs.items()},
                    "runs_s": {n: [round(t, 3) for t in r.times] for n, r in runs.items()},
                    "rpc_median_s": round(statistics.median(rpc), 3),
                    "rpc_runs_s": [round(t, 3) for t in rpc],
                    **agreement,
                    "passed": passed,
                }
                print_input(target, report[target.name])
        finally:
            children.stop_all()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print("\nverdict:", "all targets met" if ok else "a target was missed (see above)")
    return 0


def print_input(target: Input, result: dict[str, Any]) -> None:
    print(f"\n== {target.name}: {target.path} ({target.what})")
    print(f"{'generator':<10} {'components':>10} {'purls':>6} {'median s':>9}  runs")
    for name in ("native", "syft", "trivy"):
        runs = ", ".join(f"{t:.3f}" for t in result["runs_s"][name])
        counts = f"{result['components'][name]:>10} {result['purls'][name]:>6}"
        print(f"{name:<10} {counts} {result['median_s'][name]:>9.3f}  [{runs}]")
    rpc_runs = ", ".join(f"{t:.3f}" for t in result["rpc_runs_s"])
    rpc = result["rpc_median_s"]
    print(f"{'RPC':<10} {'':>10} {'':>6} {rpc:>9.3f}  [{rpc_runs}]  GenerateSbom on gate serve, stored")
    share = f"{100 * result['ratio']:.1f} %"
    print(
        f"agreement: native finds {result['native_of_both']} of the {result['both']} purls "
        f"syft and Trivy both find ({share}, target >= 99 %)"
    )
    fastest = min(result["median_s"]["syft"], result["median_s"]["trivy"])
    verdict = "met" if rpc < fastest else "MISSED"
    print(f"speed: RPC {rpc:.3f} s vs the faster tool's {fastest:.3f} s ({verdict})")
    print(f"differences ({len(result['differences'])}):")
    for diff in result["differences"]:
        print(f"  {diff['key']}  [{'+'.join(diff['in'])}]  {diff['reason']}")


if __name__ == "__main__":
    raise SystemExit(main())
