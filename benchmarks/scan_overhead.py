"""What gate adds to a scanner run, and how fast it stores a large imported report.

Part 1, scans: one source tree (copies of this repository's ``gate/``,
``scanners/``, ``policies/`` and ``tests/`` plus the planted secrets of the
shared ``secrets2`` fixture) is scanned by the real gitleaks and Trivy (secret
scanner) binaries run directly, with the arguments and environment gate's
providers give them (``scanners/_gitleaks.py``, ``scanners/_trivy.py``), and
through a running gate: StartScan of that one scanner, then WatchScan until
the event that carries the completed scan, timed by the client. Raw and gate
runs alternate (the order flips every round) after one warm-up of each. Target:
gate's median wall time <= 1.10x the raw tool's. gate's timestamps split its
time: request (StartScan until the scan is recorded), queue, prepare (until
the tool's process exists), tool, parse, store, deliver (the last event to
the client).

Part 2, import: a Trivy JSON report with 10,000 distinct vulnerabilities (the
``pip-vuln.json`` fixture's entries with distinct advisories and packages) is
sent with ImportReport, each time for a new artifact, to a gate on SQLite and
one on a throwaway PostgreSQL database. Target: under 2 s from the client. The
baseline is ``scanners.reports.parse_report`` of the same bytes in this
process, alternated with the imports.

    python benchmarks/scan_overhead.py [--runs 5] [--copies 8] [--findings 10000]
        [--part all|scans|import] [--postgres-admin-url URL | --no-postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from _harness import (
    Children,
    fmt_num,
    import_checkout,
    log_problems,
    median,
    sigterm_as_exit,
    tree_cpu_seconds,
)
from _scan_gate import (
    GateServer,
    ImportTiming,
    ScanTiming,
    import_once,
    import_request,
    scan_once,
    scanner_config,
    start_gate,
    throwaway_database,
)
from _scan_inputs import MissingInput, build_tree, gitleaks_binary, trivy_binary, trivy_report

TARGET_SCAN_RATIO = 1.10
TARGET_IMPORT_S = 2.0
SCANNER_TIMEOUT = 600  # s, gate's default; Trivy gets 60 s more on its own --timeout, as gate gives it
TOOLS = ("gitleaks", "trivy")
SPLIT_NAMES = ("request", "queue", "prepare", "tool", "parse", "store", "deliver")
IMPORT_SPLIT_NAMES = ("to_record", "record", "store_reply")
MB = 1024 * 1024


# --- part 1: raw tool vs gate --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tools:
    """The binaries and the shared Trivy cache."""

    gitleaks: Path
    trivy: Path
    trivy_cache: Path


def _tool_environment(home: Path, tool: str) -> dict[str, str]:
    # What scanners._process.child_environment gives a tool: PATH, a private HOME and TMPDIR.
    env = {key: os.environ[key] for key in ("PATH",) if key in os.environ}
    env.update({"HOME": str(home), "TMPDIR": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1"})
    if tool == "trivy":
        env["TRIVY_DISABLE_VEX_NOTICE"] = "1"
    return env


def raw_command(tool: str, tools: Tools, tree: Path, workdir: Path) -> tuple[list[str], Path, Path]:
    """The argv, working directory and report path gate's provider would use for ``tool``."""
    if tool == "gitleaks":
        report = workdir / "gitleaks-report.json"
        argv = [
            str(tools.gitleaks), "dir", "--no-banner", "--no-color", "--log-level", "error",
            "--report-format", "json", "--report-path", str(report), "--exit-code", "2", "--redact=0",
            "--gitleaks-ignore-path", str(workdir), "--", ".",
        ]  # fmt: skip
        return argv, tree, report
    report = workdir / "trivy-report.json"
    argv = [
        str(tools.trivy), "fs", "--format", "json", "--output", str(report), "--exit-code", "0",
        "--timeout", f"{SCANNER_TIMEOUT + 60}s", "--no-progress", "--disable-telemetry",
        "--skip-version-check", "--scanners", "secret", "--cache-dir", str(tools.trivy_cache),
        "--ignorefile", "", "--secret-config", "", "--show-suppressed", "--", str(tree),
    ]  # fmt: skip
    return argv, workdir, report


def _report_entries(tool: str, report: Path) -> int:
    document = json.loads(report.read_text())
    if tool == "gitleaks":
        return len(document)
    return sum(len(result.get("Secrets") or []) for result in document.get("Results") or [])


@dataclass(slots=True)
class ScanRun:
    """One scan of the tree, raw or through gate."""

    round: int  # 0 is the warm-up
    tool: str
    how: str  # "raw" or "gate"
    wall_s: float = math.nan
    cpu_s: float = math.nan  # the tool's CPU (raw) or gate's plus the tool's (gate)
    findings: int = 0
    error: str = ""
    split: dict[str, float] = field(default_factory=dict)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_raw(tool: str, tools: Tools, tree: Path, scratch: Path, number: int) -> ScanRun:
    """Run the tool as gate's provider would, in a fresh workdir; time spawn to exit."""
    run = ScanRun(number, tool, "raw")
    workdir = Path(tempfile.mkdtemp(prefix=f"raw-{tool}-", dir=scratch))
    argv, cwd, report = raw_command(tool, tools, tree, workdir)
    with (workdir / "stdout").open("wb") as stdout, (workdir / "stderr").open("wb") as stderr:
        cpu_before = _children_cpu()
        began = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=cwd,
            env=_tool_environment(workdir, tool), start_new_session=True,
        )  # fmt: skip
        code = proc.wait()
        run.wall_s = time.perf_counter() - began
        # Only the tool was reaped in between: gate's processes are still running.
        run.cpu_s = _children_cpu() - cpu_before
    # gitleaks exits 2 when it found leaks (gate's --exit-code 2), Trivy 0.
    if code not in (0, 2) or not report.is_file():
        tail = (workdir / "stderr").read_text(errors="replace")[-500:]
        run.error = f"exit code {code}: {tail}"
    else:
        try:
            run.findings = _report_entries(tool, report)
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            run.error = f"unreadable report {report.name}: {exc}"
    shutil.rmtree(workdir, ignore_errors=True)
    return run


def run_gate(tool: str, gate: GateServer, tree: Path, number: int) -> ScanRun:
    """One StartScan + WatchScan of ``tool`` through gate."""
    run = ScanRun(number, tool, "gate")
    try:
        timing: ScanTiming = scan_once(gate, tool, tree)
    except grpc.RpcError as exc:
        run.error = f"{exc.code().name}: {exc.details()}"
        return run
    run.wall_s = timing.wall_s
    run.cpu_s = timing.cpu_s
    run.findings = timing.findings
    run.split = timing.split()
    if timing.state != "SCAN_STATE_SUCCEEDED":
        run.error = f"{timing.state}: {timing.error}"
    return run


def _print_scan_run(run: ScanRun) -> None:
    label = "warm-up" if run.round == 0 else str(run.round)
    parts = " ".join(f"{name} {fmt_num(run.split.get(name, math.nan) * 1000, '.0f')}" for name in SPLIT_NAMES)
    detail = f"  ms: {parts}" if run.how == "gate" else ""
    print(
        f"{label:<8}{run.tool:<10}{run.how:<6}{fmt_num(run.wall_s, '9.3f')}{fmt_num(run.cpu_s, '8.2f')}"
        f"{run.findings:>10}{detail}"
    )
    if run.error:
        print(f"        error: {run.error}")


def measure_scans(
    args: argparse.Namespace, tools: Tools, gate: GateServer, tree: Path, scratch: Path
) -> list[ScanRun]:
    """Warm-up, then ``args.runs`` rounds alternating raw and gate per tool."""
    print(f"{'round':<8}{'tool':<10}{'how':<6}{'wall s':>9}{'CPU s':>8}{'findings':>10}")
    runs: list[ScanRun] = []
    for number in range(args.runs + 1):
        for tool in TOOLS:
            order = ("raw", "gate") if number % 2 == 0 else ("gate", "raw")
            for how in order:
                run = (
                    run_raw(tool, tools, tree, scratch, number)
                    if how == "raw"
                    else run_gate(tool, gate, tree, number)
                )
                _print_scan_run(run)
                runs.append(run)
    return runs


@dataclass(slots=True)
class ScanSummary:
    """Medians of one tool over the measured rounds."""

    tool: str
    raw_s: float
    gate_s: float
    ratio: float
    round_ratio: float  # median of the per-round gate/raw ratios
    raw_cpu_s: float
    gate_cpu_s: float  # gate's CPU plus the tool's
    findings_raw: int
    findings_gate: int
    split_ms: dict[str, float]
    extra_ms: float  # gate median - raw median: noise of the shared machine included
    around_ms: float  # median of gate's wall time minus its tool span: gate's own cost
    raw_range_s: tuple[float, float]
    gate_range_s: tuple[float, float]


def _range(values: list[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (math.nan, math.nan)


def summarize_scans(runs: list[ScanRun]) -> list[ScanSummary]:
    """Per tool: raw and gate medians, ratios and the median split of gate's time."""
    summaries = []
    for tool in TOOLS:
        measured = [r for r in runs if r.tool == tool and r.round > 0 and not r.error]
        raw = {r.round: r for r in measured if r.how == "raw"}
        gate = {r.round: r for r in measured if r.how == "gate"}
        raw_s = median([r.wall_s for r in raw.values()])
        gate_s = median([r.wall_s for r in gate.values()])
        ratios = [gate[n].wall_s / raw[n].wall_s for n in sorted(raw.keys() & gate.keys())]
        split = {
            name: median([v * 1000 for r in gate.values() if not math.isnan(v := r.split[name])])
            for name in SPLIT_NAMES
        }
        summaries.append(
            ScanSummary(
                tool=tool,
                raw_s=raw_s,
                gate_s=gate_s,
                ratio=gate_s / raw_s,
                round_ratio=median(ratios),
                raw_cpu_s=median([r.cpu_s for r in raw.values()]),
                gate_cpu_s=median([r.cpu_s for r in gate.values()]),
                findings_raw=max((r.findings for r in raw.values()), default=0),
                findings_gate=max((r.findings for r in gate.values()), default=0),
                split_ms=split,
                extra_ms=(gate_s - raw_s) * 1000,
                around_ms=median(
                    [
                        (r.wall_s - r.split["tool"]) * 1000
                        for r in gate.values()
                        if not math.isnan(r.split["tool"])
                    ]
                ),
                raw_range_s=_range([r.wall_s for r in raw.values()]),
                gate_range_s=_range([r.wall_s for r in gate.values()]),
            )
        )
    return summaries


def report_scans(summaries: list[ScanSummary]) -> None:
    """The verdict table of part 1."""
    print()
    print(
        f"{'tool':<10}{'raw s':>8}{'gate s':>8}{'ratio':>7}{'per-round':>10}{'target':>8}"
        f"{'CPU s raw/gate':>16}{'findings raw/gate':>19}  verdict"
    )
    for s in summaries:
        verdict = (
            "not measured" if math.isnan(s.ratio) else "met" if s.ratio <= TARGET_SCAN_RATIO else "MISSED"
        )
        print(
            f"{s.tool:<10}{fmt_num(s.raw_s, '8.3f')}{fmt_num(s.gate_s, '8.3f')}{fmt_num(s.ratio, '7.3f')}"
            f"{fmt_num(s.round_ratio, '10.3f')}{'<=' + format(TARGET_SCAN_RATIO, '.2f'):>8}"
            f"{f'{s.raw_cpu_s:.2f}/{s.gate_cpu_s:.2f}':>16}"
            f"{f'{s.findings_raw}/{s.findings_gate}':>19}  {verdict}"
        )
    print()
    print("where gate's time goes (median ms over the gate runs; tool = gate's own run of the binary):")
    print(
        f"{'tool':<10}"
        + "".join(f"{name:>9}" for name in SPLIT_NAMES)
        + f"{'gate-raw':>10}{'not tool':>10}{'(raw+not tool)/raw':>20}"
    )
    for s in summaries:
        print(
            f"{s.tool:<10}"
            + "".join(fmt_num(s.split_ms[name], "9.1f") for name in SPLIT_NAMES)
            + fmt_num(s.extra_ms, "10.1f")
            + fmt_num(s.around_ms, "10.1f")
            + fmt_num((s.raw_s * 1000 + s.around_ms) / (s.raw_s * 1000), "20.3f")
        )
    print(
        "ratio = gate median / raw median; per-round = median of gate/raw within each round; CPU = the "
        "tool's user+system (gate: gate's process plus the tool it ran)\n"
        "not tool = gate's wall time minus its tool span (what gate itself adds, less sensitive to the "
        "machine's noise than gate-raw)\n"
        "findings: raw = entries in the tool's report, gate = stored findings (one per fingerprint: "
        "the same secret in the same file once)"
    )
    print()
    for s in summaries:
        own = (s.raw_s * 1000 + s.around_ms) / (s.raw_s * 1000)
        if math.isnan(own):
            continue
        print(
            f"{s.tool}: gate's own time {s.around_ms:.1f} ms = {own:.3f}x the raw median "
            f"({'met' if own <= TARGET_SCAN_RATIO else 'MISSED'}); runs spread: raw "
            f"{s.raw_range_s[0]:.2f}-{s.raw_range_s[1]:.2f} s, "
            f"gate {s.gate_range_s[0]:.2f}-{s.gate_range_s[1]:.2f} s"
        )


# --- part 2: importing a large report -----------------------------------------------------------


@dataclass(slots=True)
class ImportRun:
    """One import (or one in-process parse of the same bytes)."""

    database: str
    round: int
    how: str  # "parse" (in process) or "import" (through gate)
    wall_s: float
    findings: int
    server_cpu_s: float = math.nan
    split: dict[str, float] = field(default_factory=dict)
    error: str = ""


def _parse_in_process(report: bytes) -> tuple[float, int]:
    import_checkout()
    from scanners.reports import parse_report

    began = time.perf_counter()
    parsed = parse_report("trivy", report, secret_key=b"bench-secret-key-0123456789abcdef", source="bench")
    return time.perf_counter() - began, len(parsed.findings)


def measure_imports(
    database: str, gate: GateServer, report: bytes, runs: int, expected: int
) -> list[ImportRun]:
    """Warm-up import, then ``runs`` rounds of (in-process parse, import), the order flipping."""
    results: list[ImportRun] = []
    for number in range(runs + 1):
        order = ("parse", "import") if number % 2 == 0 else ("import", "parse")
        for how in order:
            if how == "parse":
                wall, count = _parse_in_process(report)
                run = ImportRun(database, number, "parse", wall, count)
            else:
                # A new artifact each time, as every pipeline run of a new commit would be.
                request = import_request(report, "git:" + uuid.uuid4().hex + "0" * 8)
                try:
                    timing: ImportTiming = import_once(gate, request, lambda: tree_cpu_seconds(gate.proc.pid))
                except grpc.RpcError as exc:
                    run = ImportRun(
                        database, number, "import", math.nan, 0, error=f"{exc.code().name}: {exc.details()}"
                    )
                    _print_import_run(run)
                    results.append(run)
                    continue
                run = ImportRun(
                    database, number, "import", timing.wall_s, timing.findings, timing.server_cpu_s,
                    timing.split(),
                )  # fmt: skip
            if run.findings != expected:
                run.error = f"{run.findings} findings, expected {expected}"
            _print_import_run(run)
            results.append(run)
    return results


def _print_import_run(run: ImportRun) -> None:
    label = "warm-up" if run.round == 0 else str(run.round)
    detail = ""
    if run.how == "import":
        parts = " ".join(
            f"{name} {fmt_num(run.split.get(name, math.nan) * 1000, '.0f')}" for name in IMPORT_SPLIT_NAMES
        )
        detail = f"  server CPU {fmt_num(run.server_cpu_s, '.2f')} s; ms: {parts}"
    print(f"{label:<8}{run.database:<12}{run.how:<8}{fmt_num(run.wall_s, '9.3f')}{run.findings:>10}{detail}")
    if run.error:
        print(f"        error: {run.error}")


@dataclass(slots=True)
class ImportSummary:
    """Medians of one database over the measured rounds."""

    database: str
    import_s: float
    parse_s: float
    server_cpu_s: float
    split_ms: dict[str, float]


def summarize_imports(runs: list[ImportRun]) -> list[ImportSummary]:
    """Per database: import and in-process parse medians, and the split of the import."""
    summaries = []
    for database in dict.fromkeys(r.database for r in runs):
        measured = [r for r in runs if r.database == database and r.round > 0 and not r.error]
        imports = [r for r in measured if r.how == "import"]
        summaries.append(
            ImportSummary(
                database=database,
                import_s=median([r.wall_s for r in imports]),
                parse_s=median([r.wall_s for r in measured if r.how == "parse"]),
                server_cpu_s=median([r.server_cpu_s for r in imports]),
                split_ms={
                    name: median([r.split[name] * 1000 for r in imports]) for name in IMPORT_SPLIT_NAMES
                },
            )
        )
    return summaries


def report_imports(summaries: list[ImportSummary], findings: int, size: int) -> None:
    """The verdict table of part 2."""
    print()
    print(f"ImportReport of a {size / MB:.1f} MB Trivy report with {findings} findings (median):")
    print(
        f"{'database':<12}{'import s':>9}{'target':>8}{'parse s':>9}{'server CPU s':>14}"
        + "".join(f"{name:>13}" for name in IMPORT_SPLIT_NAMES)
        + "  verdict"
    )
    for s in summaries:
        verdict = (
            "not measured" if math.isnan(s.import_s) else "met" if s.import_s < TARGET_IMPORT_S else "MISSED"
        )
        print(
            f"{s.database:<12}{fmt_num(s.import_s, '9.3f')}{'<' + format(TARGET_IMPORT_S, 'g'):>8}"
            f"{fmt_num(s.parse_s, '9.3f')}{fmt_num(s.server_cpu_s, '14.2f')}"
            + "".join(fmt_num(s.split_ms[name], "13.0f") for name in IMPORT_SPLIT_NAMES)
            + f"  {verdict}"
        )
    print(
        "parse s = parse_report of the same bytes in this process; to_record = send, decode, parse, "
        "record the artifact (until created_at); record = add the scan, bind the findings (until "
        "finished_at); store_reply = the findings+report transaction and the answer"
    )


# --- driver -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="measured rounds after the warm-up (default 5)")
    parser.add_argument(
        "--part", choices=("all", "scans", "import"), default="all", help="what to measure (default all)"
    )
    parser.add_argument(
        "--copies",
        type=int,
        default=8,
        help="copies of the repository's code in the scanned tree (default 8)",
    )
    parser.add_argument("--findings", type=int, default=10_000, help="vulnerabilities in the report (10000)")
    parser.add_argument(
        "--postgres-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an existing PostgreSQL database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument(
        "--postgres-database", default="gate_bench_scan", help="the throwaway database (created and dropped)"
    )
    parser.add_argument("--no-postgres", action="store_true", help="import into SQLite only")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.copies < 1 or args.findings < 1:
        parser.error("--runs, --copies and --findings must be at least 1")
    return args


def _tools(workdir: Path) -> Tools:
    cache = workdir / "trivy-cache"
    cache.mkdir()
    return Tools(gitleaks_binary(), trivy_binary(), cache)


def part_scans(args: argparse.Namespace, workdir: Path, children: Children) -> dict[str, Any]:
    """Part 1; returns its figures."""
    tools = _tools(workdir)
    tree = workdir / "tree"
    files, size = build_tree(tree, args.copies)
    print(
        f"== scans: {tree} ({files} files, {size / MB:.1f} MB: {args.copies} copies of gate/ scanners/ "
        f"policies/ tests/ + secrets2); {args.runs} rounds after a warm-up; cores={os.cpu_count()}"
    )
    config = scanner_config(tools.gitleaks, tools.trivy, tools.trivy_cache, SCANNER_TIMEOUT)
    gate = start_gate("gate-scans", workdir, children, config)
    try:
        runs = measure_scans(args, tools, gate, tree, workdir)
    finally:
        gate.close()
        children.stop_all()
    summaries = summarize_scans(runs)
    report_scans(summaries)
    failed = [r for r in runs if r.error]
    return {
        "tree": {"files": files, "bytes": size, "copies": args.copies},
        "summary": [asdict(s) for s in summaries],
        "runs": [asdict(r) for r in runs],
        "failed_runs": len(failed),
        "gate_log_problems": log_problems(gate.log),
    }


def part_import(args: argparse.Namespace, workdir: Path, children: Children) -> dict[str, Any]:
    """Part 2; returns its figures."""
    report = trivy_report(args.findings)
    print(
        f"\n== import: Trivy report of {len(report) / MB:.1f} MB, {args.findings} vulnerabilities; "
        f"{args.runs} rounds after a warm-up"
    )
    print(f"{'round':<8}{'database':<12}{'how':<8}{'wall s':>9}{'findings':>10}")
    runs: list[ImportRun] = []
    problems: list[str] = []
    errors: list[str] = []
    # Only the parse of a report is needed: no scanner is configured.
    gate = start_gate("gate-sqlite", workdir, children, "{}\n")
    try:
        runs += measure_imports("sqlite", gate, report, args.runs, args.findings)
    finally:
        gate.close()
        children.stop_all()
    problems += log_problems(gate.log)
    if not args.no_postgres:
        try:
            with throwaway_database(args.postgres_admin_url, args.postgres_database) as url:
                gate = start_gate("gate-postgres", workdir, children, "{}\n", url)
                try:
                    runs += measure_imports("postgresql", gate, report, args.runs, args.findings)
                finally:
                    gate.close()
                    children.stop_all()
                problems += log_problems(gate.log)
        except RuntimeError as exc:
            errors.append(str(exc))
            print(f"PostgreSQL not measured: {exc}", file=sys.stderr)
    summaries = summarize_imports(runs)
    report_imports(summaries, args.findings, len(report))
    return {
        "report_bytes": len(report),
        "findings": args.findings,
        "summary": [asdict(s) for s in summaries],
        "runs": [asdict(r) for r in runs],
        "failed_runs": len([r for r in runs if r.error]) + len(errors),
        "errors": errors,
        "gate_log_problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts; print each run, then the verdicts; always stop the children."""
    args = parse_args(argv)
    children = Children()
    figures: dict[str, Any] = {}
    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="gate-scan-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if args.part in ("all", "scans"):
                figures["scans"] = part_scans(args, workdir, children)
            if args.part in ("all", "import"):
                figures["import"] = part_import(args, workdir, children)
        except (RuntimeError, MissingInput) as exc:
            sys.stdout.flush()
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            children.stop_all()
    for part in figures.values():
        if part["gate_log_problems"]:
            print(f"gate logged {len(part['gate_log_problems'])} warning/error lines, e.g.: "
                  f"{sorted(set(part['gate_log_problems']))[:3]}")  # fmt: skip
    if args.json:
        document = {
            "benchmark": "scan_overhead",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "targets": {"scan_ratio": TARGET_SCAN_RATIO, "import_s": TARGET_IMPORT_S},
            **figures,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    # A report, not a test: only runs that could not be measured make it fail.
    return 1 if any(part["failed_runs"] for part in figures.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
