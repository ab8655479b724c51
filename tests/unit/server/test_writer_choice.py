"""decisions.writer auto: a writer process only while the serving processes leave a CPU free."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gate._cpus import usable_cpus
from gate.server._workers import writer_in_process


@pytest.mark.parametrize(
    ("setting", "processes", "cpus", "expected"),
    [
        ("auto", 1, 2, True),
        ("auto", 2, 2, False),
        ("auto", 3, 2, False),
        ("auto", 1, 1, False),
        ("auto", 3, 8, True),
        ("process", 4, 2, True),
        ("thread", 1, 8, False),
    ],
)
def test_auto_chooses_a_process_only_when_a_cpu_is_left_for_it(
    setting: str, processes: int, cpus: int, expected: bool
) -> None:
    assert writer_in_process(setting, processes, cpus) is expected


def test_a_cgroup_quota_caps_the_cpus_counted(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # a pod limited to 1.5 CPUs

    assert usable_cpus(tmp_path) == min(affinity, 2)


@pytest.mark.parametrize("content", ["max 100000\n", "garbage\n", None])
def test_no_quota_or_no_readable_one_leaves_the_affinity(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "cpu.max").write_text(content)

    assert usable_cpus(tmp_path) == len(os.sched_getaffinity(0))
