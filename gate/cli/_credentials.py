"""``gate credentials``: a project's pipeline credentials on Kubernetes (admin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gate.cli import _output as out
from gate.cli._input import read_input

# Generous caps on what is read from files; the server checks the exact limits.
_MAX_FILE_BYTES = 64 * 1024


def _read(path: Path | None, option: str) -> bytes:
    return read_input(path, option, _MAX_FILE_BYTES)


def _show(result: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(out.as_json(result))
        return
    rows = [[c.kind, f"{c.namespace}/{c.name}", c.action] for c in result.objects]
    click.echo(out.table(["KIND", "OBJECT", "ACTION"], rows))
    click.echo(f"pipeline ServiceAccount: {result.service_account}")


@click.group("credentials")
def credentials() -> None:
    """Create, rotate and delete a project's Git and registry credentials on Kubernetes."""


def _material_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--project", required=True, help="Project name (a DNS label)."),
            click.option("--namespace", default="", help="Namespace of the project; default: the project."),
            click.option(
                "--ssh-key",
                "ssh_key",
                required=True,
                type=click.Path(path_type=Path, dir_okay=False),
                help="Git SSH private key (OpenSSH or PEM, unencrypted).",
            ),
            click.option(
                "--known-hosts",
                type=click.Path(path_type=Path, dir_okay=False),
                help="known_hosts lines for the Git server.",
            ),
            click.option("--git-host", default="", help="Git host for Tekton's annotation, e.g. github.com."),
            click.option("--registry", required=True, help="Registry host[:port]."),
            click.option("--username", required=True, help="Registry user name."),
            click.option(
                "--password-file",
                required=True,
                type=click.Path(path_type=Path, dir_okay=False),
                help="File holding the registry password or token.",
            ),
            out.output_option(),
        ]
    ):
        command = option(command)
    return command


def _material_request(
    project: str,
    namespace: str,
    ssh_key: Path,
    known_hosts: Path | None,
    git_host: str,
    registry: str,
    username: str,
    password_file: Path,
) -> Any:
    from gate.v1 import credentials_pb2

    return credentials_pb2.ProjectCredentialsRequest(
        project=project,
        namespace=namespace,
        ssh_private_key=_read(ssh_key, "--ssh-key"),
        known_hosts=_read(known_hosts, "--known-hosts"),
        git_host=git_host,
        registry=registry,
        username=username,
        password=_read(password_file, "--password-file"),
    )


def _material_command(name: str, method: str, summary: str) -> None:
    """Register ``gate credentials NAME``: it sends the project's material to ``method``."""

    @credentials.command(name, help=summary)
    @_material_options
    @click.pass_obj
    def command(state: Any, /, fmt: str, known_hosts: Path | None, **options: Any) -> None:
        request = _material_request(
            options["project"],
            options["namespace"],
            options["ssh_key"],
            known_hosts,
            options["git_host"],
            options["registry"],
            options["username"],
            options["password_file"],
        )
        _show(state.client().call(f"gate.v1.CredentialsService/{method}", request), fmt)


_material_command(
    "apply",
    "ApplyProjectCredentials",
    "Create or update the project's Secrets, ServiceAccount, Role and RoleBinding.",
)
_material_command(
    "rotate",
    "RotateProjectCredentials",
    "Replace the Secrets of a project that has them (exit 1 when it has none).",
)


@credentials.command("delete")
@click.option("--project", required=True, help="Project name.")
@click.option("--namespace", default="", help="Namespace of the project; default: the project.")
@out.output_option()
@click.pass_obj
def delete_command(state: Any, /, project: str, namespace: str, fmt: str) -> None:
    """Delete the project's credential objects (absent ones are reported, not errors)."""
    from gate.v1 import credentials_pb2

    request = credentials_pb2.DeleteProjectCredentialsRequest(project=project, namespace=namespace)
    _show(state.client().call("gate.v1.CredentialsService/DeleteProjectCredentials", request), fmt)


COMMANDS = (credentials,)
