"""Parsing a 10,000-finding Trivy report stays well under a second."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from scanners.reports import parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"
FINDINGS = 10_000
BUDGET_SECONDS = 1.0


def _big_report() -> bytes:
    """Fixture vulnerabilities replicated with distinct ids over 100 lockfiles."""
    report = json.loads((FIXTURES / "trivy_local/pip-vuln.json").read_bytes())
    template = report["Results"][0]
    vulns = template["Vulnerabilities"]
    results = []
    for lockfile in range(100):
        result = copy.deepcopy(template)
        result["Target"] = f"services/s{lockfile}/requirements.txt"
        result["Vulnerabilities"] = []
        for i in range(FINDINGS // 100):
            vuln = copy.deepcopy(vulns[i % len(vulns)])
            vuln["VulnerabilityID"] = f"CVE-2099-{lockfile * 100 + i:05d}"
            result["Vulnerabilities"].append(vuln)
        results.append(result)
    report["Results"] = results
    return json.dumps(report).encode()


def test_ten_thousand_trivy_findings_parse_well_under_a_second() -> None:
    data = _big_report()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        parsed = parse_report("trivy", data, secret_key=KEY)
        best = min(best, time.perf_counter() - started)
    assert len(parsed.findings) == FINDINGS
    print(f"parse_report: {FINDINGS} findings, {len(data) / 1e6:.1f} MB in {best:.3f} s")
    assert best < BUDGET_SECONDS
