"""YAML documents with the line of every field, bounded in depth and size.

Timestamps stay strings (Kubernetes objects carry them as strings), duplicate
keys and over-deep or over-large documents are load errors, never crashes.

Documents are JSON values, as Kubernetes reads YAML (sigs.k8s.io/yaml: go-yaml v2, then JSON):
plain scalars are typed by go-yaml v2's rules (policies._plain_scalars); ``.nan`` and ``.inf``
are load errors naming their line and field, as kubectl and Kyverno refuse them (JSON has
neither); ``!!binary`` data becomes the text it decodes to and an explicit ``!!timestamp`` its
own text, as there; an integer past 64 bits becomes a float, as JSON decoders read it.
Everything gate keeps (a policy bundle for replays, the request of a decision) is then JSON
as loaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from gate._files import FileTooLarge, NotRegularFile, read_regular
from policies._errors import PolicyLoadError, ResourceLimitError
from policies._plain_scalars import LARGEST_INT, SMALLEST_INT, plain_value

MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_FILE_BYTES = 8 * 1024 * 1024

FieldPath = tuple[str | int, ...]


# The tag given to plain scalars without one: their values are typed by policies._plain_scalars,
# not by PyYAML's YAML 1.1 resolvers.
_PLAIN = "tag:gate.dev,2026:plain"
_SURROGATE = re.compile("[\ud800-\udfff]")
_MERGE = "tag:yaml.org,2002:merge"


class TooManyNodes(yaml.MarkedYAMLError):
    """A document holds more than :data:`MAX_NODES` values (found while composing it)."""

    def __init__(self, count: int, mark: Any) -> None:
        super().__init__(problem=f"document exceeds {MAX_NODES} values", problem_mark=mark)
        self.count = count


class KubernetesLoader(yaml.SafeLoader):
    """SafeLoader whose plain scalars are typed as Kubernetes types them (policies._plain_scalars).

    ``yaml.load(text, Loader=KubernetesLoader)`` gives those values too (a ``"<<"`` that merges
    nothing is text).
    """

    composed = 0

    def compose_document(self) -> Any:
        self.composed = 0
        return super().compose_document()

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        tag = _counted_tag(self, kind, value, implicit)
        return tag or str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]


def _counted_tag(loader: Any, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
    """The tag of a plain scalar or the merge key ("" for other nodes), counting the node.

    A loader resolves each node once, as it composes it: an over-large document stops here,
    before the scanner reads the rest of an 8 MB file only for the builder to refuse it. Keys
    are nodes too and the builder counts values only, so past twice the limit, the builder
    would refuse the document as well.
    """
    loader.composed += 1
    if loader.composed > 2 * MAX_NODES:
        get_mark = getattr(loader, "get_mark", None)  # libyaml's parser has none
        raise TooManyNodes(loader.composed, get_mark() if get_mark is not None else None)
    if kind is yaml.ScalarNode and implicit[0]:
        # The merge key is resolved before values are typed (flatten_mapping looks for it).
        return _MERGE if value == "<<" else _PLAIN
    return ""


def _scalar_text_of(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return node.value


def _plain_of(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return plain_value(node.value)


def _unreadable(node: yaml.Node, what: str) -> yaml.constructor.ConstructorError:
    """A load error for an explicitly tagged scalar its tag cannot read (go-yaml refuses it too)."""
    text = str(node.value)
    shown = repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} characters)"
    return yaml.constructor.ConstructorError(None, None, f"cannot read {shown} as {what}", node.start_mark)


# PyYAML's constructors raise KeyError, ValueError or IndexError on values their tag cannot
# read (``!!bool maybe``, ``!!float abc``, ``!!int ""``), and int() refuses 4,300 digits or more.
def _bool_of(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_bool(node)
    except KeyError:
        raise _unreadable(node, "a boolean") from None


def _float_of(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_float(node)
    except (ValueError, IndexError):
        raise _unreadable(node, "a number") from None


def _int_of(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        value = loader.construct_yaml_int(node)
    except (ValueError, IndexError):
        raise _unreadable(node, "an integer") from None
    if SMALLEST_INT <= value <= LARGEST_INT:
        return value
    try:
        return float(value)  # past 64 bits, as JSON decoders read it
    except OverflowError:
        return math.inf  # refused with the other infinities


def _binary_of(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # go-yaml v2 decodes !!binary to text; JSON mends bad UTF-8.
    return loader.construct_yaml_binary(node).decode("utf-8", errors="replace")


def _set_of(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return dict.fromkeys(loader.construct_mapping(node))  # type: ignore[arg-type]  # a map of nulls, as in Go


# Explicit tags give JSON values too, as go-yaml v2 then JSON give them: a !!timestamp keeps
# its text, !!binary is the text it decodes to, an !!int past 64 bits a float, a !!set a map.
KubernetesLoader.add_constructor(_PLAIN, _plain_of)
KubernetesLoader.add_constructor(_MERGE, _scalar_text_of)
KubernetesLoader.add_constructor("tag:yaml.org,2002:timestamp", _scalar_text_of)
KubernetesLoader.add_constructor("tag:yaml.org,2002:binary", _binary_of)
KubernetesLoader.add_constructor("tag:yaml.org,2002:int", _int_of)
KubernetesLoader.add_constructor("tag:yaml.org,2002:bool", _bool_of)
KubernetesLoader.add_constructor("tag:yaml.org,2002:float", _float_of)
KubernetesLoader.add_constructor("tag:yaml.org,2002:set", _set_of)


def _libyaml_loader() -> type[Any] | None:
    """:class:`KubernetesLoader` with libyaml's scanner and parser, if PyYAML was built with it.

    The pure-Python scanner reads about 0.5 MB a second, so a file at the size limit took
    15 s of CPU (a 4 MB pipeline manifest, 10 s); with libyaml, loading is about ten times
    faster. libyaml is also what go-yaml was ported from: where the two scanners differ (some
    tabs the Python one refuses), libyaml's reading is the nearer to Kubernetes'.
    """
    try:
        from yaml._yaml import CParser  # absent when PyYAML lacks libyaml
    except ImportError:  # pragma: no cover - the wheels on PyPI include it
        return None

    class LibyamlKubernetesLoader(CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        composed = 0
        yaml_constructors: ClassVar[dict[Any, Any]] = dict(KubernetesLoader.yaml_constructors)

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

        def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
            tag = _counted_tag(self, kind, value, implicit)
            return tag or str(yaml.resolver.Resolver.resolve(self, kind, value, implicit))  # type: ignore[no-untyped-call]

    return LibyamlKubernetesLoader


_FAST_LOADER = _libyaml_loader()


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


class KubernetesDumper(yaml.SafeDumper):
    """SafeDumper whose output reads back the same through kubectl or :class:`KubernetesLoader`.

    PyYAML leaves a string plain when YAML 1.1 would read it as a string, but Kubernetes types
    plain scalars by go-yaml v2's rules: ``1e3``, ``0o17`` or ``y`` written plain would come back
    as numbers and booleans. Such strings are quoted.
    """


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if data and not isinstance(plain_value(data), str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'")
    return dumper.represent_str(data)


KubernetesDumper.add_representer(str, _represent_str)


class _Builder:
    def __init__(self, loader: KubernetesLoader, source: str) -> None:
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
                if not isinstance(key_node, yaml.ScalarNode):
                    raise PolicyLoadError(
                        self.source,
                        key_node.start_mark.line + 1,
                        format_path(path),
                        "a mapping key must be a scalar",
                    )
                key = self._scalar(key_node, path)
                text = key if isinstance(key, str) else _scalar_text(key)
                if text in result:
                    raise PolicyLoadError(
                        self.source, key_node.start_mark.line + 1, format_path((*path, text)), "duplicate key"
                    )
                result[text] = self.build(value_node, (*path, text))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._json_scalar(self._scalar(node, path), node, path)

    def _scalar(self, node: yaml.Node, path: FieldPath) -> Any:
        # Plain scalars (the most) typed directly; tagged and quoted ones by their constructors.
        if node.tag == _PLAIN:
            return plain_value(node.value)
        value = self.loader.construct_object(node, deep=True)
        # Only a double-quoted escape such as "\udfff" makes one (the reader refuses them as
        # characters). go-yaml refuses it too; UTF-8, hashes and the audit store cannot hold it.
        if getattr(node, "style", None) == '"' and isinstance(value, str):
            found = _SURROGATE.search(value)
            if found is not None:
                problem = (
                    f"invalid Unicode escape \\u{ord(found.group()):04x}: a lone surrogate is not a character"
                )
                raise PolicyLoadError(self.source, node.start_mark.line + 1, format_path(path), problem)
        return value

    def _json_scalar(self, value: Any, node: yaml.Node, path: FieldPath) -> Any:
        """``value``, unless JSON cannot hold it: NaN and the infinities are load errors."""
        if isinstance(value, float) and not math.isfinite(value):
            got = f"{node.value!r}" if isinstance(node, yaml.ScalarNode) else repr(value)
            problem = f"expected a JSON number, got {got}: JSON has no NaN or infinity"
            raise PolicyLoadError(self.source, node.start_mark.line + 1, format_path(path), problem)
        return value


def _scalar_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unmarked(error: yaml.YAMLError, text: str, source: str) -> PolicyLoadError:
    """A load error on one line for a YAML error without a mark (the reader's: a control character).

    PyYAML's own text spans two lines and names ``<unicode string>`` and a character offset.
    """
    if (
        isinstance(error, yaml.reader.ReaderError)
        and isinstance(error.position, int)
        and isinstance(error.character, int)
    ):
        line = text.count("\n", 0, error.position) + 1
        problem = f"unacceptable character #x{error.character:04x}: {error.reason}"
        return PolicyLoadError(source, line, "", f"malformed YAML: {problem}")
    return PolicyLoadError(source, None, "", "malformed YAML: " + " ".join(str(error).split()))


def parse_documents(text: str, source: str) -> Iterator[Document]:
    """Parse every non-empty document of a YAML stream."""
    if len(text) > MAX_FILE_BYTES:
        raise PolicyLoadError(source, None, "", f"file is larger than {MAX_FILE_BYTES} bytes")
    try:
        # The reader checks the characters of the whole text as it is built.
        loader = (_FAST_LOADER or KubernetesLoader)(text)
    except yaml.YAMLError as exc:
        raise _unmarked(exc, text, source) from None
    except UnicodeEncodeError as exc:  # libyaml reads UTF-8: a lone surrogate cannot be encoded
        raise PolicyLoadError(
            source, None, "", f"not UTF-8 text: a lone surrogate at character {exc.start}"
        ) from None
    try:
        while loader.check_node():
            loader.composed = 0
            node = loader.get_node()
            if node is None:
                continue
            builder = _Builder(loader, source)
            data = builder.build(node, ())
            if data is None:
                continue
            yield Document(source, data, builder.lines)
    except TooManyNodes as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise PolicyLoadError(source, line, "", str(exc.problem)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        if "maximum nesting depth" in str(exc.problem):
            # libyaml's own limit (1,000 levels), far past this one.
            raise PolicyLoadError(source, line, "", f"nesting deeper than {MAX_DEPTH}") from None
        raise PolicyLoadError(source, line, "", f"malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise _unmarked(exc, text, source) from None
    except RecursionError:
        raise PolicyLoadError(source, None, "", f"nesting deeper than {MAX_DEPTH}") from None
    finally:
        loader.dispose()


def shown_path(path: Path | str) -> str:
    """``path`` as text that can be shown and sent anywhere (a log line, a gRPC answer).

    A Linux file name is bytes: one that is not UTF-8 reaches Python with surrogate escapes,
    which UTF-8 (and so protobuf) refuses, and a newline would break a one-line message. Such
    characters are written as escapes (``\\xff``, ``\\n``); every other path is unchanged.
    """
    text = str(path)
    if text.isprintable():
        return text
    return "".join(_shown_char(c) for c in text)


def _shown_char(char: str) -> str:
    if char.isprintable():
        return char
    if "\udc80" <= char <= "\udcff":
        return f"\\x{ord(char) - 0xDC00:02x}"  # a byte that is not UTF-8 (surrogateescape)
    return repr(char)[1:-1]


def read_bounded(path: Path) -> bytes:
    """The bytes of the regular file ``path`` leads to, at most :data:`MAX_FILE_BYTES`.

    A FIFO or a device is refused without waiting on it (:func:`gate._files.read_regular`).

    Raises:
        PolicyLoadError: not a regular file, too large, or unreadable (naming ``path``).
    """
    try:
        return read_regular(path, MAX_FILE_BYTES)
    except NotRegularFile as exc:
        raise PolicyLoadError(shown_path(path), None, "", f"cannot read: {exc}") from None
    except FileTooLarge as exc:
        raise PolicyLoadError(shown_path(path), None, "", str(exc)) from None
    except OSError as exc:
        raise PolicyLoadError(shown_path(path), None, "", f"cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL in the path
        raise PolicyLoadError(shown_path(path), None, "", f"cannot read: {exc}") from None


def read_documents(path: Path) -> list[Document]:
    """Every document of a YAML file (a regular file of at most :data:`MAX_FILE_BYTES`)."""
    return documents_of(read_bounded(path), path)


def documents_of(data: bytes, path: Path | str) -> list[Document]:
    """Every document of the YAML file ``path`` whose bytes were ``data``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(shown_path(path), None, "", f"not UTF-8 text: {exc.reason}") from None
    return list(parse_documents(text, shown_path(path)))


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
