"""Fixtures shared by unit and integration tests.

PostgreSQL: tests run at ``GATE_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), each in a schema of its
own that is dropped afterwards. An unreachable PostgreSQL fails the tests that
need it: a skipped backend would pass unnoticed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gate.config import Config, load_config
from gate.server import BoundAddresses, GateServer
from gate.store import EvidenceStore

ASSETS = Path(__file__).parent / "assets"

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Undo what ``gate serve`` run in process does to logging (gate._logging.configure).

    It replaces the root logger's handlers, pytest's among them, so a later test's servers
    logged their warnings into that test's captured stderr.
    """
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "alembic")
    saved = [(logging.getLogger(n), list(logging.getLogger(n).handlers)) for n in names]
    levels = [(logger, logger.level, logger.propagate) for logger, _ in saved]
    yield
    for logger, handlers in saved:
        logger.handlers[:] = handlers
    for logger, level, propagate in levels:
        logger.setLevel(level)
        logger.propagate = propagate


def postgres_admin_url() -> sa.URL:
    """The URL of the test PostgreSQL server, with the psycopg 3 driver."""
    url = make_url(os.environ.get("GATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    return url.set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An autocommit engine on the test server, or a failed test saying why there is none."""
    url = postgres_admin_url()
    engine = sa.create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 3},
    )
    problem = ""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        problem = str(error.orig).splitlines()[0]
    if problem:
        engine.dispose()
        pytest.fail(
            f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable ({problem}); "
            "start it or point GATE_TEST_POSTGRES_URL at one",
            pytrace=False,
        )
    yield engine
    engine.dispose()


def fresh_postgres_url(admin: sa.Engine) -> tuple[str, str]:
    """Create an empty schema; return its name and a URL whose search_path is that schema."""
    schema = f"gate_t_{uuid.uuid4().hex}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_admin_url().update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def drop_postgres_schema(admin: sa.Engine, schema: str) -> None:
    """Drop a schema made by fresh_postgres_url, with everything in it."""
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture
def postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """The URL of an empty PostgreSQL schema, for tests about PostgreSQL only."""
    schema, url = fresh_postgres_url(postgres_admin)
    try:
        yield url
    finally:
        drop_postgres_schema(postgres_admin, schema)


@pytest.fixture
def asset() -> Callable[[str], Path]:
    """Path of a file under tests/assets/."""

    def find(name: str) -> Path:
        path = ASSETS / name
        assert path.exists(), f"missing test asset {path}"
        return path

    return find


def loopback_config(data_dir: Path, **env: str) -> Config:
    """A configuration listening on free loopback ports, data under ``data_dir``."""
    environ = {
        "GATE_DATA_DIR": str(data_dir),
        "GATE_GRPC_LISTEN": "127.0.0.1:0",
        "GATE_WEBHOOK_LISTEN": "127.0.0.1:0",
        "GATE_METRICS_LISTEN": "127.0.0.1:0",
        **env,
    }
    return load_config(None, environ)


def unverified_tls() -> ssl.SSLContext:
    """A client TLS context that accepts any certificate (gate's self-signed one in tests)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ManualClock:
    """A clock (``time.monotonic``'s shape) that moves only when a test sets ``now``."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class WhereItRan:
    """Notes the thread of each call; with ``needs_io`` each call would wait (gate._nonblocking)."""

    def __init__(self, *, needs_io: bool) -> None:
        self.needs_io = needs_io
        self.threads: list[str] = []

    def note(self) -> None:
        """Record this call's thread, then refuse on an event loop if the call would wait."""
        from gate._nonblocking import may_block

        self.threads.append(threading.current_thread().name)
        if self.needs_io:
            may_block("the store")


@dataclass
class RunningGate:
    """A gate served in a background thread of the test process."""

    config: Config
    addresses: BoundAddresses
    channel: grpc.Channel
    server: GateServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    def call(self, method: str, request: object, response_class: type) -> object:
        """Invoke a unary RPC and return the response message."""
        stub = self.channel.unary_unary(
            f"/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return stub(request, timeout=10)

    def request_stop(self) -> None:
        """Begin a graceful shutdown, as SIGTERM does."""
        self.loop.call_soon_threadsafe(self.server.request_stop)

    def stop(self) -> None:
        """Shut down and wait for the server thread to end."""
        self.channel.close()
        if self.thread.is_alive():
            self.request_stop()
            self.thread.join(30)
        assert not self.thread.is_alive(), "gate did not stop within 30 s"


@pytest.fixture
def serve_gate() -> Iterator[Callable[..., RunningGate]]:
    """Start gate servers in background threads; stop them at teardown."""
    running: list[RunningGate] = []

    def start(config: Config, store: EvidenceStore | None = None) -> RunningGate:
        server = GateServer(config, store=store)
        ready = threading.Event()
        box: dict[str, object] = {}
        loop = asyncio.new_event_loop()

        def on_ready(addresses: BoundAddresses) -> None:
            box["addresses"] = addresses
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(server.run(on_ready))
            except BaseException as exc:  # surfaced to the test below
                box["error"] = exc
                ready.set()

        thread = threading.Thread(target=run, name="gate-under-test", daemon=True)
        thread.start()
        assert ready.wait(30), "gate did not start within 30 s"
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        addresses = box["addresses"]
        assert isinstance(addresses, BoundAddresses)
        gate = RunningGate(config, addresses, grpc.insecure_channel(addresses.grpc), server, loop, thread)
        running.append(gate)
        return gate

    yield start
    for gate in running:
        gate.stop()
