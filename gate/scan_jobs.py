"""Scan jobs: run scanner providers in the background and keep their findings.

``ScanJobs.start`` records one queued scan per provider and returns at once.
A bounded pool of job threads runs them (the scanner itself is a child
process of its provider, killed with its process group on timeout or
cancellation); the report is parsed into normalised findings and stored with
the redacted raw report, in one transaction with the scan's terminal state.

Watchers subscribe to a scan's events. A scan run by another gate sharing the
store is watched by polling the store.

Leases: every gate renews the heartbeat of the scans it runs; any gate fails
scans whose heartbeat is four intervals old, so a scan whose gate died (crash,
restart, lost node) ends failed with the reason instead of staying "running".
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from gate._keys import load_or_create_key
from gate.config import Config
from gate.errors import GateError, InvalidArgument, Unsupported
from gate.model import (
    Scan,
    ScanEvent,
    ScanState,
    ScanTarget,
    SeverityCounts,
)
from gate.store import EvidenceStore, ScanReport
from scanners import Progress, ScanCancelled, ScannerProvider, ScanRequest, load_providers
from scanners.reports import ParsedReport, parse_report

log = logging.getLogger("gate.scans")

# A scan whose lease is this many heartbeats old belongs to a gate that stopped.
STALE_AFTER_BEATS = 4

Listener = Callable[[ScanEvent], None]
# Called with every scan this gate ends (succeeded, failed or cancelled) and the id of the
# artifact's previous succeeded scan by the same scanner ("" when none, or not succeeded).
FinishListener = Callable[[Scan, str], None]
Parser = Callable[[str, bytes], ParsedReport]


@dataclass
class _Job:
    scan: Scan
    provider: ScannerProvider
    options: Mapping[str, str]
    cancel: threading.Event = field(default_factory=threading.Event)
    listeners: list[Listener] = field(default_factory=list)
    last: ScanEvent | None = None


class ScanJobs:
    """Starts, runs, cancels and reports scans; one instance per gate process."""

    def __init__(
        self,
        store: EvidenceStore,
        providers: Mapping[str, ScannerProvider],
        *,
        secret_key: bytes,
        workdir: Path,
        clock: Callable[[], datetime],
        concurrency: int = 2,
        heartbeat: float = 10.0,
        root: Path | None = None,
        serving: bool = False,
    ) -> None:
        self._store = store
        self._providers = dict(providers)
        self._secret_key = secret_key
        self._workdir = workdir
        self._clock = clock
        self._root = root
        self._heartbeat = heartbeat
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="gate-scan")
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._leases = threading.Thread(target=self._renew_leases, name="gate-scan-leases", daemon=True)
        # Metrics and notifications: each must return at once (scan threads call them).
        self.finish_listeners: list[FinishListener] = []
        if serving:
            # A server expires other gates' stale scans from the start, and asks each
            # tool its version now (0.2-1 s each) rather than on the first scan. A CLI
            # process starts renewing leases with its first scan only: a command that
            # merely reads must not write to the store.
            self._leases.start()
            threading.Thread(target=self._warm_up, name="gate-scan-warm-up", daemon=True).start()

    @classmethod
    def from_config(
        cls, config: Config, store: EvidenceStore, clock: Callable[[], datetime], *, serving: bool = False
    ) -> ScanJobs:
        """Build the providers the configuration names and a runner over ``store``.

        ``serving`` is for a long-running server (see ``__init__``).

        Raises:
            ConfigError: a provider or the secret key file is misconfigured (the key is named).
        """
        settings = config.scanning
        key_file = settings.secret_key_file or config.data_dir / "keys" / "findings.key"
        secret_key = load_or_create_key(key_file, "scanning.secret_key_file")
        workdir = config.data_dir / "scans"
        workdir.mkdir(parents=True, exist_ok=True)
        return cls(
            store,
            load_providers(config.scanners),
            secret_key=secret_key,
            workdir=workdir,
            clock=clock,
            concurrency=settings.concurrency,
            heartbeat=settings.heartbeat,
            root=settings.root,
            serving=serving,
        )

    @property
    def providers(self) -> Mapping[str, ScannerProvider]:
        """The configured providers by name."""
        return self._providers

    def parse(self, tool: str, data: bytes, source: str = "") -> ParsedReport:
        """Parse a report into findings with this gate's secret key."""
        return parse_report(tool, data, secret_key=self._secret_key, source=source)

    def record(self, running: Scan, tool: str, parsed: ParsedReport, tool_version: str = "") -> Scan:
        """Store a running scan's findings and redacted report, and complete it as succeeded.

        ``tool`` is the format name the report was parsed as, kept with the report
        so that it can be parsed again. The parser's findings carry no scan id:
        the store binds them to this scan.
        """
        findings = parsed.findings
        done = replace(
            running,
            state=ScanState.SUCCEEDED,
            scanner_version=tool_version or parsed.tool_version,
            finished_at=self._clock(),
            counts=SeverityCounts.of(f.severity for f in findings),
            finding_count=len(findings),
        )
        # Looked up before this scan becomes the latest, and only when someone listens.
        previous = self._previous_scan(done) if self.finish_listeners else ""
        self._store.complete_scan(done, findings, ScanReport(tool, parsed.redacted_report))
        self._announce(done, previous)
        return done

    def _previous_scan(self, scan: Scan) -> str:
        try:
            latest = self._store.latest_scans(scan.artifact_digest)
        except GateError as error:
            log.warning("scan %s: the previous scan could not be read: %s", scan.id, error.message)
            return ""
        return next((s.id for s in latest if s.scanner == scan.scanner and s.id != scan.id), "")

    def _announce(self, scan: Scan, previous: str) -> None:
        for listener in self.finish_listeners:
            try:
                listener(scan, previous)
            except Exception:  # a listener's failure must not fail the scan
                log.exception("a finish listener of scan %s failed", scan.id)

    # --- starting ---------------------------------------------------------------------------

    def start(
        self, artifact_digest: str, target: ScanTarget, scanners: Sequence[str], options: Mapping[str, str]
    ) -> tuple[Scan, ...]:
        """Queue one scan per provider; return them at once (the artifact must be stored).

        ``options`` keys are ``<scanner>.<option>``; each provider gets its own.

        Raises:
            InvalidArgument: an unknown scanner or option key.
            Unsupported: no configured scanner supports the target kind.
        """
        names = list(scanners) or [
            name for name, provider in self._providers.items() if target.kind in provider.supported_targets
        ]
        if not names:
            configured = ", ".join(self._providers) or "none"
            raise Unsupported(
                f"scans of {target.kind.value} targets",
                f"no configured scanner supports them (configured: {configured})",
            )
        chosen: list[tuple[str, ScannerProvider]] = []
        for index, name in enumerate(names):
            provider = self._providers.get(name)
            if provider is None:
                known = ", ".join(sorted(self._providers)) or "none"
                raise InvalidArgument(f"scanners[{index}]", f"unknown scanner {name!r}; configured: {known}")
            if target.kind not in provider.supported_targets:
                kinds = ", ".join(sorted(kind.value for kind in provider.supported_targets))
                raise InvalidArgument(
                    "target.kind", f"{name} does not scan {target.kind.value} targets; it scans {kinds}"
                )
            chosen.append((name, provider))
        per_scanner = _split_options(options, {name for name, _ in chosen})
        if self._closing.is_set():
            raise Unsupported("new scans", "this gate is shutting down")
        with self._lock:
            if self._leases.ident is None:  # not started yet (a CLI process)
                self._leases.start()
        now = self._clock()
        started = []
        for name, provider in chosen:
            scan = Scan(
                id=str(uuid.uuid4()),
                artifact_digest=artifact_digest,
                scanner=name,
                target=target,
                state=ScanState.QUEUED,
                created_at=now,
            )
            self._store.add_scan(scan)
            job = _Job(scan=scan, provider=provider, options=per_scanner.get(name, {}))
            with self._lock:
                self._jobs[scan.id] = job
            self._publish(job, ScanEvent(scan.id, ScanState.QUEUED, now, "queued", "waiting for a runner"))
            self._pool.submit(self._run, job)
            started.append(scan)
        return tuple(started)

    # --- running ----------------------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        scan = job.scan
        if job.cancel.is_set():
            self._finish(job, ScanState.CANCELLED, "cancelled before it started")
            return
        running = replace(scan, state=ScanState.RUNNING, started_at=self._clock())
        try:
            self._store.update_scan(running)
        except GateError as error:
            log.error("scan %s could not start: %s", scan.id, error.message)
            return
        job.scan = running
        self._publish(
            job, ScanEvent(scan.id, ScanState.RUNNING, self._clock(), "starting", f"running {scan.scanner}")
        )
        workdir = Path(tempfile.mkdtemp(prefix=f"scan-{scan.id[:8]}-", dir=self._workdir))
        try:
            request = ScanRequest(target=scan.target, workdir=workdir, options=job.options, root=self._root)
            result = job.provider.run(request, lambda p: self._progress(job, p), job.cancel)
            self._publish(
                job, ScanEvent(scan.id, ScanState.RUNNING, self._clock(), "parse", "reading the report")
            )
            parsed = self.parse(result.report_format, result.report, source=f"{scan.scanner} report")
            done = self.record(running, result.report_format, parsed, result.tool_version)
            self._done(job, done)
        except ScanCancelled:
            reason = (
                "gate stopped while the scan ran; start it again" if self._closing.is_set() else "cancelled"
            )
            state = ScanState.FAILED if self._closing.is_set() else ScanState.CANCELLED
            self._finish(job, state, reason)
        except GateError as error:
            self._finish(job, ScanState.FAILED, error.message)
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("scan %s failed unexpectedly (reference %s)", scan.id, reference)
            self._finish(
                job, ScanState.FAILED, f"internal error (reference {reference}); the gate log has details"
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _progress(self, job: _Job, progress: Progress) -> None:
        fraction = -1.0 if progress.fraction is None else progress.fraction
        event = ScanEvent(
            job.scan.id, ScanState.RUNNING, self._clock(), progress.stage, progress.message, fraction
        )
        self._publish(job, event)

    def _finish(self, job: _Job, state: ScanState, reason: str) -> None:
        ended = replace(job.scan, state=state, error=reason, finished_at=self._clock())
        try:
            self._store.complete_scan(ended, [])
        except GateError as error:
            # The lease will expire and another gate (or this one) fails the scan later.
            log.error("scan %s could not be recorded as %s: %s", job.scan.id, state.value, error.message)
        self._announce(ended, "")
        self._done(job, ended)

    def _done(self, job: _Job, scan: Scan) -> None:
        job.scan = scan
        self._publish(job, ScanEvent(scan.id, scan.state, self._clock(), "finished", scan.error, 1.0, scan))
        with self._lock:
            self._jobs.pop(scan.id, None)

    # --- watching and cancelling -----------------------------------------------------------------

    def _publish(self, job: _Job, event: ScanEvent) -> None:
        with self._lock:
            job.last = event
            listeners = list(job.listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a watcher's failure must not stop the scan
                log.exception("a watcher of scan %s failed", event.scan_id)

    def subscribe(self, scan_id: str, listener: Listener) -> Callable[[], None] | None:
        """Call ``listener`` with every later event of a scan this gate runs.

        Returns the function that unsubscribes, or None when this gate does not
        run the scan (it is finished, or another gate runs it: read the store).
        The current state is delivered at once.
        """
        with self._lock:
            job = self._jobs.get(scan_id)
            if job is None:
                return None
            job.listeners.append(listener)
            last = job.last
        if last is not None:
            listener(last)

        def unsubscribe() -> None:
            with self._lock:
                if listener in job.listeners:
                    job.listeners.remove(listener)

        return unsubscribe

    def cancel(self, scan_id: str) -> bool:
        """Ask a scan this gate runs to stop; False when it runs elsewhere or has ended."""
        with self._lock:
            job = self._jobs.get(scan_id)
        if job is None:
            return False
        job.cancel.set()
        return True

    def _warm_up(self) -> None:
        for name, provider in self._providers.items():
            if self._closing.is_set():
                return
            try:
                provider.version()
            except GateError as error:
                # Not fatal here: the first scan of this provider reports it properly.
                log.warning("scanner %s is not usable yet: %s", name, error.message)
            except Exception:
                log.exception("asking scanner %s for its version failed", name)

    # --- leases and shutdown ---------------------------------------------------------------------

    def _renew_leases(self) -> None:
        while True:
            self.expire_stale_scans()
            if self._closing.wait(self._heartbeat):
                return
            with self._lock:
                ids = list(self._jobs)
            try:
                self._store.touch_scans(ids, self._clock())
            except GateError as error:
                log.warning("renewing scan leases failed: %s", error.message)

    def expire_stale_scans(self) -> tuple[str, ...]:
        """Fail scans whose gate stopped renewing their lease; return their ids."""
        now = self._clock()
        stale_before = now - timedelta(seconds=self._heartbeat * STALE_AFTER_BEATS)
        try:
            failed = self._store.fail_stale_scans(
                stale_before, "the gate running this scan stopped before it finished; start it again", now
            )
        except GateError as error:
            log.warning("expiring stale scans failed: %s", error.message)
            return ()
        if failed:
            log.warning("failed %d scans whose gate stopped", len(failed), extra={"scan_ids": list(failed)})
        return failed

    def close(self) -> None:
        """Stop: cancel queued and running scans (recorded failed) and wait for them."""
        self._closing.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=False)
        if self._leases.is_alive():
            self._leases.join(timeout=5)


def _split_options(options: Mapping[str, str], scanners: set[str]) -> dict[str, dict[str, str]]:
    per: dict[str, dict[str, str]] = {}
    for key, value in options.items():
        scanner, dot, option = key.partition(".")
        if not dot or not option:
            raise InvalidArgument(f"options[{key}]", "expected '<scanner>.<option>', e.g. 'trivy.scanners'")
        if scanner not in scanners:
            chosen = ", ".join(sorted(scanners))
            raise InvalidArgument(
                f"options[{key}]", f"names scanner {scanner!r}, which this scan does not run ({chosen})"
            )
        per.setdefault(scanner, {})[option] = value
    return per
