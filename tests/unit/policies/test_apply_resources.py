"""Resources for ``gate policy apply``: files of Kubernetes objects, checked before evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import PolicyLoadError
from policies._apply import load_resources


@pytest.mark.parametrize(
    ("text", "line", "field", "problem"),
    [
        (
            "apiVersion: v1\nkind: Pod\nmetadata: [a]\n",
            3,
            "metadata",
            "a resource needs a metadata mapping, got list",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: 1.5\n",
            3,
            "metadata",
            "a resource needs a metadata mapping, got number",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: [a]\n",
            5,
            "metadata.labels",
            "expected a mapping, got list",
        ),
        (
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: 7\n",
            7,
            "items[0].metadata.name",
            "expected a string, got integer",
        ),
    ],
)
def test_a_resource_with_misshapen_metadata_is_an_error_naming_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, problem: str
) -> None:
    # These raised ValueError and TypeError from the namespace defaulting.
    path = tmp_path / "pod.yaml"
    path.write_text(text)
    with pytest.raises(PolicyLoadError) as caught:
        load_resources([path])
    assert (caught.value.source, caught.value.line, caught.value.field) == (str(path), line, field)
    assert caught.value.problem == problem
