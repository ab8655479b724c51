"""The CI templates: actionlint on the GitHub workflows (laid out as a consumer repository copies
them), GitLab's CI schema on the template, shellcheck on every script, Tekton references, and the
gate commands the templates call."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import yaml

from gate.cli import cli
from tests.integration.deployments._support import CI, render, run, tool

GITHUB = CI / "github-actions"
GITLAB = CI / "gitlab-ci"
TEKTON = CI / "tekton"

# Commands other helpers are adding to the CLI, with the options the templates use (as
# announced for them). Once a command exists, its real options are checked instead.
PENDING_COMMANDS: Mapping[tuple[str, ...], frozenset[str]] = {
    ("sign",): frozenset({"--key"}),
    ("attest",): frozenset({"--predicate", "--type", "--key"}),
    ("decide",): frozenset({"--stage", "--image"}),
}
_GLOBAL_OPTIONS = frozenset({"--server", "--server-ca", "--config", "--timeout"})
_TEKTON_VARIABLE = re.compile(r"\$\((params|workspaces|results|context|tasks)\.([^)]*)\)")


def test_github_workflows_pass_actionlint_as_a_repository_lays_them_out(tmp_path: Path) -> None:
    # The README's copy instructions: the reusable workflow and the caller under
    # .github/workflows/, the composite action at the same path as here. actionlint then
    # also checks the caller's inputs against the reusable workflow and the action's inputs.
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(GITHUB / "supply-chain.yml", workflows)
    shutil.copy(GITHUB / "examples" / "release.yml", workflows)
    shutil.copytree(GITHUB / "setup-gate", tmp_path / "ci" / "github-actions" / "setup-gate")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = run(tool("actionlint"), "-shellcheck", tool("shellcheck"), "-verbose", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Rule "shellcheck" was disabled' not in result.stderr, result.stderr
    assert "Linting 2 files" in result.stderr, result.stderr


def test_jobs_check_out_the_repository_before_using_a_local_action() -> None:
    # actionlint resolves ./ paths against the repository, but on a runner they exist only
    # after actions/checkout in the same job.
    workflow = yaml.safe_load((GITHUB / "supply-chain.yml").read_text())
    for name, job in workflow["jobs"].items():
        checked_out = False
        for step in job.get("steps", ()):
            uses = step.get("uses", "")
            if uses.startswith("actions/checkout@"):
                checked_out = True
            elif uses.startswith("./"):
                assert checked_out, f"job {name} uses {uses} before actions/checkout"


def test_gitlab_template_and_example_match_gitlabs_ci_schema() -> None:
    result = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.gitlab-ci",
        str(GITLAB / "gate.gitlab-ci.yml"),
        str(GITLAB / "example.gitlab-ci.yml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _scripts() -> Iterator[tuple[str, str, str]]:
    """(where, shell, script) of every script the templates run outside actionlint's reach."""
    action = yaml.safe_load((GITHUB / "setup-gate" / "action.yml").read_text())
    for step in action["runs"]["steps"]:
        if "run" in step:
            yield f"setup-gate: {step['name']}", "bash", step["run"]
    workflow = yaml.safe_load((GITHUB / "supply-chain.yml").read_text())
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", ()):
            if "run" in step:
                yield f"supply-chain.yml {job_name}: {step.get('name', '')}", "bash", step["run"]
    template = yaml.safe_load((GITLAB / "gate.gitlab-ci.yml").read_text())
    for job_name, job in template.items():
        if isinstance(job, dict) and ("script" in job or "before_script" in job):
            lines = [*job.get("before_script", ()), *job.get("script", ())]
            yield f"gate.gitlab-ci.yml {job_name}", "sh", "\n".join(lines) + "\n"
    for doc in render("ci/tekton"):
        if doc["kind"] == "Task":
            for step in doc["spec"]["steps"]:
                script = _TEKTON_VARIABLE.sub(r"/tekton/\1/\2", step["script"])
                yield f"Task {doc['metadata']['name']}: {step['name']}", "sh", script


def test_every_template_script_passes_shellcheck(tmp_path: Path) -> None:
    failures = []
    for index, (where, shell, script) in enumerate(_scripts()):
        path = tmp_path / f"script-{index}.sh"
        path.write_text(script)
        result = run(tool("shellcheck"), "--shell", shell, "--severity", "style", str(path))
        if result.returncode != 0:
            failures.append(f"{where}:\n{result.stdout}")
    assert not failures, "\n".join(failures)


def _gate_invocations(script: str) -> Iterator[list[str]]:
    logical = script.replace("\\\n", " ")
    for line in logical.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:
            continue
        for index, token in enumerate(tokens):
            if token == "gate" and (
                index == 0 or tokens[index - 1] in (";", "&&", "||", "|", "then", "do", "!")
            ):
                end = next(
                    (i for i in range(index + 1, len(tokens)) if tokens[i] in (";", "&&", "||", "|", ")")),
                    None,
                )
                yield tokens[index + 1 : end]


def _command_and_options(args: list[str]) -> tuple[tuple[str, ...], set[str]]:
    words: list[str] = []
    options: set[str] = set()
    skip = False
    group: Any = cli
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _GLOBAL_OPTIONS and not words:
            skip = True
            continue
        if arg.startswith("-"):
            options.add(arg.split("=", 1)[0])
        elif isinstance(group, click.Group) or not words:
            words.append(arg)
            group = group.commands.get(arg) if isinstance(group, click.Group) else None
    return tuple(words[:2]) if len(words) > 1 and words[0] in (
        "scan",
        "sbom",
        "policy",
        "audit",
        "verify",
    ) else tuple(words[:1]), options


def _real_options(command: tuple[str, ...]) -> frozenset[str] | None:
    node: Any = cli
    for word in command:
        if not isinstance(node, click.Group) or word not in node.commands:
            return None
        node = node.commands[word]
    return frozenset(opt for param in node.params for opt in param.opts if opt.startswith("--"))


def test_templates_call_gate_commands_with_options_gate_has() -> None:
    seen: set[tuple[str, ...]] = set()
    problems = []
    for where, _, script in _scripts():
        for args in _gate_invocations(script):
            command, options = _command_and_options(args)
            seen.add(command)
            known = _real_options(command)
            if known is None:
                known = PENDING_COMMANDS.get(command)
            if known is None:
                problems.append(f"{where}: gate {' '.join(command)} is not a gate command")
            elif not options <= known:
                problems.append(f"{where}: gate {' '.join(command)} has no {sorted(options - known)}")
    assert not problems, "\n".join(problems)
    # Every stage of the issue is there: scans recorded, SBOM, signature, attestations, decision.
    assert {("scan", "import"), ("sbom", "generate"), ("sign",), ("attest",), ("decide",)} <= seen


def _tekton_references(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        for match in _TEKTON_VARIABLE.finditer(node):
            yield match[1], match[2]
    elif isinstance(node, dict):
        for value in node.values():
            yield from _tekton_references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tekton_references(value)


def test_tekton_tasks_and_pipeline_reference_only_what_they_declare() -> None:
    docs = render("ci/tekton")
    tasks = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Task"}
    (pipeline,) = [d["spec"] for d in docs if d["kind"] == "Pipeline"]
    for name, spec in tasks.items():
        params = {p["name"] for p in spec.get("params", ())}
        workspaces = {w["name"] for w in spec.get("workspaces", ())}
        results = {r["name"] for r in spec.get("results", ())}
        for kind, path in _tekton_references(spec):
            head = path.split(".")[0].split("[")[0]
            declared = {"params": params, "workspaces": workspaces, "results": results}.get(kind)
            assert declared is None or head in declared, f"Task {name}: $({kind}.{path}) is not declared"
    pipeline_params = {p["name"] for p in pipeline["params"]}
    pipeline_workspaces = {w["name"] for w in pipeline["workspaces"]}
    names = [t["name"] for t in pipeline["tasks"]]
    for task in pipeline["tasks"]:
        for kind, path in _tekton_references(task):
            head = path.split(".")[0].split("[")[0]
            if kind == "params":
                assert head in pipeline_params, f"{task['name']}: $(params.{path})"
            elif kind == "tasks":
                other, _, result = path.split(".", 2)
                assert other in names[: names.index(task["name"])], (
                    f"{task['name']} uses {other} before it runs"
                )
                if other in tasks:
                    assert result in {r["name"] for r in tasks[other].get("results", ())}, path
        for after in task.get("runAfter", ()):
            assert after in names[: names.index(task["name"])], f"{task['name']} runs after unknown {after}"
        for binding in task.get("workspaces", ()):
            assert binding["workspace"] in pipeline_workspaces, f"{task['name']}: {binding}"
        ref = task["taskRef"]
        if "resolver" in ref:
            continue
        spec = tasks[ref["name"]]
        given = {p["name"] for p in task.get("params", ())}
        task_params = {p["name"]: p for p in spec.get("params", ())}
        assert given <= task_params.keys(), f"{task['name']}: unknown params {given - task_params.keys()}"
        required = {n for n, p in task_params.items() if "default" not in p}
        assert required <= given, f"{task['name']}: missing params {required - given}"
        bound = {w["name"] for w in task.get("workspaces", ())}
        needed = {w["name"] for w in spec.get("workspaces", ()) if not w.get("optional")}
        assert bound == needed, f"{task['name']}: workspaces {bound} != {needed}"


def _readme_blocks(directory: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (directory / "README.md").read_text(), flags=re.S)


def test_github_readme_example_passes_actionlint_beside_the_workflow(tmp_path: Path) -> None:
    (example,) = _readme_blocks(GITHUB, "yaml")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(GITHUB / "supply-chain.yml", workflows)
    (workflows / "release.yml").write_text(example)
    shutil.copytree(GITHUB / "setup-gate", tmp_path / "ci" / "github-actions" / "setup-gate")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = run(tool("actionlint"), "-shellcheck", tool("shellcheck"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_readme_example_matches_gitlabs_ci_schema(tmp_path: Path) -> None:
    (example,) = _readme_blocks(GITLAB, "yaml")
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(example)
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load(example)["include"][0]["file"] == "ci/gitlab-ci/gate.gitlab-ci.yml"


def test_tekton_readme_pipelinerun_fits_the_pipeline() -> None:
    (example,) = _readme_blocks(TEKTON, "yaml")
    run_doc = yaml.safe_load(example)
    (pipeline,) = [d for d in render("ci/tekton") if d["kind"] == "Pipeline"]
    assert run_doc["spec"]["pipelineRef"]["name"] == pipeline["metadata"]["name"]
    given = {p["name"] for p in run_doc["spec"]["params"]}
    declared = {p["name"]: p for p in pipeline["spec"]["params"]}
    assert given <= declared.keys()
    assert {n for n, p in declared.items() if "default" not in p} <= given
    assert {w["name"] for w in run_doc["spec"]["workspaces"]} == {
        w["name"] for w in pipeline["spec"]["workspaces"]
    }
