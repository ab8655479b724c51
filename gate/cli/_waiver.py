"""``gate waiver create|list|revoke``: time-bounded, owned exemptions from a policy or rule."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

import click

from gate.cli._output import as_json, output_option, table, when
from gate.errors import InvalidArgument


def _actor() -> str:
    """Who runs the command (recorded when the server does not authenticate the call)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _rows(waivers: Any) -> list[list[str]]:
    return [
        [
            w.id,
            w.policy + (f"/{w.rule}" if w.rule else ""),
            ", ".join(
                part
                for part in (
                    f"namespace={w.namespace}" if w.namespace else "",
                    f"image={w.image}" if w.image else "",
                    f"digest={w.digest}" if w.digest else "",
                )
                if part
            ),
            w.owner,
            when(w.expires_at),
            w.state,
        ]
        for w in waivers
    ]


def _show(waiver: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(as_json(waiver))
        return
    click.echo(table(["ID", "POLICY/RULE", "SUBJECT", "OWNER", "EXPIRES", "STATE"], _rows([waiver])))


@click.group("waiver")
def waiver() -> None:
    """Create, list and revoke waivers: time-bounded exemptions with an owner and a reason."""


@waiver.command("create")
@click.option(
    "--policy", required=True, help="Policy key: NAME, or NAMESPACE/NAME for a Policy (wildcards allowed)."
)
@click.option("--rule", default="", help="Rule name (wildcards allowed); default: every rule of the policy.")
@click.option("--namespace", default="", help="Namespace (pattern) of the subjects.")
@click.option("--image", default="", help="Image reference pattern, e.g. 'registry.example/team/*'.")
@click.option("--digest", default="", help="Artifact digest, e.g. sha256:<64 hex>.")
@click.option("--owner", required=True, help="Who answers for the waiver.")
@click.option("--reason", required=True, help="Why it is granted.")
@click.option(
    "--expires", default="", help="End: a date (2026-12-31, that day 00:00 UTC) or an ISO 8601 time."
)
@click.option("--for", "duration", default="", help="Or a duration from now: 12h, 14d, 2w.")
@output_option()
@click.pass_obj
def waiver_create(
    state: Any,
    /,
    policy: str,
    rule: str,
    namespace: str,
    image: str,
    digest: str,
    owner: str,
    reason: str,
    expires: str,
    duration: str,
    fmt: str,
) -> None:
    """Create a waiver; at least one of --namespace, --image and --digest, and one of --expires and --for."""
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.timestamp_pb2 import Timestamp

    from gate.v1 import waiver_pb2
    from gate.waivers import parse_duration, parse_expiry

    if bool(expires) == bool(duration):
        raise click.UsageError("give exactly one of --expires and --for")
    request = waiver_pb2.CreateWaiverRequest(
        policy=policy,
        rule=rule,
        namespace=namespace,
        image=image,
        digest=digest,
        owner=owner,
        reason=reason,
        actor=_actor(),
    )
    try:
        if duration:
            length = parse_duration(duration, "--for")
            request.duration.CopyFrom(Duration(seconds=int(length.total_seconds())))
        else:
            stamp = Timestamp()
            stamp.FromDatetime(parse_expiry(expires, datetime.now(UTC), "--expires"))
            request.expires_at.CopyFrom(stamp)
    except InvalidArgument as error:
        raise click.UsageError(error.message) from None
    created: Any = state.client().call("gate.v1.WaiverService/CreateWaiver", request)
    _show(created, fmt)


@waiver.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Also list expired and revoked waivers.")
@click.option("--policy", default="", help="Only waivers for this policy key.")
@output_option()
@click.pass_obj
def waiver_list(state: Any, /, include_inactive: bool, policy: str, fmt: str) -> None:
    """List waivers in force (soonest expiry first), or all of them with --all."""
    from gate.v1 import waiver_pb2

    request = waiver_pb2.ListWaiversRequest(include_inactive=include_inactive, policy=policy)
    response: Any = state.client().call("gate.v1.WaiverService/ListWaivers", request)
    if fmt == "json":
        click.echo(as_json(response))
        return
    click.echo(table(["ID", "POLICY/RULE", "SUBJECT", "OWNER", "EXPIRES", "STATE"], _rows(response.waivers)))


@waiver.command("revoke")
@click.argument("waiver_id")
@output_option()
@click.pass_obj
def waiver_revoke(state: Any, /, waiver_id: str, fmt: str) -> None:
    """Revoke a waiver: it never applies again (the record keeps who revoked it and when)."""
    from gate.v1 import waiver_pb2

    request = waiver_pb2.RevokeWaiverRequest(id=waiver_id, actor=_actor())
    revoked: Any = state.client().call("gate.v1.WaiverService/RevokeWaiver", request)
    _show(revoked, fmt)


COMMANDS = (waiver,)
