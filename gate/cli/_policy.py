"""``gate policy``: run Kyverno tests and apply policies to resources, in process."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gate.cli import _output as out
from gate.errors import EvidenceError


@click.group("policy")
def policy() -> None:
    """Kyverno-compatible policies: test and apply them locally (no server needed)."""


def _plain_file_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # The name is looked for in every directory below DIRECTORY (as Kyverno's --file-name is);
    # a path or a wildcard would make that search something else, or fail inside pathlib.
    if not value or value in (".", "..") or "/" in value or any(c in value for c in "*?["):
        raise click.BadParameter(f"got {value!r}, expected a file name without directory or wildcard")
    return value


@policy.command("test")
@click.argument("directory", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-f",
    "--file-name",
    default="kyverno-test.yaml",
    show_default=True,
    callback=_plain_file_name,
    help="Test file name.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Also fail rows for which the engine produced no rule response (Kyverno counts them as passed).",
)
@click.option("--fail-only", is_flag=True, help="Print only the rows that disagree.")
def test_command(directory: Path, file_name: str, strict: bool, fail_only: bool) -> None:
    """Run every kyverno-test.yaml under DIRECTORY and compare with the expected results."""
    from policies._kyverno_test import run_tests

    report = run_tests(directory, file_name)
    rows = []
    for index, row in enumerate(report.rows, start=1):
        agrees = row.agrees(strict=strict)
        if fail_only and agrees:
            continue
        reason = row.reason
        if strict and row.no_response:
            reason = "no rule response (strict)"
        rows.append(
            [
                str(index),
                row.policy,
                row.rule,
                f"{row.kind}/{row.resource}" if row.kind else row.resource,
                "Pass" if agrees else "Fail",
                reason,
            ]
        )
    if rows:
        click.echo(out.table(["ID", "POLICY", "RULE", "RESOURCE", "RESULT", "REASON"], rows))
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    lenient_passed, lenient_failed = report.passed(strict=False), report.failed(strict=False)
    strict_passed, strict_failed = report.passed(strict=True), report.failed(strict=True)
    other = (
        f"(non-strict: {lenient_passed} passed, {lenient_failed} failed)"
        if strict
        else f"(strict: {strict_passed} passed, {strict_failed} failed)"
    )
    passed, failed = (strict_passed, strict_failed) if strict else (lenient_passed, lenient_failed)
    failed += len(report.errors)
    if report.errors:
        other += f"; {len(report.errors)} test file(s) could not be loaded"
    click.echo(f"{other}")
    rows_passed, rows_failed = report.expected_rows(strict=strict)
    click.echo(f"(expected rows: {rows_passed} passed, {rows_failed} failed; below, each resource counts)")
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        raise EvidenceError(f"{failed} test result(s) disagree with the expected results")


@policy.command("apply")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-r",
    "--resource",
    "resources",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Resource file or directory (repeatable).",
)
@click.option(
    "--operation", type=click.Choice(["CREATE", "UPDATE", "DELETE"]), default="CREATE", show_default=True
)
@click.option(
    "-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def apply_command(paths: tuple[Path, ...], resources: tuple[Path, ...], operation: str, fmt: str) -> None:
    """Evaluate the policies in PATHS against resources; exit 1 if an enforced rule denies.

    A resource file may also hold a recorded AdmissionReview: its request is evaluated with
    its own operation and user.
    """
    from policies import AdmissionRequest, load_policies
    from policies._apply import load_resources
    from policies._report import policy_reports

    bundle = load_policies(paths)
    for note in bundle.diagnostics:
        click.echo(f"warning: {note}", err=True)
    responses = []
    for resource in load_resources(resources):
        request = resource.get("request")
        if resource.get("kind") == "AdmissionReview" and isinstance(request, dict):
            # A recorded AdmissionReview is evaluated as the webhook would: its operation and user.
            responses.extend(bundle.evaluate(AdmissionRequest.from_admission_review(request)))
        else:
            responses.extend(bundle.evaluate_resource(resource, operation=operation))
    if fmt == "json":
        reports = policy_reports(responses)
        document = reports[0] if len(reports) == 1 else {"apiVersion": "v1", "kind": "List", "items": reports}
        click.echo(json.dumps(document, indent=2, sort_keys=False))
    else:
        rows = [
            [r.policy, r.rule, str(r.resource), r.report_outcome.value, r.action.value, r.message]
            for r in responses
        ]
        if rows:
            click.echo(out.table(["POLICY", "RULE", "RESOURCE", "RESULT", "ACTION", "MESSAGE"], rows))
        counts = {
            o: sum(1 for r in responses if r.report_outcome.value == o)
            for o in ("pass", "fail", "warn", "error", "skip")
        }
        click.echo(", ".join(f"{n} {o}" for o, n in counts.items()))
    blocking = [r for r in responses if r.blocks]
    if blocking:
        first = blocking[0]
        raise EvidenceError(
            f"{len(blocking)} enforced rule(s) deny; first: {first.policy}/{first.rule} on {first.resource}"
        )


COMMANDS = (policy,)
