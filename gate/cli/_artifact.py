"""``gate artifact bind|unbind|projects``: which projects' pipelines may use an artifact (admin).

The first evidence a pipeline records for a digest binds the digest to that
pipeline's project; pipelines of other projects are then refused RPCs about it
(see :mod:`gate.server._scope`). These commands let an admin share an
artifact with more projects (a common base image) or undo a wrong binding.
They work on the evidence store named by the configuration, in process:
there is no RPC for them, so whoever can run them can already write to gate's
database. Running gates see a new binding at once and a removed one within
a few seconds (their cache).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from gate.core import utc_now
from gate.model import check_digest
from gate.store import EvidenceStore, open_store


def _actor() -> str:
    """Who runs the command, recorded with the binding."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _store(state: Any, digest: str) -> Iterator[EvidenceStore]:
    check_digest(digest, "DIGEST")
    if state.server:
        raise click.UsageError(
            "gate artifact works on the local evidence store (the configuration's database_url); "
            "run it without --server / $GATE_SERVER where that database is reachable"
        )
    config = state.config
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.effective_database_url)
    try:
        yield store
    finally:
        store.close()


def _projects(digest: str, projects: tuple[str, ...]) -> str:
    if not projects:
        return f"{digest}: bound to no project (the next pipeline to record evidence for it claims it)"
    return f"{digest}: bound to {', '.join(projects)}"


@click.group("artifact")
def artifact() -> None:
    """Show and change the projects an artifact is bound to (pipelines of other projects are refused it)."""


@artifact.command("bind")
@click.argument("digest")
@click.argument("project")
@click.pass_obj
def artifact_bind(state: Any, /, digest: str, project: str) -> None:
    """Bind DIGEST to PROJECT as well, so that PROJECT's pipelines may use it (idempotent)."""
    with _store(state, digest) as store:
        store.bind_artifact(digest, project, bound_by=_actor(), now=utc_now())
        click.echo(_projects(digest, store.artifact_projects(digest)))


@artifact.command("unbind")
@click.argument("digest")
@click.argument("project")
@click.pass_obj
def artifact_unbind(state: Any, /, digest: str, project: str) -> None:
    """Remove the binding of DIGEST to PROJECT (exit 1 if there was none)."""
    with _store(state, digest) as store:
        removed = store.unbind_artifact(digest, project)
        click.echo(_projects(digest, store.artifact_projects(digest)))
    if not removed:
        click.echo(f"gate: {digest} was not bound to {project}", err=True)
        raise click.exceptions.Exit(1)


@artifact.command("projects")
@click.argument("digest")
@click.pass_obj
def artifact_projects(state: Any, /, digest: str) -> None:
    """Print the projects DIGEST is bound to."""
    with _store(state, digest) as store:
        click.echo(_projects(digest, store.artifact_projects(digest)))


COMMANDS = (artifact,)
