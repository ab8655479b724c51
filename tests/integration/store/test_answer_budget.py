"""PostgreSQL behind a stalled path: a caller's answer budget ends its reads, and nothing else's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gate.errors import StoreUnavailable
from gate.store import DecisionQuery, EvidenceStore, open_store
from gate.store._budget import answering_within
from tests.conftest import drop_postgres_schema, fresh_postgres_url
from tests.integration.hardening.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

BUDGET = 1.0


@pytest.fixture
def proxied_store(postgres_admin: sa.Engine) -> Iterator[tuple[EvidenceStore, TcpProxy]]:
    admin_url = postgres_admin.url
    proxy = TcpProxy((admin_url.host or "127.0.0.1", admin_url.port or 5432))
    schema, url = fresh_postgres_url(postgres_admin)
    through_proxy = make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    store = open_store(through_proxy, pool_size=2, max_overflow=0)
    try:
        yield store, proxy
    finally:
        proxy.restore()
        store.close()
        proxy.close()
        drop_postgres_schema(postgres_admin, schema)


def _timed_failure(read: object) -> tuple[float, str]:
    assert callable(read)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        read()
    return time.monotonic() - started, raised.value.message


def test_a_stalled_point_read_ends_with_the_budget_and_does_not_reconnect(
    proxied_store: tuple[EvidenceStore, TcpProxy],
) -> None:
    store, proxy = proxied_store
    assert store.get_scan("warm-up") is None
    proxy.stall()
    with answering_within(BUDGET):
        took, message = _timed_failure(lambda: store.get_scan("during the stall"))
    # One budget, not a second one for the reconnect a dropped connection normally gets.
    assert BUDGET <= took < BUDGET + 0.5
    assert message == f"evidence store unavailable: no answer from PostgreSQL within {BUDGET:.1f} s"
    proxy.restore()
    with answering_within(BUDGET):
        assert store.get_scan("after the stall") is None


def test_a_stalled_pooled_read_ends_with_the_budget_and_the_pool_recovers(
    proxied_store: tuple[EvidenceStore, TcpProxy],
) -> None:
    store, proxy = proxied_store
    assert store.list_decisions(DecisionQuery()).items == ()
    proxy.stall()
    # More calls than the pool holds connections: none of them keeps one.
    for _ in range(3):
        with answering_within(BUDGET):
            took, message = _timed_failure(lambda: store.list_decisions(DecisionQuery()))
        # A call that needs a new connection gets libpq's shortest connect_timeout, 2 s.
        assert took < max(BUDGET, 2.0) + 0.5
        assert "PostgreSQL" in message or "connection timeout expired" in message
    proxy.restore()
    with answering_within(BUDGET):
        assert store.list_decisions(DecisionQuery()).items == ()


def test_the_deadline_caps_the_budget(proxied_store: tuple[EvidenceStore, TcpProxy]) -> None:
    store, proxy = proxied_store
    assert store.get_scan("warm-up") is None
    proxy.stall()
    with answering_within(10.0, deadline=time.monotonic() + 0.5):
        took, _ = _timed_failure(lambda: store.get_scan("during the stall"))
    assert 0.5 <= took < 1.0


def test_without_a_budget_a_stalled_read_waits_for_the_database(
    proxied_store: tuple[EvidenceStore, TcpProxy],
) -> None:
    store, proxy = proxied_store
    assert store.get_scan("warm-up") is None
    proxy.stall()
    threading.Timer(2 * BUDGET, proxy.restore).start()
    started = time.monotonic()
    # Migrations, the CLI and background writers carry no budget: they wait, as before.
    assert store.get_scan("waits") is None
    assert time.monotonic() - started >= 2 * BUDGET - 0.1
