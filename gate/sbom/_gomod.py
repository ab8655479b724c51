"""Go modules from ``go.mod`` (requirements and replacements) and ``go.sum`` (their ``h1:`` checksums)."""

from __future__ import annotations

from gate.sbom._gobinary import module_purl
from gate.sbom._types import ComponentType, Found, MalformedInput, component

_BLOCK_VERBS = ("require", "replace", "exclude", "retract", "tool", "ignore", "godebug")


def _fields(line: str) -> list[str]:
    return [f.strip('"`') for f in line.split()]


def go_mod(path: str, text: str, go_sum: str = "") -> Found:  # noqa: PLR0912, PLR0915 -- one branch per go.mod directive
    """Modules a ``go.mod`` requires, each pointing at its replacement when there is one.

    The main module becomes an ``application`` component depending on every
    requirement; ``// indirect`` ones are marked with a property. A replacement
    by a local directory keeps the required module and records the directory.

    Args:
        path: The go.mod path inside the root.
        text: Its content.
        go_sum: The content of the go.sum beside it, if any.
    """
    module = ""
    requires: list[tuple[str, str, bool, int]] = []
    replaces: dict[tuple[str, str], tuple[str, str]] = {}
    block = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        code, _, comment = raw.partition("//")
        line = code.strip()
        indirect = "indirect" in comment.split(";")[0].split()
        if not line:
            continue
        if block:
            if line == ")":
                block = ""
                continue
            words = _fields(line)
            verb = block
        else:
            words = _fields(line)
            verb = words[0]
            words = words[1:]
            if verb in _BLOCK_VERBS and words == ["("]:
                block = verb
                continue
        if verb == "module":
            if not words:
                raise MalformedInput(path, "'module' without a path", number)
            module = words[0]
        elif verb == "require":
            if len(words) < 2:
                raise MalformedInput(path, f"require needs 'path version', got {line!r}", number)
            requires.append((words[0], words[1], indirect, number))
        elif verb == "replace":
            if "=>" not in words:
                raise MalformedInput(path, f"replace needs '=>', got {line!r}", number)
            arrow = words.index("=>")
            old, new = words[:arrow], words[arrow + 1 :]
            if not old or not new:
                raise MalformedInput(path, f"replace needs a module on each side, got {line!r}", number)
            replaces[(old[0], old[1] if len(old) > 1 else "")] = (new[0], new[1] if len(new) > 1 else "")
    if block:
        raise MalformedInput(path, f"unclosed '{block} (' block")
    if not module:
        raise MalformedInput(path, "no 'module' line")
    sums: dict[tuple[str, str], str] = {}
    for line in go_sum.splitlines():
        parts = line.split()
        if len(parts) == 3 and not parts[1].endswith("/go.mod"):
            sums[(parts[0], parts[1])] = parts[2]
    found = Found()
    children: list[str] = []
    for required, required_version, indirect, _ in requires:
        target = replaces.get((required, required_version)) or replaces.get((required, ""))
        mod, version = required, required_version
        props: list[tuple[str, str]] = []
        if target and target[1]:
            mod, version = target
        elif target:
            props.append(("gate:go:replaced-by-directory", target[0]))
        if indirect:
            props.append(("gate:go:indirect", "true"))
        if (mod, version) in sums:
            props.append(("gate:go:h1", sums[(mod, version)]))
        made = component(
            module_purl(mod, version), path=path, found_by="go-mod", name=mod, properties=tuple(props)
        )
        children.append(made.ref)
        found.components.append(made)
    found.components.insert(
        0,
        component(
            module_purl(module, ""),
            path=path,
            found_by="go-mod",
            name=module,
            type=ComponentType.APPLICATION,
            depends_on=tuple(dict.fromkeys(children)),
        ),
    )
    return found
