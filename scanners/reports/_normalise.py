"""Shared normalisation: severity scales, package URLs, identity of package findings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from packageurl import PackageURL

from gate.model import FindingKind, FindingStatus, Severity
from scanners.reports._context import Ctx, fingerprint

UPPER_SEVERITY: dict[str, Severity] = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "UNKNOWN": Severity.UNKNOWN,
}
"""Trivy's scale (vulnerabilities, misconfigurations, secrets, licences)."""

LOWER_SEVERITY: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "info": Severity.INFO,
}
"""Snyk's scale."""

SECRET_SEVERITY = Severity.HIGH
"""Severity of a secret from a tool that rates none (gitleaks): a leaked credential is HIGH
until policy says otherwise per rule."""

# Vendor ratings Trivy/GitHub write as numbers (0 UNKNOWN .. 4 CRITICAL); SARIF producers
# and GitHub code scanning use CVSS-like "security-severity" buckets.
_SECURITY_SEVERITY_BUCKETS = ((9.0, Severity.CRITICAL), (7.0, Severity.HIGH), (4.0, Severity.MEDIUM))


def from_score(score: float) -> Severity:
    """GitHub's reading of a ``security-severity`` score (CVSS v3 bands)."""
    for floor, severity in _SECURITY_SEVERITY_BUCKETS:
        if score >= floor:
            return severity
    return Severity.LOW if score > 0 else Severity.UNKNOWN


TRIVY_STATUS: dict[str, FindingStatus] = {
    "unknown": FindingStatus.AFFECTED,
    "affected": FindingStatus.AFFECTED,
    "fixed": FindingStatus.AFFECTED,
    "not_affected": FindingStatus.NOT_AFFECTED,
    "under_investigation": FindingStatus.UNDER_INVESTIGATION,
    "will_not_fix": FindingStatus.WILL_NOT_FIX,
    "fix_deferred": FindingStatus.FIX_DEFERRED,
    "end_of_life": FindingStatus.END_OF_LIFE,
    # --show-suppressed: an ignore file entry is an accepted risk.
    "ignored": FindingStatus.WILL_NOT_FIX,
}

# Ecosystem names of Trivy analysers and Snyk package managers, as purl types.
PURL_TYPES: dict[str, str] = {
    "pip": "pypi", "pipenv": "pypi", "poetry": "pypi", "uv": "pypi", "pylock": "pypi",
    "python-pkg": "pypi", "conda-pkg": "conda", "conda-environment": "conda",
    "npm": "npm", "yarn": "npm", "pnpm": "npm", "bun": "npm", "node-pkg": "npm", "javascript": "npm",
    "gomod": "golang", "gobinary": "golang", "golang": "golang", "gomodules": "golang", "golangdep": "golang",
    "cargo": "cargo", "rustbinary": "cargo", "rust-binary": "cargo",
    "composer": "composer", "composer-vendor": "composer",
    "bundler": "gem", "gemspec": "gem", "rubygems": "gem",
    "jar": "maven", "pom": "maven", "gradle": "maven", "sbt": "maven", "maven": "maven",
    "gradle-lockfile": "maven",
    "nuget": "nuget", "dotnet-core": "nuget", "packages-props": "nuget", "paket": "nuget",
    "conan": "conan", "cocoapods": "cocoapods", "swift": "swift", "hex": "hex", "mix": "hex",
    "pub": "pub", "julia": "julia",
    "alpine": "apk", "wolfi": "apk", "chainguard": "apk", "apk": "apk",
    "debian": "deb", "ubuntu": "deb", "deb": "deb",
    "redhat": "rpm", "centos": "rpm", "rocky": "rpm", "alma": "rpm", "almalinux": "rpm", "amazon": "rpm",
    "oracle": "rpm", "photon": "rpm", "suse": "rpm", "opensuse": "rpm", "opensuse.leap": "rpm",
    "opensuse.tumbleweed": "rpm", "sles": "rpm", "slem": "rpm", "sle-micro": "rpm", "cbl-mariner": "rpm",
    "azurelinux": "rpm", "fedora": "rpm", "rpm": "rpm", "linux": "generic",
}  # fmt: skip

OS_TYPES = frozenset(
    k for k, v in PURL_TYPES.items() if v in {"apk", "deb", "rpm"} and k not in {"apk", "deb", "rpm"}
)


@dataclass(frozen=True, slots=True)
class Purl:
    """A package URL as gate keeps it: canonical text, versionless identity, name and version."""

    text: str
    identity: str
    name: str
    version: str


def _purl(value: PackageURL) -> Purl:
    # Qualifiers go from the identity: Trivy's distro=alpine-3.10.2 changes with every base image.
    identity = PackageURL(type=value.type, namespace=value.namespace, name=value.name).to_string().lower()
    return Purl(text=value.to_string(), identity=identity, name=value.name, version=value.version or "")


# Reports name the same package once per advisory: parsing each purl once keeps big reports fast.
@lru_cache(maxsize=16384)
def _parsed(value: str) -> Purl:
    return _purl(PackageURL.from_string(value))


@lru_cache(maxsize=16384)
def _built(purl_type: str, namespace: str | None, name: str, version: str | None) -> Purl | None:
    try:
        return _purl(PackageURL(type=purl_type, namespace=namespace, name=name, version=version))
    except ValueError:
        return None


def parse_purl(ctx: Ctx, value: str, path: str) -> Purl | None:
    """A package URL, or None (with a warning) when the report's value is not one."""
    if not value:
        return None
    try:
        return _parsed(value)
    except ValueError as exc:
        ctx.warn(path, f"not a package URL ({exc}), ignored: {value[:80]!r}")
        return None


def build_purl(ecosystem: str, name: str, version: str) -> Purl | None:
    """A package URL from an ecosystem name, or None for ecosystems without a purl type."""
    purl_type = PURL_TYPES.get(ecosystem.lower())
    if not purl_type or not name:
        return None
    namespace: str | None = None
    if purl_type == "maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif purl_type in {"npm", "golang", "composer", "swift"} and "/" in name:
        namespace, name = name.rsplit("/", 1)
    return _built(purl_type, namespace, name, version or None)


def package_identity(purl: Purl | None, ecosystem: str, name: str) -> str:
    """A package without its version or qualifiers: ``pkg:pypi/werkzeug``."""
    if purl is not None:
        return purl.identity
    return f"{ecosystem.lower()}/{name.lower()}"


def vulnerability_fingerprint(advisory: str, package: str, location: str, scope: str = "") -> str:
    """Identity of a vulnerability: advisory, versionless package, where the package is declared.

    The tool is not part of it, so Trivy and Snyk agree on a CVE in the same package; the
    installed version is not either, so a version bump that does not fix the issue keeps it.
    ``location`` is the lockfile or jar path (empty for OS packages, whose "target" names the
    image and tag); ``scope`` is the Kubernetes workload for cluster reports.
    """
    return fingerprint(FindingKind.VULNERABILITY.value, advisory.upper(), package, location, scope)


def split_versions(value: str) -> tuple[str, ...]:
    """Fixed versions from a comma-separated list."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def references(*groups: object) -> tuple[str, ...]:
    """Distinct non-empty URLs in first-seen order."""
    seen: dict[str, None] = {}
    for group in groups:
        items = [group] if isinstance(group, str) else group if isinstance(group, list | tuple) else []
        for item in items:
            if isinstance(item, str) and item:
                seen.setdefault(item, None)
    return tuple(seen)
