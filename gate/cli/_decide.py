"""``gate decide``: the allow/deny answer for a pipeline stage, explained, as the exit status.

Exit 0 when allowed, 1 when denied (the explanation lists each failing rule and how to
fix it), 2 for usage errors, 3 when gate could not be reached or could not decide.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gate.cli._input import read_input
from gate.errors import InvalidArgument

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_SHOWN = {"RULE_OUTCOME_FAIL": "FAIL", "RULE_OUTCOME_ERROR": "ERROR", "RULE_OUTCOME_WARN": "WARN"}


def _request(stage: str, image: str, manifest: Path | None, source: str, project: str, dry_run: bool) -> Any:
    from gate.v1 import common_pb2, decision_pb2

    given = [
        name for name, value in (("--image", image), ("--manifest", manifest), ("--source", source)) if value
    ]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --image, --manifest and --source")
    request = decision_pb2.DecideRequest(stage=stage, project=project, dry_run=dry_run)
    if image:
        if image.startswith("sha256:"):
            request.artifact.CopyFrom(common_pb2.ArtifactRef(digest=image))
        else:
            request.artifact.CopyFrom(common_pb2.ArtifactRef(reference=image))
    elif manifest is not None:
        request.manifest = read_input(manifest, "--manifest", MAX_MANIFEST_BYTES)
    else:
        repository, at, commit = source.rpartition("@")
        if not at or not repository or not commit:
            raise click.BadParameter(f"expected REPOSITORY@COMMIT, got {source!r}", param_hint="--source")
        request.source.CopyFrom(decision_pb2.SourceTree(repository=repository, commit=commit))
    return request


def _explain(decision: Any) -> None:
    verdict = "ALLOWED" if decision.allowed else "DENIED"
    click.echo(
        f"{verdict} at stage {decision.stage!r}"
        + (f" (decision {decision.id})" if decision.id else " (dry run)")
    )
    failing = [r for r in decision.results if _outcome(r) in _SHOWN]
    if not decision.allowed or failing:
        for result in failing:
            click.echo(f"  {_SHOWN[_outcome(result)]:5} {result.policy}/{result.rule} on {result.resource}")
            for line in result.message.strip().splitlines():
                click.echo(f"        {line}")
            if result.remediation:
                click.echo(f"        fix: {result.remediation}")
    passed = sum(1 for r in decision.results if _outcome(r) == "RULE_OUTCOME_PASS")
    click.echo(f"{passed} rules passed, {len(failing)} did not, {len(decision.results)} evaluated")


def _outcome(result: Any) -> str:
    from gate.v1 import decision_pb2

    return str(decision_pb2.RuleOutcome.Name(result.outcome))


@click.command("decide")
@click.option("--stage", required=True, help="Pipeline stage, e.g. build, publish, deploy.")
@click.option("--image", default="", help="The image: REGISTRY/REPO@sha256:... (or a tag gate knows).")
@click.option(
    "--manifest",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A Kubernetes manifest (YAML or JSON, several documents allowed).",
)
@click.option("--source", default="", help="A source tree: REPOSITORY@COMMIT.")
@click.option("--project", default="", help="The project (the namespace an image's Pod would run in).")
@click.option("--dry-run", is_flag=True, help="Decide but do not record the decision.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def decide(
    state: Any,
    /,
    stage: str,
    image: str,
    manifest: Path | None,
    source: str,
    project: str,
    dry_run: bool,
    output: str,
) -> None:
    """Ask gate whether a subject may pass a pipeline stage; exit 1 with the reasons when denied."""
    request = _request(stage, image, manifest, source, project, dry_run)
    try:
        decision: Any = state.client().call("gate.v1.DecisionService/Decide", request)
    except InvalidArgument as error:
        raise click.UsageError(error.message) from None
    if output == "json":
        from google.protobuf.json_format import MessageToDict

        click.echo(json.dumps(MessageToDict(decision), indent=2))
    else:
        _explain(decision)
    if not decision.allowed:
        raise click.exceptions.Exit(1)


COMMANDS = (decide,)
