"""YAML documents with the line of every field, bounded in depth and size.

Timestamps stay strings (Kubernetes objects carry them as strings), duplicate
keys and over-deep or over-large documents are load errors, never crashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policies._errors import PolicyLoadError, ResourceLimitError

MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_FILE_BYTES = 8 * 1024 * 1024

FieldPath = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class Document:
    """One YAML document: its data and the line (1-based) of each field path."""

    source: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        probe = path
        while True:
            if probe in self.lines:
                return self.lines[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def error(self, path: FieldPath, problem: str) -> PolicyLoadError:
        """A load error pointing at ``path`` in this document."""
        return PolicyLoadError(self.source, self.line_of(path), format_path(path), problem)


def format_path(path: FieldPath) -> str:
    """``("spec", "rules", 0, "name")`` -> ``spec.rules[0].name``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class _Builder:
    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.count = 0
        self.lines: dict[FieldPath, int] = {}

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise PolicyLoadError(
                self.source,
                node.start_mark.line + 1,
                format_path(path),
                f"document exceeds {MAX_NODES} values",
            )
        if len(path) > MAX_DEPTH:
            raise PolicyLoadError(
                self.source, node.start_mark.line + 1, format_path(path), f"nesting deeper than {MAX_DEPTH}"
            )
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if isinstance(key, (dict, list)):
                    raise PolicyLoadError(
                        self.source,
                        key_node.start_mark.line + 1,
                        format_path(path),
                        "a mapping key must be a scalar",
                    )
                text = key if isinstance(key, str) else _scalar_text(key)
                if text in result:
                    raise PolicyLoadError(
                        self.source, key_node.start_mark.line + 1, format_path((*path, text)), "duplicate key"
                    )
                result[text] = self.build(value_node, (*path, text))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def _scalar_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_documents(text: str, source: str) -> Iterator[Document]:
    """Parse every non-empty document of a YAML stream."""
    if len(text) > MAX_FILE_BYTES:
        raise PolicyLoadError(source, None, "", f"file is larger than {MAX_FILE_BYTES} bytes")
    try:
        # The reader checks the characters of the whole text as it is built.
        loader = _Loader(text)
    except yaml.YAMLError as exc:
        raise PolicyLoadError(source, None, "", f"malformed YAML: {exc}") from None
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            builder = _Builder(loader, source)
            data = builder.build(node, ())
            if data is None:
                continue
            yield Document(source, data, builder.lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PolicyLoadError(source, line, "", f"malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise PolicyLoadError(source, None, "", f"malformed YAML: {exc}") from None
    except RecursionError:
        raise PolicyLoadError(source, None, "", f"nesting deeper than {MAX_DEPTH}") from None
    finally:
        loader.dispose()


def read_documents(path: Path) -> list[Document]:
    """Every document of a YAML file."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PolicyLoadError(str(path), None, "", f"file is larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(str(path), None, "", f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise PolicyLoadError(str(path), None, "", f"cannot read: {exc.strerror}") from None
    return list(parse_documents(text, str(path)))


def check_depth(value: Any, source: str, limit: int = MAX_DEPTH, max_values: int = MAX_NODES) -> None:
    """Reject JSON-like data nested deeper than ``limit`` or with more than ``max_values`` values."""
    budget = [max_values]

    def walk(item: Any, depth: int) -> None:
        if depth > limit:
            raise ResourceLimitError(f"{source}: nesting deeper than {limit}")
        children = item.values() if isinstance(item, dict) else item
        budget[0] -= len(children)
        if budget[0] < 0:
            raise ResourceLimitError(f"{source}: more than {max_values} values")
        for child in children:
            if isinstance(child, (dict, list)):
                walk(child, depth + 1)

    if isinstance(value, (dict, list)):
        walk(value, 0)
