"""Every file of the shared scanner corpus imports, with the finding counts its SOURCES.md gives.

The table below is ``../shared/fixtures/scanners/SOURCES.md`` written as expectations: the
counts column is copied verbatim and translated to gate's scale with the tool's own labels
(Trivy UPPERCASE and Snyk lowercase as they are; SonarQube BLOCKER critical, CRITICAL high,
MAJOR medium, MINOR low; Snyk Code SARIF levels error high, warning medium, note low; gitleaks
leaks high, as gitleaks rates nothing). ``expect`` overrides the translation where gate reads
more than SOURCES counts, and says why. Counts are of report entries (``entry_counts``).

What is done with files that are not genuine tool output:

* FABRICATED files (DefectDojo's hand-made k8s duplicates and subset, the multi-CWE SonarQube
  page and rule) are parsed like the real shape they imitate when they have one; the
  fabricated rule is refused like every rules/show response.
* Third-party producers: sonar-report (soprasteria) JSON and HTML exports are refused with an
  "unsupported format" error naming sonar-report; DefectDojo's zip bundles are refused as ZIP.
  trivy-operator CRDs (written by trivy-operator, not the Trivy CLI) are read, except
  ClusterComplianceReport, a pass/fail summary of checks rather than findings.
* Not reports: gitleaks CSV and JUnit, SBOMs (CycloneDX without vulnerabilities, SPDX) and
  SonarQube rule/component responses are refused with an "unsupported format" error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from gate.model import FindingStatus, Severity, SeverityCounts
from scanners.reports import UnsupportedReport, detect_tool, parse_report

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / ".." / "shared" / "fixtures" / "scanners"
KEY = b"fixture-import-test-key-0123456789"

_TOOL_BY_DIR = {
    "trivy": "trivy",
    "trivy_golden": "trivy",
    "trivy_local": "trivy",
    "trivy_operator": "trivy",
    "gitleaks": "gitleaks",
    "gitleaks_local": "gitleaks",
    "gitleaks_upstream": "gitleaks",
    "snyk": "snyk",
    "snyk_code": "snyk",
    "snyk_issue_api": "snyk",
    "sonarqube": "sonarqube",
    "api_sonarqube": "sonarqube",
}
_LABELS = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "UNKNOWN": Severity.UNKNOWN,
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "warning(default)": Severity.HIGH,  # gitleaks SARIF: no level, a leak
    "leak": Severity.HIGH,
}
_SONAR_LABELS = {
    "BLOCKER": Severity.CRITICAL,
    "CRITICAL": Severity.HIGH,
    "MAJOR": Severity.MEDIUM,
    "MINOR": Severity.LOW,
    "INFO": Severity.INFO,
}


@dataclass(frozen=True)
class C:
    """One corpus file: its SOURCES.md counts, gate's counts where they differ, or the refusal."""

    path: str
    sources: str
    expect: str = ""
    note: str = ""
    error: str = ""

    @property
    def tool(self) -> str:
        return _TOOL_BY_DIR[self.path.split("/", 1)[0]]


CORPUS = [
    C("trivy/all_statuses.json", "vuln:LOW=8"),
    C("trivy/cvss_severity_source.json", "vuln:HIGH=1, vuln:MEDIUM=1"),
    C("trivy/cvssv4_severity_source.json", "vuln:LOW=2, vuln:MEDIUM=1"),
    C("trivy/issue_14136.json", "misconf:LOW=1"),
    C("trivy/issue_9092.json", "vuln:HIGH=1"),
    C("trivy/issue_9170.json", "misconf:HIGH=1, misconf:LOW=31, misconf:MEDIUM=5"),
    C("trivy/issue_9333.json", "vuln:LOW=12, vuln:MEDIUM=1"),
    C("trivy/kubernetes.json", "misconf:LOW=6, misconf:MEDIUM=4, vuln:LOW=8, vuln:MEDIUM=2"),
    C(
        "trivy/kubernetes_fabricated_internal_duplicates.json",
        "misconf:LOW=3, misconf:MEDIUM=3, vuln:LOW=5, vuln:MEDIUM=2",
        note="FABRICATED by DefectDojo: parsed like a real k8s report; "
        "its duplicates merge (13 entries, 10 fingerprints)",
    ),
    C(
        "trivy/kubernetes_fabricated_subset.json",
        "misconf:LOW=3, misconf:MEDIUM=3, vuln:LOW=5, vuln:MEDIUM=2",
        note="FABRICATED by DefectDojo: parsed like a real k8s report",
    ),
    C("trivy/legacy_many_vulns.json", "vuln:HIGH=18, vuln:LOW=65, vuln:MEDIUM=9, vuln:UNKNOWN=1"),
    C("trivy/legacy_no_vuln.json", "0 findings"),
    C("trivy/license_scheme.json", "license:HIGH=7, license:LOW=11, license:MEDIUM=1"),
    C(
        "trivy/misconfigurations_and_secrets.json",
        "misconf:HIGH=1, secret:CRITICAL=2, vuln:HIGH=1, vuln:MEDIUM=1",
    ),
    C("trivy/scheme_2_many_vulns.json", "vuln:CRITICAL=1, vuln:HIGH=1, vuln:MEDIUM=3"),
    C("trivy/severity_prio.json", "vuln:CRITICAL=1, vuln:LOW=1"),
    C("trivy_golden/almalinux-8.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/alpine-310.json.golden", "vuln:MEDIUM=4"),
    C("trivy_golden/alpine-310.sarif.golden", "level:warning=4"),
    C("trivy_golden/alpine-39-ignore-cveids.json.golden", "vuln:MEDIUM=2"),
    C("trivy_golden/alpine-39-skip.json.golden", "0 findings"),
    C("trivy_golden/alpine-39.json.golden", "vuln:CRITICAL=2, vuln:MEDIUM=4"),
    C("trivy_golden/amazon-1.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/amazon-2.json.golden", "vuln:LOW=1, vuln:MEDIUM=1"),
    C("trivy_golden/amazonlinux2-gp2-x86-vm.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/busybox-with-lockfile.json.golden", "vuln:HIGH=1, vuln:MEDIUM=1"),
    C("trivy_golden/cargo.lock.json.golden", "0 findings"),
    C("trivy_golden/centos-6.json.golden", "vuln:MEDIUM=2"),
    C("trivy_golden/centos-7-medium.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/centos-7.json.golden", "vuln:LOW=2, vuln:MEDIUM=1"),
    C("trivy_golden/cocoapods.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/composer.vendor.json.golden", "vuln:HIGH=1"),
    C("trivy_golden/conan.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/conda-cyclonedx.json.golden", "0 findings", error="SBOM"),
    C("trivy_golden/conda-spdx.json.golden", "0 findings", error="SPDX SBOM"),
    C("trivy_golden/debian-buster-ignore-unfixed.json.golden", "vuln:CRITICAL=1"),
    C("trivy_golden/debian-buster.json.golden", "vuln:CRITICAL=1, vuln:LOW=1"),
    C("trivy_golden/distroless-base.json.golden", "vuln:LOW=2, vuln:MEDIUM=2"),
    C("trivy_golden/distroless-python27.json.golden", "vuln:LOW=2, vuln:MEDIUM=2"),
    C("trivy_golden/dockerfile-custom-policies.json.golden", "misconf:LOW=2"),
    C("trivy_golden/dockerfile_file_pattern.json.golden", "misconf:HIGH=1"),
    C("trivy_golden/dotnet.json.golden", "vuln:HIGH=1"),
    C("trivy_golden/fluentd-gems.json.golden", "vuln:CRITICAL=1, vuln:HIGH=1"),
    C("trivy_golden/fluentd-multiple-lockfiles.cdx.json.golden", "0 findings", error="SBOM"),
    C("trivy_golden/fluentd-multiple-lockfiles.json.golden", "vuln:CRITICAL=1, vuln:HIGH=1, vuln:LOW=1"),
    C("trivy_golden/gomod-skip.json.golden", "vuln:MEDIUM=1, vuln:UNKNOWN=3"),
    C("trivy_golden/gomod.json.golden", "vuln:MEDIUM=1, vuln:UNKNOWN=4"),
    C("trivy_golden/gradle.json.golden", "vuln:CRITICAL=1, vuln:HIGH=1"),
    C("trivy_golden/helm.json.golden", "misconf:HIGH=3, misconf:LOW=11, misconf:MEDIUM=4"),
    C("trivy_golden/helm_testchart.json.golden", "misconf:HIGH=1, misconf:LOW=2, misconf:MEDIUM=3"),
    C(
        "trivy_golden/helm_testchart.overridden.json.golden",
        "misconf:HIGH=1, misconf:LOW=4, misconf:MEDIUM=3",
    ),
    C("trivy_golden/julia-spdx.json.golden", "0 findings", error="SPDX SBOM"),
    C("trivy_golden/mariner-1.0.json.golden", "vuln:HIGH=1, vuln:LOW=1"),
    C("trivy_golden/minikube-kbom.json.golden", "vuln:LOW=1"),
    C("trivy_golden/mix.lock.json.golden", "vuln:HIGH=1"),
    C("trivy_golden/npm-ubuntu-severity.json.golden", "vuln:LOW=1"),
    C("trivy_golden/npm-with-dev.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/npm.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/opensuse-leap-151.json.golden", "vuln:MEDIUM=2"),
    C("trivy_golden/opensuse-tumbleweed.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/oraclelinux-8.json.golden", "vuln:MEDIUM=2"),
    C("trivy_golden/photon-30.json.golden", "vuln:CRITICAL=2, vuln:HIGH=1"),
    C("trivy_golden/pip.json.golden", "vuln:HIGH=1, vuln:MEDIUM=1"),
    C("trivy_golden/pipenv.json.golden", "vuln:HIGH=1, vuln:MEDIUM=1"),
    C("trivy_golden/poetry.json.golden", "vuln:HIGH=1"),
    C("trivy_golden/pom-cyclonedx.json.golden", "vuln:critical=1, vuln:high=1"),
    C("trivy_golden/pom.json.golden", "vuln:CRITICAL=1, vuln:HIGH=1"),
    C("trivy_golden/pylock.json.golden", "vuln:HIGH=1, vuln:MEDIUM=1"),
    C("trivy_golden/rockylinux-8.json.golden", "vuln:MEDIUM=1"),
    C("trivy_golden/sbt.json.golden", "vuln:CRITICAL=1, vuln:HIGH=1"),
    C("trivy_golden/sl-micro-rancher5.4.json.golden", "0 findings"),
    C("trivy_golden/spring4shell-jre11.json.golden", "vuln:CRITICAL=1"),
    C("trivy_golden/spring4shell-jre8.json.golden", "vuln:LOW=1"),
    C("trivy_golden/terraform-exclude-misconfs-remote-module.json.golden", "0 findings"),
    C(
        "trivy_golden/terraform-opentofu-registry.json.golden",
        "misconf:HIGH=1, misconf:LOW=1, misconf:MEDIUM=1",
    ),
    C(
        "trivy_golden/terraform-remote-module-in-child.json.golden",
        "misconf:HIGH=1, misconf:LOW=1, misconf:MEDIUM=1",
    ),
    C("trivy_golden/terraform-remote-submodule.json.golden", "misconf:CRITICAL=1, misconf:LOW=1"),
    C(
        "trivy_golden/terraform-terraform-registry.json.golden",
        "misconf:HIGH=1, misconf:LOW=1, misconf:MEDIUM=1",
    ),
    C("trivy_golden/test-repo.json.golden", "vuln:HIGH=1, vuln:MEDIUM=1"),
    C("trivy_golden/ubi-7.json.golden", "vuln:LOW=1"),
    C("trivy_golden/ubuntu-1804-ignore-unfixed.json.golden", "vuln:MEDIUM=4"),
    C("trivy_golden/ubuntu-1804.json.golden", "vuln:LOW=1, vuln:MEDIUM=4"),
    C("trivy_golden/uv.json.golden", "vuln:HIGH=1, vuln:MEDIUM=1"),
    C("trivy_golden/yarn.json.golden", "vuln:MEDIUM=1"),
    C("trivy_local/dockerfile-misconfig.json", "misconf:HIGH=1"),
    C("trivy_local/helm-misconfig.json", "misconf:HIGH=1, misconf:LOW=2, misconf:MEDIUM=3"),
    C("trivy_local/helm-misconfig.sarif", "level:error=1, level:note=2, level:warning=3"),
    C(
        "trivy_local/pip-vuln-suppressed.json",
        "suppressed:ignored=1, suppressed:not_affected=1",
        expect="HIGH=1, MEDIUM=1",
        note="suppressed findings kept: ignorefile -> will_not_fix, OpenVEX -> not_affected",
    ),
    C("trivy_local/pip-vuln.cdx.json", "vuln:high=1, vuln:medium=1"),
    C("trivy_local/pip-vuln.json", "vuln:HIGH=1, vuln:MEDIUM=1"),
    C("trivy_local/secrets2.json", "secret:CRITICAL=4, secret:HIGH=2"),
    C(
        "trivy_local/secrets2.sarif",
        "level:error=6",
        expect="CRITICAL=4, HIGH=2",
        note="Trivy SARIF: the severity tag (CRITICAL/HIGH) is read, not the level",
    ),
    C(
        "trivy_operator/all_reports_in_dict.json",
        "check:LOW=1, secret:CRITICAL=1, vuln:CRITICAL=2, vuln:HIGH=3, vuln:LOW=11, vuln:MEDIUM=25",
    ),
    C(
        "trivy_operator/cis_benchmark.json",
        "compliance:=102, compliance:CRITICAL=39, compliance:HIGH=26, "
        "compliance:LOW=373, compliance:MEDIUM=357",
        error="ClusterComplianceReport",
    ),
    C("trivy_operator/clustercompliancereport.json", "0 findings", error="ClusterComplianceReport"),
    C("trivy_operator/configauditreport_many.json", "check:LOW=11, check:MEDIUM=2"),
    C("trivy_operator/configauditreport_missing_checkid.json", "check:MEDIUM=1"),
    C("trivy_operator/configauditreport_no_vuln.json", "0 findings"),
    C("trivy_operator/configauditreport_with_remediation.json", "check:LOW=2"),
    C("trivy_operator/exposedsecretreport_many.json", "secret:CRITICAL=2"),
    C("trivy_operator/exposedsecretreport_no_vuln.json", "0 findings"),
    C("trivy_operator/findings_in_list.json", "check:LOW=11, check:MEDIUM=2, vuln:MEDIUM=5"),
    C("trivy_operator/vulnerabilityreport_extended.json", "vuln:MEDIUM=5"),
    C(
        "trivy_operator/vulnerabilityreport_many.json",
        "vuln:CRITICAL=2, vuln:HIGH=3, vuln:LOW=11, vuln:MEDIUM=25",
    ),
    C("trivy_operator/vulnerabilityreport_single_vuln.json", "vuln:CRITICAL=1"),
    C("gitleaks/data_many.json", "leak=2"),
    C("gitleaks/data_one.json", "leak=1"),
    C("gitleaks/gitleaks8_many.json", "leak=4"),
    C("gitleaks/no_findings.json", "0 findings"),
    C("gitleaks/redacted_data_many.json", "leak=6"),
    C("gitleaks/version_7.5.0.json", "leak=8"),
    C("gitleaks_upstream/csv_simple.csv", "leak=1", error="not JSON"),
    C("gitleaks_upstream/empty.json", "0 findings"),
    C("gitleaks_upstream/json_simple.json", "leak=1"),
    C("gitleaks_upstream/junit_simple.xml", "testcase=2", error="XML"),
    C("gitleaks_upstream/sarif_simple.sarif", "level:warning(default)=1"),
    C("gitleaks_upstream/template_jsonextra.json", "leak=1"),
    C("gitleaks_local/dir-no-findings.json", "0 findings"),
    C("gitleaks_local/dir-secrets-baseline-applied.json", "0 findings"),
    C("gitleaks_local/dir-secrets-redact50.json", "leak=7"),
    C("gitleaks_local/dir-secrets-redacted.json", "leak=7"),
    C("gitleaks_local/dir-secrets-redacted.junit.xml", "testcase=7", error="XML"),
    C("gitleaks_local/dir-secrets-redacted.sarif", "level:warning(default)=7"),
    C("gitleaks_local/git-history-redacted.json", "leak=3"),
    C("gitleaks_local/git-history-redacted.sarif", "level:warning(default)=3"),
    C("gitleaks_local/stdin-redacted.json", "leak=1"),
    C("snyk/all-projects_many_vulns.json", "vuln:medium=4"),
    C("snyk/all-projects_no_vulns.json", "0 findings"),
    C("snyk/all-projects_one_vuln.json", "vuln:medium=1"),
    C("snyk/all_projects_issue4277.json", "license:medium=1, vuln:high=37, vuln:low=3, vuln:medium=41"),
    C("snyk/single_project_None_cvss.json", "vuln:low=1"),
    C("snyk/single_project_many_vulns.json", "vuln:high=12, vuln:medium=29"),
    C("snyk/single_project_one_vuln.json", "vuln:medium=1"),
    C("snyk/single_project_one_vuln_with_ampersands.json", "vuln:critical=1"),
    C("snyk/single_project_upgrade_libs.json", "vuln:high=30, vuln:low=10, vuln:medium=214"),
    C(
        "snyk/snykcontainer_issue_9270.json",
        "vuln:low=25",
        expect="LOW=25, CRITICAL=1, HIGH=2, MEDIUM=9",
        note="SOURCES counts the OS result only; gate also reads the 12 vulns of applications[]",
    ),
    C(
        "snyk/snykcontainer_issue_epss.json",
        "vuln:low=1",
        expect="LOW=1, CRITICAL=1, HIGH=2, MEDIUM=9",
        note="SOURCES counts the OS result only; gate also reads the 12 vulns of applications[]",
    ),
    C("snyk_code/single_project_many_vulns.json", "level:error=13, level:note=176, level:warning=17"),
    C("snyk_code/snykcode_issue_9270.json", "level:error=12, level:note=3, level:warning=24"),
    C("snyk_issue_api/empty.json", "0 findings"),
    C("snyk_issue_api/snyk_code_scan_api_many_vuln.json", "code:high=1, code:low=1, code:medium=1"),
    C(
        "snyk_issue_api/snyk_sca_scan_api_many_vuln.json",
        "package_vulnerability:critical=2, package_vulnerability:high=3",
    ),
    C("sonarqube/empty_zip.zip", "0 findings", error="ZIP"),
    C(
        "sonarqube/findings_over_api.json",
        "BUG:MINOR=1, CODE_SMELL:MINOR=1, VULNERABILITY:CRITICAL=1, VULNERABILITY:MAJOR=2",
        note="two issues share an anonymised key and merge into one finding (5 entries, 4 fingerprints)",
    ),
    C("sonarqube/findings_over_api.zip", "0 findings", error="ZIP"),
    C("sonarqube/findings_over_api_hotspots.json", "hotspot:HIGH=1, hotspot:LOW=3"),
    C(
        "sonarqube/findings_over_api_multi_cwe_fabricated.json",
        "BUG:MINOR=1, CODE_SMELL:MINOR=1, VULNERABILITY:MAJOR=1",
        note="FABRICATED (multi-CWE edit): a valid api/issues/search page, parsed as such",
    ),
    C("sonarqube/issue_10150.json", "?:HIGH=2, ?:MEDIUM=1", error="sonar-report"),
    C(
        "sonarqube/sonar-6-findings-1-unique_id_changed.html",
        "issue:BLOCKER=3, issue:CRITICAL=1, issue:MINOR=2",
        error="HTML",
    ),
    C("sonarqube/sonar-6-findings.html", "issue:BLOCKER=3, issue:CRITICAL=1, issue:MINOR=2", error="HTML"),
    C("sonarqube/sonar-6-findings.json", "?:CRITICAL=1, ?:MINOR=5", error="sonar-report"),
    C("sonarqube/sonar-rule-undefined.html", "issue:BLOCKER=1", error="HTML"),
    C("sonarqube/sonar-single-finding.html", "issue:BLOCKER=1", error="HTML"),
    C("sonarqube/sonar-single-finding.json", "?:CRITICAL=1", error="sonar-report"),
    C("sonarqube/sonar-table-in-table.html", "issue:BLOCKER=1", error="HTML"),
    C(
        "sonarqube/sonar.html",
        "issue:BLOCKER=16, issue:CRITICAL=25, issue:INFO=3, issue:MAJOR=198, issue:MINOR=80",
        error="HTML",
    ),
    C("sonarqube/sonar.json", "?:CRITICAL=1, ?:MINOR=5", error="sonar-report"),
    C("api_sonarqube/hotspots/many_vulns.json", "hotspot:HIGH=1, hotspot:MEDIUM=1"),
    C("api_sonarqube/hotspots/no_vuln.json", "0 findings"),
    C("api_sonarqube/hotspots/one_vuln.json", "hotspot:HIGH=1"),
    C("api_sonarqube/hotspots/rule_wo_risk_description.json", "0 findings", error="hotspot rule"),
    C("api_sonarqube/issues.json", "BUG:CRITICAL=1, CODE_SMELL:MAJOR=2"),
    C("api_sonarqube/product.json", "0 findings", error="component"),
    C("api_sonarqube/rule_md_desc_only.json", "0 findings", error="rule (api/rules/show)"),
    C("api_sonarqube/rule_multi_cwe_fabricated.json", "0 findings", error="rule (api/rules/show)"),
    C("api_sonarqube/rule_wo_html_desc.json", "0 findings", error="rule (api/rules/show)"),
]


def _translate(case: C) -> SeverityCounts:
    text = case.expect or case.sources
    tally: dict[Severity, int] = {}
    if text.strip() == "0 findings":
        return SeverityCounts()
    labels = _SONAR_LABELS if case.tool == "sonarqube" and not case.expect else _LABELS
    for item in text.split(","):
        label, _, number = item.strip().rpartition("=")
        label = label.rpartition(":")[2] or label
        severity = labels.get(label, _LABELS.get(label))
        assert severity is not None, f"{case.path}: no translation for {label!r}"
        tally[severity] = tally.get(severity, 0) + int(number)
    return SeverityCounts.from_mapping(tally)


def test_the_table_covers_every_corpus_file() -> None:
    on_disk = {
        str(p.relative_to(FIXTURES))
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.parts[len(FIXTURES.parts)] != "inputs" and p.name != "SOURCES.md"
    }
    assert on_disk == {case.path for case in CORPUS}


@pytest.mark.parametrize("case", [c for c in CORPUS if not c.error], ids=lambda c: c.path)
def test_corpus_report_imports_with_the_sources_counts(case: C) -> None:
    data = (FIXTURES / case.path).read_bytes()
    parsed = parse_report(case.tool, data, secret_key=KEY, source=case.path)
    assert parsed.entry_counts == _translate(case)
    assert len({f.fingerprint for f in parsed.findings}) == len(parsed.findings)
    assert sum(parsed.occurrences.values()) == parsed.entry_counts.total
    assert all(f.fingerprint.startswith("sha256:") and len(f.fingerprint) == 71 for f in parsed.findings)
    json.loads(parsed.redacted_report)


@pytest.mark.parametrize("case", [c for c in CORPUS if c.error], ids=lambda c: c.path)
def test_corpus_file_that_is_no_report_is_refused_as_unsupported(case: C) -> None:
    data = (FIXTURES / case.path).read_bytes()
    with pytest.raises(UnsupportedReport) as raised:
        parse_report(case.tool, data, secret_key=KEY, source=case.path)
    assert raised.value.message.startswith(f"{case.path}: ")
    assert "unsupported format" in raised.value.message
    assert case.error in raised.value.message


@pytest.mark.parametrize(
    "case",
    [c for c in CORPUS if not c.error and _translate(c).total and not c.path.endswith(".sarif")],
    ids=lambda c: c.path,
)
def test_detect_tool_names_the_tool_of_every_non_empty_report(case: C) -> None:
    data = (FIXTURES / case.path).read_bytes()
    expected = "sarif" if data.lstrip().startswith(b"{") and b'"runs"' in data[:200] else case.tool
    assert detect_tool(data, source=case.path) == expected


def test_suppressed_trivy_findings_keep_the_status_the_ignore_file_and_vex_gave() -> None:
    data = (FIXTURES / "trivy_local/pip-vuln-suppressed.json").read_bytes()
    parsed = parse_report("trivy", data, secret_key=KEY)
    statuses = {f.rule_id: f.status for f in parsed.findings}
    assert statuses == {
        "CVE-2019-14806": FindingStatus.WILL_NOT_FIX,
        "CVE-2020-28724": FindingStatus.NOT_AFFECTED,
    }


def _issues(path: str) -> set[tuple[str, Severity]]:
    parsed = parse_report("trivy", (FIXTURES / path).read_bytes(), secret_key=KEY)
    return {(f.rule_id, f.severity) for f in parsed.findings}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("trivy_local/pip-vuln.json", "trivy_local/pip-vuln.cdx.json"),
        ("trivy_local/helm-misconfig.json", "trivy_local/helm-misconfig.sarif"),
        ("trivy_local/secrets2.json", "trivy_local/secrets2.sarif"),
    ],
)
def test_one_trivy_scan_in_two_formats_yields_the_same_rules_and_severities(first: str, second: str) -> None:
    assert _issues(first) == _issues(second)
