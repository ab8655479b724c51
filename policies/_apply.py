"""Resources for ``gate policy apply``: files and directories of Kubernetes objects."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from policies._kyverno_test import check_metadata, normalise_resource
from policies._loader import walk_files
from policies._yaml import read_documents


def _is_resource_name(name: str) -> bool:
    return name.endswith((".yaml", ".yml", ".json"))


def load_resources(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every object in the YAML/JSON files (``kind: List`` unpacked).

    Namespaced kinds without a namespace get ``default``, as in the Kyverno CLI.

    Load errors name the file and line.
    """
    found: list[dict[str, Any]] = []
    for path in paths:
        # Bounded, and a FIFO or device among them is refused when read (it would hang).
        files = walk_files(path, _is_resource_name, skip_hidden=False) if path.is_dir() else [path]
        for file in files:
            for document in read_documents(file):
                data = document.data
                if not isinstance(data, dict):
                    raise document.error((), "a resource must be a mapping")
                for key in ("apiVersion", "kind"):
                    if not isinstance(data.get(key), str):
                        raise document.error((key,), "missing or not a string")
                items = data.get("items") if data["kind"].endswith("List") else None
                if isinstance(items, list):
                    for index, item in enumerate(items):
                        if isinstance(item, dict):
                            check_metadata(document, ("items", index), item)
                            found.append(normalise_resource(item))
                else:
                    check_metadata(document, (), data)
                    found.append(normalise_resource(data))
    return found
