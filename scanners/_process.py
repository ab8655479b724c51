"""Running a scanner binary: argument lists, a minimal environment, bounded output, hard stops.

Every tool runs in a session (process group) of its own so that a timeout or a
cancellation kills it together with anything it started (gitleaks runs
``git``); the group is killed again after a normal exit to leave no stragglers.
stdout goes to a file in the run's workdir (some tools print their report
there) and is watched against the size limit while the tool runs; stderr is
kept only as a short tail in memory, masked before anyone sees it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gate._strict_json import StrictJsonError, loads_leniently
from scanners._errors import (
    InvalidReport,
    ReportTooLarge,
    ScanCancelled,
    ScannerFailed,
    ScannerUnavailable,
    ScanTimeout,
)
from scanners._provider import Progress, ProgressCallback

# Variables a tool may need from gate's own environment (proxies, CA bundles);
# everything else, credentials included, is left out unless a runner adds it.
_PASSED_THROUGH = (
    "PATH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_STDERR_TAIL_BYTES = 16 * 1024
_POLL_SECONDS = 0.05
_HEARTBEAT_SECONDS = 1.0

# Values that look like credentials: long runs of token characters mixing
# letters and digits, key=value pairs with secret-ish keys, PEM bodies.
# The key is matched from the start of its word only (the lookbehind), with the keyword
# found by a lookahead: starting at every keyword inside one long word made the search
# quadratic ("token" * 10000 took seconds), while this masks exactly the same pairs.
_SECRET_PAIR = re.compile(
    r"(?i)(?<![\w.-])((?=[\w.-]*?(?:secret|token|password|passwd|pwd|api[_-]?key|apikey|auth|"
    r"credential|match|private[_-]?key))[\w.-]+\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
)
# How much of a long text redact_head reads: far more than any caller shows.
_REDACT_WINDOW = 64 * 1024
_TOKENISH = re.compile(r"[A-Za-z0-9+/_\-=.]{20,}")
_PEM = re.compile(r"-----BEGIN [A-Z ]+-----.*?(-----END [A-Z ]+-----|$)", re.S)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _looks_secret(word: str) -> bool:
    has_digit = any(ch.isdigit() for ch in word)
    has_alpha = any(ch.isalpha() for ch in word)
    # Paths and dotted versions read as prose, not as keys.
    return has_digit and has_alpha and "/" not in word.strip("/") and word.count(".") < 2


def redact_text(text: str, known: Sequence[str] = ()) -> str:
    """Mask known secrets and anything that looks like a credential in diagnostic text.

    Args:
        text: Text a tool printed (stderr, an error body).
        known: Exact values to remove (the tokens gate passed to the tool).
    """
    for value in known:
        if value:
            text = text.replace(value, "[REDACTED]")
    text = _ANSI.sub("", text)
    text = _PEM.sub("[REDACTED PEM BLOCK]", text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + "[REDACTED]", text)
    return _TOKENISH.sub(lambda m: "[REDACTED]" if _looks_secret(m.group(0)) else m.group(0), text)


def redact_head(text: str | bytes, limit: int, known: Sequence[str] = ()) -> str:
    """At most ``limit`` characters of redacted ``text``, reading only a bounded head of it.

    Bytes are decoded as UTF-8 (invalid bytes replaced). A text longer than the window is
    cut at a word boundary, and any quote it leaves open is closed, so that a secret
    straddling the cut is masked whole rather than shown in part.
    """
    longest = max((len(value) for value in known), default=0)
    # Four bytes per character at most, so every known value starting in the window fits.
    window = text[: _REDACT_WINDOW + 4 * longest]
    truncated = len(window) < len(text)
    head = window.decode("utf-8", "replace") if isinstance(window, bytes) else window
    if not truncated:
        return redact_text(head, known)[:limit]
    for value in known:
        if value:
            head = head.replace(value, "[REDACTED]")
    head = head[:_REDACT_WINDOW]
    cut = max(head.rfind(space) for space in " \t\r\n\f\v")
    # With no whitespace at all the whole head is one word that may be a cut secret.
    head = head[:cut] if cut > 0 else ""
    return redact_text(head + "\"'", known)[:limit]


def resolve_binary(configured: str, default: str, config_key: str) -> str:
    """Return the absolute path of a tool's binary.

    Args:
        configured: The ``scanners.<name>.binary`` setting (a path or a name); empty for the default.
        default: The name looked up on PATH when nothing is configured.
        config_key: The configuration key to name in the error.

    Raises:
        ScannerUnavailable: naming the binary and ``config_key``.
    """
    wanted = configured or default
    if os.sep in wanted:
        path = Path(wanted)
        if not path.is_file():
            raise ScannerUnavailable(f"scanner binary {wanted!r} not found", config_key)
        if not os.access(path, os.X_OK):
            raise ScannerUnavailable(f"scanner binary {wanted!r} is not executable", config_key)
        return str(path.resolve())
    found = shutil.which(wanted, path=os.environ.get("PATH", _DEFAULT_PATH))
    if found is None:
        raise ScannerUnavailable(f"scanner binary {wanted!r} not found on PATH", config_key)
    return found


def child_environment(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a tool runs with: proxies and PATH from gate's, a private HOME, and ``extra``."""
    env = {key: os.environ[key] for key in _PASSED_THROUGH if key in os.environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update({"HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8", "NO_COLOR": "1"})
    env.update(extra or {})
    return env


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How a tool's process ended."""

    exit_code: int
    stdout_path: Path
    stderr_tail: str
    duration: float


class _TailReader(threading.Thread):
    """Drains a pipe, keeping only its last bytes."""

    def __init__(self, pipe: object) -> None:
        super().__init__(name="scanner-stderr", daemon=True)
        self._pipe = pipe
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0

    def run(self) -> None:
        read = getattr(self._pipe, "read1", None) or self._pipe.read  # type: ignore[attr-defined]
        while True:
            chunk = read(65536)
            if not chunk:
                return
            self._chunks.append(chunk)
            self._size += len(chunk)
            while self._size - len(self._chunks[0]) >= _STDERR_TAIL_BYTES:
                self._size -= len(self._chunks.popleft())

    def tail(self) -> str:
        data = b"".join(self._chunks)[-_STDERR_TAIL_BYTES:]
        return data.decode("utf-8", errors="replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass(slots=True)
class _Limits:
    tool: str
    timeout: float
    timeout_key: str
    cancel: threading.Event
    watched: tuple[Path, ...]
    max_bytes: int


def _too_large(limits: _Limits) -> bool:
    for path in limits.watched:
        try:
            if path.stat().st_size > limits.max_bytes:
                return True
        except FileNotFoundError:
            continue
    return False


def _supervise(
    proc: subprocess.Popen[bytes], limits: _Limits, progress: ProgressCallback, started: float
) -> None:
    """Wait for ``proc``; kill its group and raise when cancelled, late or writing too much."""
    next_beat = started + _HEARTBEAT_SECONDS
    while True:
        try:
            proc.wait(timeout=_POLL_SECONDS)
            return
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        stop: Exception | None = None
        if limits.cancel.is_set():
            stop = ScanCancelled(limits.tool)
        elif now - started > limits.timeout:
            stop = ScanTimeout(limits.tool, limits.timeout, limits.timeout_key)
        elif _too_large(limits):
            stop = ReportTooLarge(limits.tool, limits.max_bytes)
        if stop is not None:
            _kill_group(proc)
            proc.wait()
            raise stop
        if now >= next_beat:
            next_beat = now + _HEARTBEAT_SECONDS
            progress(Progress("running", f"{limits.tool} running", elapsed=now - started))


def run_tool(
    tool: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    workdir: Path,
    timeout: float,
    cancel: threading.Event,
    progress: ProgressCallback,
    watched: Sequence[Path] = (),
    max_bytes: int,
    secrets: Sequence[str] = (),
    timeout_key: str = "",
) -> ProcessOutcome:
    """Run ``argv`` (never through a shell) and wait for it, within bounds.

    Args:
        tool: The tool's name for messages.
        argv: The command; argv[0] is an absolute binary path.
        env: The complete environment of the child.
        cwd: Its working directory.
        workdir: The run's private directory, where stdout is written (never a scanned tree).
        timeout: Seconds before the process group is killed.
        cancel: Set by the caller to stop the run.
        progress: Receives a heartbeat about once a second.
        watched: Report files whose size is checked against ``max_bytes`` while it runs.
        max_bytes: Largest report (and stdout) allowed.
        secrets: Values to mask in the stderr tail.
        timeout_key: The configuration key of the timeout, for the error.

    Returns:
        The outcome; stdout is in ``stdout_path`` (a file the caller reads or deletes).

    Raises:
        ScannerUnavailable: the binary could not be started.
        ScanTimeout: the timeout passed.
        ScanCancelled: ``cancel`` was set.
        ReportTooLarge: stdout or a watched file grew past ``max_bytes``.
    """
    handle, name = tempfile.mkstemp(prefix=f".{tool}-stdout-", dir=workdir)
    os.close(handle)
    stdout_path = Path(name)
    limits = _Limits(tool, timeout, timeout_key, cancel, (stdout_path, *watched), max_bytes)
    started = time.monotonic()
    with stdout_path.open("wb") as stdout:
        try:
            proc = subprocess.Popen(  # noqa: S603 -- an argument list, never a shell
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            stdout_path.unlink(missing_ok=True)
            raise ScannerUnavailable(f"cannot start {tool} ({argv[0]}): {exc.strerror or exc}") from None
    reader = _TailReader(proc.stderr)
    reader.start()
    progress(Progress("running", f"{tool} running"))
    try:
        _supervise(proc, limits, progress, started)
    except BaseException:
        # A half-written report may hold secrets: nothing of a stopped run stays on disk.
        for path in limits.watched:
            path.unlink(missing_ok=True)
        raise
    finally:
        if proc.returncode is None:
            _kill_group(proc)
            proc.wait()
        # Children the tool left behind die with its group.
        _kill_group(proc)
        reader.join(5)
        if proc.stderr is not None:
            proc.stderr.close()
    if _too_large(limits):
        for path in limits.watched:
            path.unlink(missing_ok=True)
        raise ReportTooLarge(tool, max_bytes)
    return ProcessOutcome(
        exit_code=proc.returncode,
        stdout_path=stdout_path,
        stderr_tail=redact_text(reader.tail(), secrets).strip(),
        duration=time.monotonic() - started,
    )


def read_report(tool: str, path: Path, max_bytes: int) -> bytes:
    """Read a report file written by a tool and delete it (it may hold secrets).

    Raises:
        ReportTooLarge: the file is larger than ``max_bytes``.
        ScannerFailed: it cannot be read.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise ScannerFailed(tool, f"cannot read its report {path.name}", detail=str(exc.strerror)) from None
    finally:
        path.unlink(missing_ok=True)
    if len(data) > max_bytes:
        raise ReportTooLarge(tool, max_bytes)
    return data


def last_error_line(stderr_tail: str) -> str:
    """The most telling line of a tool's diagnostics: its last fatal or error line, else its last line."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    for marker in ("FATAL", "FTL", "ERROR", "ERR", "Error:"):
        for line in reversed(lines):
            if marker in line:
                return line[:500]
    return lines[-1][:500] if lines else ""


def output_version(tool: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> str:
    """Run a version command quickly (10 s at most) and return its stdout."""
    try:
        done = subprocess.run(  # noqa: S603 -- an argument list, never a shell
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=cwd,
            env=dict(env),
            timeout=10,
            check=False,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise ScannerFailed(tool, "version command did not answer within 10 s") from None
    except OSError as exc:
        raise ScannerUnavailable(f"cannot start {tool} ({argv[0]}): {exc.strerror or exc}") from None
    if done.returncode != 0:
        detail = last_error_line(redact_text(done.stderr.decode("utf-8", "replace")))
        raise ScannerFailed(tool, "version command failed", exit_code=done.returncode, detail=detail)
    return done.stdout.decode("utf-8", "replace").strip()


def json_version(tool: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, key: str) -> str:
    """The version a tool reports as JSON (``trivy --version --format json``, ``syft version -o json``).

    Raises:
        ScannerFailed: the command failed or its output has no string ``key``.
    """
    text = output_version(tool, argv, env, cwd)
    try:
        version = json.loads(text).get(key, "")
    except (ValueError, RecursionError, AttributeError):
        version = ""
    if not isinstance(version, str) or not version:
        raise ScannerFailed(tool, "cannot read its version", detail=text[:200])
    return version


def check_json(tool: str, data: bytes, where: str, *, kinds: tuple[type, ...] = (dict, list)) -> None:
    """Check that a report is one complete JSON document of the expected top-level type.

    This is not parsing findings: it tells a finished report from a truncated
    or garbled one, so that a crash mid-write is never taken for a clean scan.

    Raises:
        InvalidReport: naming ``where``, the line and column of the problem.
    """
    if not data.strip():
        raise InvalidReport(tool, where, "is empty")
    try:
        # Only completeness is checked here; the readers of reports and SBOMs refuse the rest
        # later. A strict check would cost a hook call per value on reports of many megabytes.
        document = loads_leniently(data)
    except StrictJsonError as exc:
        if exc.kind == "encoding":
            raise InvalidReport(tool, where, f"is not UTF-8 (byte {exc.offset})") from None
        if exc.kind == "syntax":
            raise InvalidReport(
                tool, where, f"is not complete JSON (line {exc.line}, column {exc.column}: {exc.detail})"
            ) from None
        raise InvalidReport(tool, where, f"is not JSON gate can read: got {exc.reason}") from None
    if not isinstance(document, kinds):
        expected = " or ".join("an object" if kind is dict else "an array" for kind in kinds)
        raise InvalidReport(
            tool, where, f"expected {expected} at the top level, got {type(document).__name__}"
        )
