"""TLS material for the webhook listener when none is configured."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
from pathlib import Path

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
