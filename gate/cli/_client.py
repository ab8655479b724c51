"""The client base of every ``gate`` command.

A command builds a gate.v1 request message and hands it to a :class:`Client`:
:class:`RemoteClient` sends it to a running gate (``--server``), while
:class:`LocalClient` answers it in process from the local store with the
same :class:`gate._api.Api` the server uses, so both modes validate and
answer alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf import message_factory
from google.protobuf.message import Message

from gate._api import METHODS, Api, unavailable
from gate.cli._input import DOCUMENT_BYTES, KEY_BYTES, TooLarge, read_bounded
from gate.config import Config
from gate.core import Gate, utc_now
from gate.credentials import credentials_from_settings
from gate.errors import DeadlineExceeded, EvidenceError, GateError, InfrastructureError, InvalidArgument
from gate.scan_jobs import ScanJobs
from gate.store import EvidenceStore, open_store

# Answers as large as gate may send: gRPC's default 4 MiB cut `gate audit reports` off once a
# PolicyReport export grew past it (the server takes uploads of 64 MiB).
_CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 256 * 1024 * 1024),)


class Client(Protocol):
    """Answers gate.v1 unary RPCs."""

    def call(self, method: str, request: Message) -> Message:
        """Send ``request`` to ``method`` (``gate.v1.Service/Method``); raise GateError on failure."""

    def stream(self, method: str, request: Message) -> Iterator[Message]:
        """Send ``request`` to a server-streaming ``method``; iterate its responses."""

    def close(self) -> None:
        """Release the connection or the store."""


class LocalClient:
    """Answers in process over the local evidence store."""

    def __init__(self, config: Config) -> None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._store: EvidenceStore = open_store(config.effective_database_url)
        try:
            self._scans = ScanJobs.from_config(config, self._store, utc_now)
        except BaseException:
            self._store.close()
            raise
        try:
            self._api = Api(
                Gate.from_config(config, self._store, self._scans),
                credentials=credentials_from_settings(config.kubernetes),
            )
        except BaseException:
            self.close()
            raise

    def call(self, method: str, request: Message) -> Message:
        """Answer one RPC in process."""
        return self._api.invoke(method, request)

    def stream(self, method: str, request: Message) -> Iterator[Message]:
        """Answer one server-streaming RPC in process."""
        implementation = self._api.streams.get(method)
        if implementation is None:
            raise unavailable(method)
        for item in implementation(request):
            if item is not None:
                yield item

    def close(self) -> None:
        """Stop local scans (recorded failed) and close the store."""
        self._scans.close()
        self._store.close()


# What a status code from a remote gate tells the caller to do.
_INFRASTRUCTURE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DATA_LOSS,
    }
)


def error_from_status(code: grpc.StatusCode, details: str, server: str) -> GateError:
    """Map a gRPC status from a remote gate to gate's error families."""
    message = f"{details or code.name} ({code.name} from {server})"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(message)
    if code in _INFRASTRUCTURE_CODES:
        return InfrastructureError(message)
    return EvidenceError(message)


class RemoteClient:
    """Calls a running gate over gRPC."""

    def __init__(
        self,
        address: str,
        *,
        ca_file: Path | None = None,
        timeout: float = 30.0,
        token_file: Path | None = None,
        client_cert: Path | None = None,
        client_key: Path | None = None,
        project: str = "",
    ) -> None:
        """Connect to ``address``: TLS with ``ca_file`` or a client certificate, else plain.

        ``token_file`` holds a bearer token sent with every call; ``client_cert`` and
        ``client_key`` (PEM) authenticate with mutual TLS. ``project`` fills the empty
        ``project`` field of every request that has one (what a pipeline identity acts for).
        """
        self._address = address
        self._project = project
        self._timeout = timeout
        self._metadata: tuple[tuple[str, str], ...] = ()
        if token_file is not None:
            self._metadata = (("authorization", f"Bearer {_read_token(token_file)}"),)
        if (client_cert is None) != (client_key is None):
            raise InvalidArgument("--client-cert", "give --client-cert and --client-key together")
        if ca_file is not None or client_cert is not None:
            roots = _read_file(ca_file, "--server-ca") if ca_file is not None else None
            key = _read_file(client_key, "--client-key") if client_key is not None else None
            chain = _read_file(client_cert, "--client-cert") if client_cert is not None else None
            credentials = grpc.ssl_channel_credentials(roots, private_key=key, certificate_chain=chain)
            self._channel = grpc.secure_channel(address, credentials, options=_CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._responses: Mapping[str, type[Message]] = {
            name: message_factory.GetMessageClass(method.output_type) for name, method in METHODS.items()
        }

    def call(self, method: str, request: Message) -> Message:
        """Send one unary RPC."""
        with_project(request, self._project)
        response_class = self._responses.get(method)
        if response_class is None:
            raise InvalidArgument("method", f"no such RPC: {method}")
        stub = self._channel.unary_unary(
            f"/{method}",
            request_serializer=_serialize,
            response_deserializer=response_class.FromString,
        )
        try:
            response: Message = stub(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            # Errors raised by a channel's calls are also grpc.Call objects.
            call: Any = exc
            code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
            details = str(call.details() if hasattr(call, "details") else exc)
            raise error_from_status(code, details, self._address) from None
        return response

    def stream(self, method: str, request: Message) -> Iterator[Message]:
        """Send one server-streaming RPC and iterate its responses."""
        with_project(request, self._project)
        response_class = self._responses.get(method)
        if response_class is None:
            raise InvalidArgument("method", f"no such RPC: {method}")
        stub = self._channel.unary_stream(
            f"/{method}", request_serializer=_serialize, response_deserializer=response_class.FromString
        )
        try:
            yield from stub(request, metadata=self._metadata)
        except grpc.RpcError as exc:
            call: Any = exc
            code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
            details = str(call.details() if hasattr(call, "details") else exc)
            raise error_from_status(code, details, self._address) from None

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


def with_project(request: Message, project: str) -> None:
    """Set ``request.project`` to ``project`` when the message has that field and it is empty."""
    # The field exists on some request types only: reached through the descriptor, not an attribute.
    field = request.DESCRIPTOR.fields_by_name.get("project")
    if project and field is not None and not any(f.name == field.name for f, _ in request.ListFields()):
        setattr(request, field.name, project)


# A bearer token file holds one token (projected ServiceAccount tokens are ~1-2 KiB).
MAX_TOKEN_FILE_BYTES = 16 * 1024


def _read_file(path: Path, option: str, limit: int = DOCUMENT_BYTES) -> bytes:
    try:
        return read_bounded(path, limit)
    except OSError as exc:
        raise InvalidArgument(option, f"cannot read {path}: {exc.strerror}") from None
    except TooLarge as exc:
        raise InvalidArgument(option, f"{path}: {exc}") from None


def _read_token(path: Path) -> str:
    data = _read_file(path, "--token-file", KEY_BYTES)
    token = data.strip()
    if not token or len(token) > MAX_TOKEN_FILE_BYTES or any(c in token for c in b" \r\n\t"):
        # Never quote the file: it is a secret.
        raise InvalidArgument(
            "--token-file", f"{path}: expected one token of at most {MAX_TOKEN_FILE_BYTES} bytes on one line"
        )
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidArgument("--token-file", f"{path}: the token is not ASCII") from None


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
