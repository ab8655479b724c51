"""Real OCI registries for tests: Debian's ``docker-registry`` on loopback, started once per session.

Four flavours, each a session fixture returning a :class:`RegistryServer`:

* ``plain_registry`` -- plain HTTP, anonymous.
* ``tls_registry`` -- HTTPS with a certificate from a throwaway CA (``server.ca_file``).
* ``basic_registry`` -- HTTPS plus htpasswd basic auth (bcrypt entries, as the registry requires).
* ``token_registry`` -- plain HTTP plus bearer-token auth; the token service is a small
  in-test HTTP server (:class:`TokenServer`) that signs ES256 JWTs with an ``x5c`` chain
  the registry trusts, and counts the tokens it issues.

Use them from a test package by importing the fixtures into its ``conftest.py``::

    from tests.registry_support import plain_registry, registry_certs  # noqa: F401

``server.client()`` returns a :class:`gate.oci.RegistryClient` set up for the flavour.
A missing ``docker-registry`` binary fails the tests that need it (never a skip).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from gate.oci import Credentials, ImageRef, RegistryAuth, RegistryClient

REGISTRY_BINARY = os.environ.get("GATE_TEST_DOCKER_REGISTRY", "/usr/bin/docker-registry")
USERNAME = "gate-test"
PASSWORD = "s3cret-for-tests"
TOKEN_SERVICE = "gate-test-registry"
TOKEN_ISSUER = "gate-test-token-issuer"
_START_TIMEOUT = 20.0


# -- certificates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost, and a token-signing key."""

    directory: Path
    ca_file: Path
    server_cert: Path
    server_key: Path
    signing_key: ec.EllipticCurvePrivateKey
    signing_cert_der: bytes
    signing_cert_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certs(directory: Path) -> Certs:
    """Create the CA, server and token-signing certificates in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    validity = (now - dt.timedelta(minutes=5), now + dt.timedelta(days=2))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("gate test CA"))
        .issuer_name(_name("gate test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    # Self-signed and without extended key usage: the registry checks token chains with
    # Go's default (server auth) usage, which a certificate without the extension satisfies.
    signing_key = ec.generate_private_key(ec.SECP256R1())
    signing_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("gate test token signer"))
        .issuer_name(_name("gate test token signer"))
        .public_key(signing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .sign(signing_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    (directory / "server.pem").write_bytes(server_cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "token-signer.pem").write_bytes(signing_cert.public_bytes(pem))
    return Certs(
        directory=directory,
        ca_file=ca_file,
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        signing_key=signing_key,
        signing_cert_der=signing_cert.public_bytes(serialization.Encoding.DER),
        signing_cert_file=directory / "token-signer.pem",
    )


# -- token service ----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenServer:
    """A minimal Docker token service: Basic or refresh-token auth in, ES256 JWT out.

    Grants ``pull,push`` on every repository to :data:`USERNAME` (or to the
    identity token :attr:`identity_token`); anonymous callers get a token with
    no access, so the registry refuses them.
    """

    certs: Certs
    identity_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    lifetime: int = 300
    issued: list[dict[str, Any]] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc

    def start(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    decoded = base64.b64decode(header[6:]).decode()
                    if decoded == f"{USERNAME}:{PASSWORD}":
                        user = USERNAME
                    else:
                        self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad password"}]})
                        return
                self._grant(user, query)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [
                    owner.identity_token
                ]:
                    self._answer(401, {"error": "invalid_grant"})
                    return
                self._grant(USERNAME, form)

            def _grant(self, user: str | None, query: dict[str, list[str]]) -> None:
                access = []
                for scope in query.get("scope", []):
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    if user is not None:
                        access.append({"type": kind, "name": name, "actions": actions.split(",")})
                service = query.get("service", [""])[0]
                token = owner.sign(user or "", service, access)
                owner.issued.append({"user": user, "scopes": query.get("scope", []), "service": service})
                self._answer(200, {"token": token, "expires_in": owner.lifetime})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def sign(self, subject: str, audience: str, access: list[dict[str, Any]]) -> str:
        """An ES256 JWT the registry accepts (x5c header with the trusted signing certificate)."""
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self.certs.signing_cert_der).decode()],
        }
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": audience,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.certs.signing_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# -- the registry process -----------------------------------------------------------------------------


@dataclass
class RegistryServer:
    """A running ``docker-registry`` and how to reach it."""

    kind: str
    host: str
    root: Path
    process: subprocess.Popen[bytes]
    log_file: Path
    ca_file: Path | None = None
    token_server: TokenServer | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.kind in ("tls", "basic") else "http"

    @property
    def plain_http_hosts(self) -> list[str]:
        hosts = [self.host] if self.scheme == "http" else []
        if self.token_server is not None:
            hosts.append(self.token_server.host)
        return hosts

    def ref(self, repository: str, tag: str = "latest") -> ImageRef:
        """A reference to ``repository:tag`` on this registry."""
        return ImageRef.parse(f"{self.host}/{repository}:{tag}")

    def credentials(self) -> Credentials:
        """Credentials that the registry (or its token service) accepts."""
        if self.kind not in ("basic", "token"):
            return Credentials.anonymous()
        return Credentials({self.host: RegistryAuth(username=USERNAME, password=PASSWORD)})

    def client(self, **overrides: Any) -> RegistryClient:
        """A client set up for this registry (plain hosts, CA, credentials); keyword arguments override."""
        options: dict[str, Any] = {
            "credentials": self.credentials(),
            "plain_http_hosts": self.plain_http_hosts,
            "tls_verify": self.ca_file if self.ca_file is not None else True,
            "timeout": 10.0,
        }
        options.update(overrides)
        return RegistryClient(**options)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.token_server is not None:
            self.token_server.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _yaml(value: Any) -> str:
    # The registry reads YAML, and JSON is YAML.
    return json.dumps(value, indent=2)


def start_registry(kind: str, directory: Path, certs: Certs | None = None) -> RegistryServer:
    """Start ``docker-registry`` of ``kind`` (plain, tls, basic, token) with its storage in ``directory``."""
    binary = shutil.which(REGISTRY_BINARY) or REGISTRY_BINARY
    if not Path(binary).is_file():
        pytest.fail(
            f"docker-registry not found at {REGISTRY_BINARY}: install Debian's docker-registry package "
            "(apt-get install -y docker-registry) or set GATE_TEST_DOCKER_REGISTRY",
            pytrace=False,
        )
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
        "health": {"storagedriver": {"enabled": False}},
    }
    token_server = None
    if kind in ("tls", "basic"):
        assert certs is not None
        config["http"]["tls"] = {"certificate": str(certs.server_cert), "key": str(certs.server_key)}
    if kind == "basic":
        htpasswd = directory / "htpasswd"
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        htpasswd.write_text(f"{USERNAME}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "gate-test", "path": str(htpasswd)}}
    if kind == "token":
        assert certs is not None
        token_server = TokenServer(certs)
        token_server.start()
        config["auth"] = {
            "token": {
                "realm": token_server.url,
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(certs.signing_cert_file),
            }
        }
    config_file = directory / "config.yml"
    config_file.write_text(_yaml(config))
    log_file = directory / "registry.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config_file)], stdout=log, stderr=subprocess.STDOUT, cwd=directory
        )
    server = RegistryServer(
        kind=kind,
        host=f"127.0.0.1:{port}",
        root=directory,
        process=process,
        log_file=log_file,
        ca_file=certs.ca_file if kind in ("tls", "basic") and certs is not None else None,
        token_server=token_server,
    )
    _wait_ready(server)
    return server


def _wait_ready(server: RegistryServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    verify: ssl.SSLContext | bool = True
    if server.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(server.ca_file))
    url = f"{server.scheme}://{server.host}/v2/"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            status = httpx.get(url, verify=verify, timeout=1.0, trust_env=False).status_code
            if status in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    log = server.log_file.read_text(errors="replace")[-2000:]
    pytest.fail(f"docker-registry ({server.kind}) did not start on {server.host}:\n{log}", pytrace=False)


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def registry_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """The throwaway CA and keys shared by the TLS and token registries."""
    return make_certs(tmp_path_factory.mktemp("registry-certs"))


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """docker-registry over plain HTTP, anonymous."""
    server = start_registry("plain", tmp_path_factory.mktemp("registry-plain"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, registry_certs: Certs) -> Iterator[RegistryServer]:
    """docker-registry over HTTPS with a certificate of the test CA, anonymous."""
    server = start_registry("tls", tmp_path_factory.mktemp("registry-tls"), registry_certs)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def basic_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_certs: Certs
) -> Iterator[RegistryServer]:
    """docker-registry over HTTPS with htpasswd basic auth (:data:`USERNAME` / :data:`PASSWORD`)."""
    server = start_registry("basic", tmp_path_factory.mktemp("registry-basic"), registry_certs)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_certs: Certs
) -> Iterator[RegistryServer]:
    """docker-registry over plain HTTP with bearer-token auth from an in-test :class:`TokenServer`."""
    server = start_registry("token", tmp_path_factory.mktemp("registry-token"), registry_certs)
    yield server
    server.stop()
