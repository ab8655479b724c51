"""SearchComponents over a store of 10,000 SBOMs x 300 components (3 million rows), SQLite and PostgreSQL.

Fills a fresh store through the store's bulk path (``EvidenceStore.add_sboms``:
executemany on SQLite, COPY on PostgreSQL), then times first pages of
``Gate.search_components`` for three query shapes:

* ``name``: an exact component name (``--name``), any ecosystem;
* ``purl``: a purl prefix (``pkg:deb/debian/libc6``), normalised like stored purls;
* ``purl+range``: a purl with a version range in the ecosystem's order
  (``>=1.4,<1.9`` compared as PEP 440, semver, Debian or Alpine versions).

The baseline is a plain indexed ``SELECT ... WHERE name_lower = ? ORDER BY ...
LIMIT 100`` through the bare DB-API driver on the same database in the same run.
Prints p50/p95 per shape and backend and the ratio to the baseline; the target
is p95 <= 50 ms.

    python benchmarks/sbom_search.py                        # both backends, 10,000 x 300
    python benchmarks/sbom_search.py --sboms 1000 --backends sqlite
    python benchmarks/sbom_search.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

PostgreSQL runs in a schema of its own (``gate_bench_<hex>``), dropped at the
end; SQLite in a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import import_checkout, percentile

import_checkout()

import sqlalchemy as sa  # noqa: E402

from gate.core import Gate  # noqa: E402
from gate.model import Component, Sbom, SbomFormat  # noqa: E402
from gate.store import ComponentQuery, EvidenceStore, NewSbom, open_store  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Package pools per ecosystem: (purl template, version generator).
ECOSYSTEMS: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "deb": (
        "pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12",
        lambda r: (
            f"{r.choice(['', '1:', '2:'])}{r.randint(0, 9)}.{r.randint(0, 40)}.{r.randint(0, 9)}-"
            f"{r.randint(1, 9)}{r.choice(['', '+deb12u1', '+deb12u3', '~bpo12+1'])}"
        ),
    ),
    "apk": (
        "pkg:apk/alpine/{name}@{version}?arch=x86_64&distro=3.20.3",
        lambda r: (
            f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 9)}"
            f"{r.choice(['', '_rc1', '_p1', 'a'])}-r{r.randint(0, 5)}"
        ),
    ),
    "pypi": (
        "pkg:pypi/{name}@{version}",
        lambda r: (
            f"{r.randint(0, 9)}.{r.randint(0, 40)}.{r.randint(0, 9)}{r.choice(['', '', 'rc1', '.post1'])}"
        ),
    ),
    "npm": (
        "pkg:npm/{name}@{version}",
        lambda r: f"{r.randint(0, 9)}.{r.randint(0, 40)}.{r.randint(0, 9)}{r.choice(['', '', '-beta.1'])}",
    ),
    "golang": (
        "pkg:golang/github.com/org{ns}/{name}@{version}",
        lambda r: f"v{r.randint(0, 3)}.{r.randint(0, 40)}.{r.randint(0, 9)}",
    ),
}


def package_pool(rng: random.Random, per_ecosystem: int, versions: int) -> list[list[Component]]:
    """Packages as lists of their versions (each a Component), popular ones first."""
    pool: list[list[Component]] = []
    for index in range(per_ecosystem):
        for ecosystem, (template, make_version) in ECOSYSTEMS.items():
            name = f"{ecosystem[:2]}lib{index}"
            seen = {make_version(rng) for _ in range(versions)}
            pool.append(
                [
                    Component(
                        type="library",
                        name=name,
                        version=version,
                        purl=template.format(name=name, version=version, ns=index % 50),
                        licenses=(rng.choice(["MIT", "Apache-2.0", "GPL-2.0-only", "BSD-3-Clause"]),),
                    )
                    for version in sorted(seen)
                ]
            )
    return pool


def make_sboms(
    rng: random.Random, pool: list[list[Component]], count: int, per_sbom: int
) -> Iterator[list[NewSbom]]:
    """Batches of SBOMs; package popularity follows a power law (libc6 is in every image)."""
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(pool))]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[NewSbom] = []
    for number in range(count):
        packages = set(rng.choices(range(len(pool)), weights=weights, k=per_sbom * 2))
        chosen = sorted(packages)[:per_sbom] if len(packages) >= per_sbom else sorted(packages)
        components = [rng.choice(pool[index]) for index in chosen]
        sbom_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        document = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "n": number}).encode()
        batch.append(
            NewSbom(
                sbom=Sbom(
                    id=sbom_id,
                    artifact_digest="sha256:" + f"{number:064x}",
                    format=SbomFormat.CYCLONEDX_JSON,
                    spec_version="1.6",
                    generator="benchmark",
                    created_at=start + timedelta(seconds=number),
                    component_count=len(components),
                    document_digest="sha256:" + "0" * 64,
                ),
                document=document,
                components=components,
            )
        )
        if len(batch) == 200:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(store: EvidenceStore, args: argparse.Namespace) -> tuple[float, int, list[list[Component]]]:
    rng = random.Random(args.seed)
    pool = package_pool(rng, args.packages, args.versions)
    began = time.perf_counter()
    rows = 0
    for batch in make_sboms(rng, pool, args.sboms, args.components):
        store.add_sboms(batch)
        rows += sum(len(item.components) for item in batch)
    return time.perf_counter() - began, rows, pool


def timed(call: Callable[[], Any], rounds: int) -> tuple[list[float], Any]:
    result = None
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples, result


def queries(
    pool: list[list[Component]], rng: random.Random, count: int
) -> dict[str, list[Callable[[Gate], Any]]]:
    """Query callables per shape, drawn from popular and rare packages alike."""
    picks = [pool[min(int(rng.paretovariate(0.7)) - 1, len(pool) - 1)] for _ in range(count)]
    shapes: dict[str, list[Callable[[Gate], Any]]] = {"name": [], "purl": [], "purl+range": []}
    for versions in picks:
        component = versions[0]
        prefix = component.purl.split("@", 1)[0]
        low, high = sorted(rng.sample([v.version for v in versions] * 2, 2))
        version_range = f">={low},<{high}" if low != high else f">={low}"
        shapes["name"].append(lambda g, n=component.name: g.search_components(ComponentQuery(name=n)))
        shapes["purl"].append(lambda g, p=prefix: g.search_components(ComponentQuery(purl=p)))
        shapes["purl+range"].append(
            lambda g, p=prefix, r=version_range: g.search_components(ComponentQuery(purl=p), version_range=r)
        )
    return shapes


def baseline(url: str, names: list[str]) -> list[float]:
    """Plain indexed SELECTs (first page by name) through the bare driver."""
    sql = (
        "SELECT sbom_id, position, name, version, purl FROM sbom_components WHERE name_lower = {mark} "
        "ORDER BY name_lower, sbom_id, position LIMIT 101"
    )
    samples = []
    if url.startswith("sqlite"):
        import sqlite3

        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        statement = sql.format(mark="?")
    else:
        import psycopg

        parsed = sa.make_url(url)
        conn = psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password,
            dbname=parsed.database, options=parsed.query.get("options", ""), autocommit=True,
        )  # fmt: skip
        statement = sql.format(mark="%s")
    try:
        for name in names:
            began = time.perf_counter()
            cursor = conn.execute(statement, (name,))
            cursor.fetchall()
            samples.append((time.perf_counter() - began) * 1000)
    finally:
        conn.close()
    return samples


@contextmanager
def backend_url(name: str, postgres: str) -> Iterator[str]:
    if name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="gate-sbom-bench-") as tmp:
            yield f"sqlite:///{tmp}/gate.db"
        return
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    schema = f"gate_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            sa.make_url(postgres)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def run_backend(name: str, args: argparse.Namespace) -> list[str]:
    lines = []
    with backend_url(name, args.postgres_url) as url:
        store = open_store(url)
        try:
            seconds, rows, pool = fill(store, args)
            lines.append(f"{name}: filled {args.sboms} SBOMs, {rows:,} component rows in {seconds:.1f} s")
            if name == "postgresql":
                # What autovacuum does to a table after a bulk load: statistics, and the
                # visibility map that lets index-only scans skip the table.
                engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    conn.execute(sa.text("VACUUM ANALYZE sbom_components"))
                    conn.execute(sa.text("VACUUM ANALYZE sboms"))
                engine.dispose()
            gate = Gate(store)
            rng = random.Random(args.seed + 1)
            shapes = queries(pool, rng, args.queries)
            names = [
                pool[min(int(rng.paretovariate(0.7)) - 1, len(pool) - 1)][0].name for _ in range(args.queries)
            ]
            base = baseline(url, names)
            base_p50, base_p95 = percentile(base, 0.5), percentile(base, 0.95)
            lines.append(f"  {'baseline SELECT':<16} p50 {base_p50:7.2f} ms  p95 {base_p95:7.2f} ms")
            for shape, calls in shapes.items():
                for call in calls[:5]:
                    call(gate)  # warm the statement caches
                samples = []
                matches = []
                for call in calls:
                    took, page = timed(lambda c=call: c(gate), 1)
                    samples.extend(took)
                    matches.append(len(page.items))
                p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
                verdict = "ok" if p95 <= 50 else "OVER 50 ms"
                lines.append(
                    f"  {shape:<16} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  ratio p95 {p95 / base_p95:5.1f}x  "
                    f"mean matches/page {sum(matches) / len(matches):5.1f}  [{verdict}]"
                )
        finally:
            store.close()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sboms", type=int, default=10_000)
    parser.add_argument("--components", type=int, default=300, help="components per SBOM")
    parser.add_argument("--packages", type=int, default=1000, help="packages per ecosystem in the pool")
    parser.add_argument("--versions", type=int, default=12, help="versions per package")
    parser.add_argument("--queries", type=int, default=300, help="queries per shape")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    print(f"sbom_search: {args.sboms} SBOMs x {args.components} components, {args.queries} queries per shape")
    for name in args.backends.split(","):
        for line in run_backend(name.strip(), args):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
