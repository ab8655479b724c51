"""The ``gate`` command line.

With ``--server HOST:PORT`` (or ``$GATE_SERVER``) commands call a running
gate; without, they work in process on the local store named by the
configuration. Exit codes: 0 success, 1 the request or the evidence was bad,
2 usage or configuration error, 3 infrastructure failure (retry).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

import gate
from gate.cli import _text
from gate.cli._client import Client, LocalClient, RemoteClient
from gate.config import Config, load_config
from gate.errors import ConfigError, EvidenceError, GateError, InfrastructureError

EXIT_EVIDENCE = 1
EXIT_USAGE = 2
EXIT_INFRASTRUCTURE = 3


@dataclass
class Context:
    """What the group options give every command."""

    config_path: Path | None
    server: str
    server_ca: Path | None
    timeout: float
    token_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    project: str = ""
    _config: Config | None = field(default=None, repr=False)
    _client: Client | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        """The loaded configuration (loaded on first use)."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def client(self) -> Client:
        """A remote client with ``--server``, else an in-process one over the local store."""
        if self._client is None:
            if self.server:
                self._client = RemoteClient(
                    self.server,
                    ca_file=self.server_ca,
                    timeout=self.timeout,
                    token_file=self.token_file,
                    client_cert=self.client_cert,
                    client_key=self.client_key,
                    project=self.project,
                )
            else:
                self._client = LocalClient(self.config)
        return self._client

    def close(self) -> None:
        """Release the client."""
        if self._client is not None:
            self._client.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="GATE_CONFIG",
    help="Configuration file (YAML). Default: $GATE_CONFIG, else built-in defaults.",
)
@click.option(
    "--server",
    envvar="GATE_SERVER",
    default="",
    metavar="HOST:PORT",
    help="Call a running gate at this gRPC address instead of the local store.",
)
@click.option(
    "--server-ca",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="GATE_SERVER_CA",
    help="PEM CA bundle to verify a TLS gRPC server; without it the connection is plain.",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds per call."
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="GATE_TOKEN_FILE",
    help="File holding a bearer token sent to a remote gate (--server).",
)
@click.option(
    "--client-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="GATE_CLIENT_CERT",
    help="PEM client certificate for mutual TLS with a remote gate (with --client-key).",
)
@click.option(
    "--client-key",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="GATE_CLIENT_KEY",
    help="PEM private key of --client-cert.",
)
@click.option(
    "--project",
    envvar="GATE_PROJECT",
    default="",
    help="Project a remote call acts for, filled into requests that name one (pipeline identities).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    server: str,
    server_ca: Path | None,
    timeout: float,
    token_file: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    project: str,
) -> None:
    """gate: supply-chain security and policy gate."""
    state = Context(
        config_path=config_path,
        server=server,
        server_ca=server_ca,
        timeout=timeout,
        token_file=token_file,
        client_cert=client_cert,
        client_key=client_key,
        project=project,
    )
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command()
def version() -> None:
    """Print gate's version and which build of the policy engine runs."""
    from policies import engine_compiled

    click.echo(f"gate {gate.__version__}")
    click.echo(f"policy engine: {'compiled (mypyc)' if engine_compiled() else 'interpreted'}")


@cli.command()
@click.pass_obj
def serve(state: Context) -> None:
    """Run the gRPC API, the admission webhook and the metrics listener."""
    from gate import _logging
    from gate.server import serve as run_server

    config = state.config
    _logging.configure(config.log.level, config.log.format)
    run_server(config)


def _register_commands() -> None:
    from gate.cli import (
        _artifact,
        _audit,
        _credentials,
        _decide,
        _policy,
        _read,
        _sbom,
        _sbom_read,
        _scan,
        _verify,
        _verify_image,
        _waiver,
    )

    commands = (
        *_read.COMMANDS,
        *_policy.COMMANDS,
        *_verify.COMMANDS,
        *_verify_image.COMMANDS,
        *_decide.COMMANDS,
        *_credentials.COMMANDS,
        *_waiver.COMMANDS,
        *_artifact.COMMANDS,
    )
    for group in commands:
        cli.add_command(group)
    for command in _audit.AUDIT_COMMANDS:
        _read.audit.add_command(command)
    for command in _scan.SCAN_COMMANDS:
        _read.scan.add_command(command)
    for command in (*_sbom.SBOM_COMMANDS, *_sbom_read.SBOM_READ_COMMANDS):
        _read.sbom.add_command(command)


_register_commands()
_text.require_utf8_text(cli)


# Error family -> (what the message starts with, exit code); first match wins.
_ERROR_EXITS: tuple[tuple[type[GateError], str, int], ...] = (
    (ConfigError, "configuration error", EXIT_USAGE),
    (InfrastructureError, "unavailable", EXIT_INFRASTRUCTURE),
    (EvidenceError, "error", EXIT_EVIDENCE),
    (GateError, "error", EXIT_EVIDENCE),
)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    try:
        # Outside standalone mode click returns (not raises) the code of an Exit.
        code = cli.main(args=argv, prog_name="gate", standalone_mode=False)
        if isinstance(code, int):
            return code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("gate: aborted", err=True)
        return 130
    except GateError as exc:
        prefix, code = next((p, c) for cls, p, c in _ERROR_EXITS if isinstance(exc, cls))
        click.echo(f"gate: {prefix}: {exc.message}", err=True)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
