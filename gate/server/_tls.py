"""TLS material for the webhook listener: generated when none is configured, reloaded when it changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path

from gate._files import FileIdentity, file_identity
from gate.errors import InfrastructureError

log = logging.getLogger("gate.tls")

VALIDITY = dt.timedelta(days=365)
# Renew a generated certificate this long before it expires.
RENEW_BEFORE = dt.timedelta(days=30)


def _still_valid(cert_path: Path, now: dt.datetime) -> bool:
    # Judged by the file's age, not by parsing it: importing cryptography's
    # x509 costs ~0.1 s of every start, and gate wrote this file itself.
    try:
        written = dt.datetime.fromtimestamp(cert_path.stat().st_mtime, dt.UTC)
    except OSError:
        return False
    return written + VALIDITY - RENEW_BEFORE > now


def ensure_self_signed(directory: Path) -> tuple[Path, Path]:
    """Return (cert, key) paths of a self-signed pair in ``directory``, creating it if needed.

    The pair (ECDSA P-256, SANs localhost, 127.0.0.1, ::1 and this host's
    name) lets a local try-out serve HTTPS with no set-up. Production
    deployments configure ``webhook.tls`` (for example from cert-manager).
    """
    cert_path = directory / "webhook.crt"
    key_path = directory / "webhook.key"
    now = dt.datetime.now(dt.UTC)
    if key_path.exists() and _still_valid(cert_path, now):
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    hostname = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gate webhook (self-signed)")])
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    if hostname and hostname != "localhost":
        sans.append(x509.DNSName(hostname))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Write the key with owner-only permissions from the start, never world-readable.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.warning(
        "no webhook TLS configured: created a self-signed certificate",
        extra={"cert_file": str(cert_path), "key_file": str(key_path)},
    )
    return cert_path, key_path


class ReloadingCertificate:
    """A server SSLContext whose certificate and key follow their files.

    cert-manager (and any Kubernetes Secret volume) replaces the files by
    swapping a symlink, so the files' inode, mtime or size changes; both are
    stat'ed (following links) every ``interval`` seconds by :meth:`watch`. On a
    change the pair is loaded into the *same* context object: handshakes from
    then on present the new certificate, open connections keep theirs, and
    nothing restarts. A pair that does not load (caught between the two file
    writes, or broken) keeps the previous one in force and is retried.
    """

    def __init__(
        self, cert_file: Path, key_file: Path, *, interval: float = 1.0, client_ca_file: Path | None = None
    ) -> None:
        """Load the pair; with ``client_ca_file``, require client certificates that CA signed.

        Raises:
            InfrastructureError: the files cannot be read or do not hold a matching PEM pair,
                or the client CA file holds no usable certificate.
        """
        self.cert_file = cert_file
        self.key_file = key_file
        self.interval = interval
        self.reloads = 0
        # The probe listener's context, made on request; reloaded together with the main one.
        self._probe_context: ssl.SSLContext | None = None
        context = _server_context()
        if client_ca_file is not None:
            # Only the API server holds a certificate from this CA: the handshake refuses
            # every other client before a request is read.
            try:
                context.load_verify_locations(cafile=str(client_ca_file))
            except (OSError, ssl.SSLError) as error:
                raise InfrastructureError(
                    f"webhook.client_ca_file: cannot load {client_ca_file}: {_reason(error)}"
                ) from error
            context.verify_mode = ssl.CERT_REQUIRED
        self.context = context
        self._stamp = self._stat()
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as error:
            raise InfrastructureError(
                f"webhook.tls: cannot load {cert_file} and {key_file}: {_reason(error)}"
            ) from error

    def probe_context(self) -> ssl.SSLContext:
        """A context with the same certificate (and its reloads) that asks for no client certificate.

        For the probe listener (``webhook.probe_listen``): kubelet and Kyverno hold no client
        certificate from the API server's CA, and that listener serves nothing that needs one.
        """
        if self._probe_context is None:
            context = _server_context()
            try:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
            except (OSError, ssl.SSLError) as error:
                raise InfrastructureError(
                    f"webhook.tls: cannot load {self.cert_file} and {self.key_file}: {_reason(error)}"
                ) from error
            self._probe_context = context
        return self._probe_context

    def _stat(self) -> tuple[FileIdentity, ...]:
        stamps = []
        for path in (self.cert_file, self.key_file):
            try:
                stamps.append(file_identity(path))
            except OSError:
                stamps.append((0, 0, 0, 0))
        return tuple(stamps)

    def check(self) -> bool:
        """Reload the pair if its files changed; return whether a new pair is now in force."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        try:
            # A pair that fails half-way can leave a context with the new certificate and no
            # key (OpenSSL drops a key that does not match): try it on a scratch context first.
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(self.cert_file), str(self.key_file))
            for context in (self.context, self._probe_context):
                if context is not None:
                    context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as error:
            log.warning(
                "webhook TLS files changed but do not load yet; the previous certificate stays in use",
                extra={"cert_file": str(self.cert_file), "reason": _reason(error)},
            )
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("webhook TLS certificate reloaded", extra={"cert_file": str(self.cert_file)})
        return True

    async def watch(self) -> None:
        """Check the files every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self.check()


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The API server speaks HTTP/1.1 to webhooks (kubernetes/kubernetes#82090).
    context.set_alpn_protocols(["http/1.1"])
    return context


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    return str(error) or type(error).__name__
