"""Policy, resource and test files that are not plain small files: refused with their name, never a hang.

A FIFO waited for a writer for ever and ``/dev/zero`` was read until the memory ran out (``stat``
says 0 bytes for both); a mistaken source such as ``/`` was walked whole; a file name that is not
UTF-8 made a source no gRPC answer could carry.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policies import PolicyLoadError, _kyverno_test, _loader, load_policies
from policies._apply import load_resources
from policies._kyverno_test import run_tests
from policies._loader import MAX_DIRECTORY_ENTRIES
from tests.deadline_support import within

POLICY = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: {name}
spec:
  rules:
  - name: r
    match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
    validate:
      pattern: {{metadata: {{name: "?*"}}}}
"""

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec: {containers: [{name: c, image: nginx}]}\n"


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO no one writes to; a reader left waiting on it is released at teardown."""
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    yield path
    with contextlib.suppress(OSError):  # a reader blocked in open() (the old code) gets EOF
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_named_as_a_policy_source_is_refused_without_waiting_for_a_writer(fifo: Path) -> None:
    with pytest.raises(PolicyLoadError, match="got a FIFO, expected a regular file") as raised:
        within(10, lambda: load_policies([fifo]))
    assert raised.value.source == str(fifo)


def test_a_fifo_in_a_resource_directory_of_gate_policy_apply_is_passed_over_without_waiting(
    fifo: Path, tmp_path: Path
) -> None:
    # As in a policy directory, only regular files (and links to them) are read from a directory.
    (tmp_path / "pod.yaml").write_text(POD)
    found = within(10, lambda: load_resources([tmp_path]))
    assert [r["metadata"]["name"] for r in found] == ["app"]  # type: ignore[attr-defined]


def test_a_fifo_named_as_a_resource_of_gate_policy_apply_is_refused_without_waiting(fifo: Path) -> None:
    with pytest.raises(PolicyLoadError, match="got a FIFO, expected a regular file"):
        within(10, lambda: load_resources([fifo]))


def test_a_kyverno_test_resource_linked_to_a_fifo_is_an_error_of_that_test(
    fifo: Path, tmp_path: Path
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "policy.yaml").write_text(POLICY.format(name="named"))
    (suite / "resource.yaml").symlink_to(fifo)
    (suite / "kyverno-test.yaml").write_text(
        "name: t\npolicies: [policy.yaml]\nresources: [resource.yaml]\n"
        "results: [{policy: named, rule: r, resources: [app], kind: Pod, result: pass}]\n"
    )
    report = within(10, lambda: run_tests(suite))
    assert report.errors == [  # type: ignore[attr-defined]
        f"kyverno-test.yaml: {suite / 'resource.yaml'}: cannot read: got a FIFO, expected a regular file"
    ]


GATE = "import sys; from gate.cli import main; sys.exit(main())"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_gate_policy_apply_of_a_resource_linked_to_dev_zero_exits_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY.format(name="named"))
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    run = subprocess.run(
        [sys.executable, "-c", GATE, "policy", "apply", "policy.yaml", "-r", "zero.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,  # the old code read until this limit, then died with a MemoryError
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert (
        run.stderr == "gate: error: zero.yaml: cannot read: got a character device, expected a regular file\n"
    )


def test_a_policy_source_holding_a_whole_tree_is_refused_promptly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mistaken mount (``/``) is refused after MAX_DIRECTORY_ENTRIES, not walked for minutes: here
    # with a bound of 1,000 (100,000 files take a minute to create on a slow disk).
    monkeypatch.setattr(_loader, "MAX_DIRECTORY_ENTRIES", 1000, raising=False)
    for folder in range(11):
        directory = tmp_path / "tree" / f"d{folder}"
        directory.mkdir(parents=True)
        for entry in range(99):
            (directory / f"f{entry}.yaml").write_text(POLICY.format(name=f"p{folder}-{entry}"))
    with pytest.raises(PolicyLoadError, match="more than 1000 entries below it; expected a directory of"):
        within(60, lambda: load_policies([tmp_path / "tree"]))
    assert MAX_DIRECTORY_ENTRIES == 100_000


_LOAD_AND_PRINT_THE_ERROR = """
import sys
from pathlib import Path
from policies import PolicyLoadError, load_policies
try:
    load_policies([Path(sys.argv[1])])
except PolicyLoadError as error:
    print(error)
"""


def test_a_subdirectory_that_cannot_be_listed_is_an_error_not_policies_silently_missing(
    tmp_path: Path,
) -> None:
    # Root lists any directory whatever its mode: as root, the load runs in a process without
    # the two capabilities that let it (setpriv, util-linux).
    (tmp_path / "a.yaml").write_text(POLICY.format(name="a"))
    locked = tmp_path / "team"
    locked.mkdir()
    (locked / "b.yaml").write_text(POLICY.format(name="b"))
    locked.chmod(0)
    command = [sys.executable, "-c", _LOAD_AND_PRINT_THE_ERROR, str(tmp_path)]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=Path(__file__).resolve().parents[3],  # the checkout's policies
        )
    finally:
        locked.chmod(0o755)
    assert "cannot list the directory: Permission denied" in run.stdout, run.stdout + run.stderr


def test_a_policy_file_name_that_is_not_utf8_is_shown_escaped_so_that_any_answer_can_carry_it(
    tmp_path: Path,
) -> None:
    good = os.fsencode(tmp_path) + b"/team-\xff.yaml"
    with open(good, "wb") as handle:
        handle.write(POLICY.format(name="named").encode())
    bundle = load_policies([tmp_path])
    source = bundle.policies[0].source
    assert source == f"{tmp_path}/team-\\xff.yaml"
    source.encode("utf-8")  # what protobuf does with ListPolicies' source; a surrogate failed here

    with open(os.fsencode(tmp_path) + b"/broken-\xfe\nname.yaml", "wb") as handle:
        handle.write(b"apiVersion: [\n")
    with pytest.raises(PolicyLoadError) as raised:
        load_policies([tmp_path])
    assert raised.value.source == f"{tmp_path}/broken-\\xfe\\nname.yaml"
    raised.value.message.encode("utf-8")


def test_a_policy_defined_twice_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POLICY.format(name="same"))
    (tmp_path / "b.yaml").write_text(POLICY.format(name="same"))
    with pytest.raises(PolicyLoadError) as raised:
        load_policies([tmp_path])
    assert raised.value.source == str(tmp_path / "b.yaml")
    assert f"duplicate policy 'same' (also defined in {tmp_path / 'a.yaml'})" in raised.value.message


def test_editor_files_links_to_devices_and_dangling_links_in_a_policy_directory_are_not_policies(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text(POLICY.format(name="a"))
    (tmp_path / ".a.yaml.swp").write_bytes(b"\x00\x01")
    (tmp_path / "a.yaml~").write_text("apiVersion: [")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    (tmp_path / "dir.yaml").mkdir()
    bundle = within(10, lambda: load_policies([tmp_path]))
    assert [p.name for p in bundle.policies] == ["a"]  # type: ignore[attr-defined]


def test_a_resource_file_named_thousands_of_times_in_a_test_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through TestPolicies a small upload could name one big file 100,000 times: each was parsed
    # again (a second per 2 MB), minutes to hours of the server's CPU for one request.
    (tmp_path / "policy.yaml").write_text(POLICY.format(name="named"))
    (tmp_path / "pod.yaml").write_text(POD)
    names = ["pod.yaml", "./pod.yaml", "sub/../pod.yaml"] * 700
    (tmp_path / "sub").mkdir()
    (tmp_path / "kyverno-test.yaml").write_text(
        f"name: t\npolicies: [policy.yaml, policy.yaml]\nresources: {names}\n"
        "results: [{policy: named, rule: r, resources: [app], kind: Pod, result: pass}]\n"
    )
    reads: list[Path] = []
    real = _kyverno_test.read_documents

    def counted(path: Path) -> Any:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(_kyverno_test, "read_documents", counted)
    report = run_tests(tmp_path)
    assert report.errors == []
    assert [(r.resource, r.passed) for r in report.rows] == [("app", True)]
    assert len(reads) == 2  # the test file and the resource file


def test_policy_sources_holding_more_than_the_bound_in_all_are_refused_naming_the_file_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each file is under the 8 MiB bound; a volume of them is refused rather than held whole.
    monkeypatch.setattr(_loader, "MAX_SOURCES_BYTES", 1000, raising=False)
    for name in ("a", "b", "c", "d", "e", "f"):
        (tmp_path / f"{name}.yaml").write_text(POLICY.format(name=name))
    with pytest.raises(PolicyLoadError, match="hold more than 1000 bytes in all") as raised:
        load_policies([tmp_path])
    assert raised.value.source == str(tmp_path / "f.yaml")


def test_a_control_character_in_a_policy_file_is_reported_on_one_line_with_its_line(tmp_path: Path) -> None:
    # PyYAML's text for it spans two lines ('in "<unicode string>", position 9'): a reload error
    # shown by ListPolicies and a log line must stay one line naming the file and the line.
    (tmp_path / "a.yaml").write_text(POLICY.format(name="a").replace("  rules:", "  rules:\x00", 1))
    with pytest.raises(PolicyLoadError) as raised:
        load_policies([tmp_path])
    assert str(raised.value) == (
        f"{tmp_path / 'a.yaml'}:6: malformed YAML: unacceptable character #x0000: "
        "control characters are not allowed"
    )
