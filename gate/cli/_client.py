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
from gate.config import Config
from gate.core import Gate, utc_now
from gate.errors import DeadlineExceeded, EvidenceError, GateError, InfrastructureError, InvalidArgument
from gate.scan_jobs import ScanJobs
from gate.store import EvidenceStore, open_store


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
            self._api = Api(Gate.from_config(config, self._store, self._scans))
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

    def __init__(self, address: str, *, ca_file: Path | None = None, timeout: float = 30.0) -> None:
        self._address = address
        self._timeout = timeout
        if ca_file is not None:
            try:
                roots = ca_file.read_bytes()
            except OSError as exc:
                raise InvalidArgument("--server-ca", f"cannot read {ca_file}: {exc.strerror}") from None
            self._channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(roots))
        else:
            self._channel = grpc.insecure_channel(address)
        self._responses: Mapping[str, type[Message]] = {
            name: message_factory.GetMessageClass(method.output_type) for name, method in METHODS.items()
        }

    def call(self, method: str, request: Message) -> Message:
        """Send one unary RPC."""
        response_class = self._responses.get(method)
        if response_class is None:
            raise InvalidArgument("method", f"no such RPC: {method}")
        stub = self._channel.unary_unary(
            f"/{method}",
            request_serializer=_serialize,
            response_deserializer=response_class.FromString,
        )
        try:
            response: Message = stub(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            # Errors raised by a channel's calls are also grpc.Call objects.
            call: Any = exc
            code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
            details = str(call.details() if hasattr(call, "details") else exc)
            raise error_from_status(code, details, self._address) from None
        return response

    def stream(self, method: str, request: Message) -> Iterator[Message]:
        """Send one server-streaming RPC and iterate its responses."""
        response_class = self._responses.get(method)
        if response_class is None:
            raise InvalidArgument("method", f"no such RPC: {method}")
        stub = self._channel.unary_stream(
            f"/{method}", request_serializer=_serialize, response_deserializer=response_class.FromString
        )
        try:
            yield from stub(request)
        except grpc.RpcError as exc:
            call: Any = exc
            code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
            details = str(call.details() if hasattr(call, "details") else exc)
            raise error_from_status(code, details, self._address) from None

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
