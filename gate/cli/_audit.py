"""``gate audit verify``, ``gate audit replay`` and ``gate audit public-key``: proving decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from gate.cli._input import KEY_BYTES, read_input, read_text_input
from gate.errors import EvidenceError
from gate.v1 import audit_pb2


@click.command("verify")
@click.argument("decision_id")
@click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="PEM public key to verify against (default: gate's decision key).",
)
@click.option(
    "--local",
    is_flag=True,
    help="Verify here, not on the server: the decision's statement and seal are fetched and checked "
    "against --key, so the server is not trusted to check its own records.",
)
@click.pass_obj
def audit_verify(state: Any, /, decision_id: str, key: Path | None, local: bool) -> None:
    """Check a decision record's signature and that it matches what was signed (exit 1 if not)."""
    if local:
        _verify_locally(state, decision_id, key)
        return
    public = read_text_input(key, "--key", KEY_BYTES) if key is not None else ""
    request = audit_pb2.VerifyDecisionRequest(id=decision_id, public_key=public)
    check: Any = state.client().call("gate.v1.AuditService/VerifyDecision", request)
    if not check.verified:
        raise EvidenceError(f"decision {decision_id} does not verify: {check.reason}")
    click.echo(f"Verified OK: decision {decision_id} signed by {check.signer}")


def _verify_locally(state: Any, decision_id: str, key: Path | None) -> None:
    from gate.audit import verify_statement

    if key is None:
        # The server's own key would let a server that lies vouch for itself.
        raise click.UsageError(
            "--local needs --key: the decision key you trust (from `gate audit public-key`)"
        )
    request = audit_pb2.GetDecisionRequest(id=decision_id)
    decision: Any = state.client().call("gate.v1.AuditService/GetDecision", request)
    if not decision.statement:
        raise EvidenceError(
            f"decision {decision_id}: the server sent no statement to check (a gate from before seals); "
            "verify it on the server instead (without --local)"
        )
    check = verify_statement(decision.statement, decision.signature, read_input(key, "--key", KEY_BYTES))
    if not check.verified:
        raise EvidenceError(f"decision {decision_id} does not verify: {check.reason}")
    try:
        signed = json.loads(check.statement)
    except ValueError:
        signed = None
    predicate = signed.get("predicate") if isinstance(signed, dict) else None
    if not isinstance(predicate, dict):
        raise EvidenceError(
            f"decision {decision_id} does not verify: what was signed is not a decision's in-toto "
            "Statement (expected a JSON object with a predicate)"
        )
    if predicate.get("id") != decision_id:
        raise EvidenceError(
            f"decision {decision_id} does not verify: the signed statement is about decision "
            f"{predicate.get('id')!r}, expected {decision_id}"
        )
    answer = "allowed" if predicate.get("allowed") else "denied"
    click.echo(f"Verified OK (here): decision {decision_id} signed by {check.signer}")
    click.echo(
        f"signed record: {answer} at {predicate.get('decidedAt')}, stage {predicate.get('stage')}, "
        f"caller {predicate.get('caller') or '-'}, {len(predicate.get('results') or ())} rule results, "
        f"policy bundle {predicate.get('policyBundleDigest') or '-'}"
    )


@click.command("replay")
@click.argument("decision_id")
@click.pass_obj
def audit_replay(state: Any, /, decision_id: str) -> None:
    """Re-evaluate a recorded decision with its policies and evidence; exit 1 if the outcome differs."""
    request = audit_pb2.ReplayDecisionRequest(id=decision_id)
    replay: Any = state.client().call("gate.v1.AuditService/ReplayDecision", request)
    recorded = "allowed" if replay.recorded.allowed else "denied"
    replayed = "allowed" if replay.replayed.allowed else "denied"
    click.echo(f"recorded: {recorded}, {len(replay.recorded.results)} rule results")
    click.echo(f"replayed: {replayed}, {len(replay.replayed.results)} rule results")
    if not replay.bundle_found:
        click.echo("note: the recorded policy bundle is not kept by this gate")
    for difference in replay.differences:
        click.echo(f"  differs: {difference}")
    if not replay.same:
        raise click.exceptions.Exit(1)
    click.echo("same outcome")


@click.command("public-key")
@click.pass_obj
def audit_public_key(state: Any, /) -> None:
    """Print the PEM public key gate signs decision records with (for offline verification)."""
    key: Any = state.client().call("gate.v1.AuditService/GetDecisionKey", audit_pb2.GetDecisionKeyRequest())
    click.echo(key.public_key.rstrip("\n"))
    click.echo(f"# fingerprint {key.fingerprint}", err=True)


@click.command("reports")
@click.option("--since", help="Only decisions at or after this ISO 8601 time.")
@click.option("--namespace", default="", help="Only resources in this namespace.")
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(("yaml", "json")),
    default="yaml",
    show_default=True,
    help="yaml: a multi-document stream; json: a v1 List (both go to kubectl apply -f -).",
)
@click.pass_obj
def audit_reports(state: Any, /, since: str | None, namespace: str, fmt: str) -> None:
    """Export PolicyReports (wgpolicyk8s.io/v1alpha2): one per resource, its latest decision."""
    from gate.cli._read import _parse_time

    request = audit_pb2.ExportPolicyReportsRequest(namespace=namespace)
    since_time = _parse_time(since, "--since")
    if since_time is not None:
        request.since.FromDatetime(since_time)
    answer: Any = state.client().call("gate.v1.AuditService/ExportPolicyReports", request)
    reports = [json.loads(report) for report in answer.reports]
    if fmt == "json":
        click.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": reports}, indent=2))
    elif reports:
        # For kubectl: strings it would read as numbers or booleans are quoted.
        from policies._yaml import KubernetesDumper

        click.echo(yaml.dump_all(reports, Dumper=KubernetesDumper, sort_keys=False), nl=False)


AUDIT_COMMANDS = (audit_verify, audit_replay, audit_public_key, audit_reports)
