"""JMESPath as Kyverno evaluates it, and ``{{ }}`` variable substitution.

Kyverno's JMESPath fork reports a field lookup on an object that lacks the
key as an error ("Unknown key"), except inside comparisons, function
arguments, projections and ``||``; a policy author relies on both halves
(``{{ a.b || '' }}``), so the interpreter reproduces them.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.functions
import jmespath.parser
import jmespath.visitor

from policies import _budget
from policies._errors import EvaluationError

# A {{ ... }} variable not preceded by a backslash; one level of nested braces allowed.
_VARIABLE = re.compile(r"(?<!\\)\{\{((?:\{[^{}]*\}|[^{}])*)\}\}")
_ESCAPED = re.compile(r"\\\{\{")


class NotFoundKey(Exception):
    """A field lookup on an object without that key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Unknown key {key!r} in path")
        self.key = key


def _functions() -> jmespath.functions.Functions:
    # The custom function set lands in its own module; plain JMESPath until then.
    try:
        module = importlib.import_module("policies._functions")
    except ModuleNotFoundError:
        return jmespath.functions.Functions()
    functions: jmespath.functions.Functions = module.KyvernoFunctions()
    return functions


def _truthy(value: Any) -> bool:
    """JMESPath truth: empty strings, lists and objects, false and null are false."""
    return not (value is None or value is False or value in ("", [], {}))


_FUNCTIONS = _functions()


class _Interpreter(jmespath.visitor.TreeInterpreter):
    """TreeInterpreter with the fork's missing-key errors."""

    def _lenient(self, node: Any, value: Any) -> Any:
        try:
            return self.visit(node, value)
        except NotFoundKey:
            return None

    def visit_field(self, node: Any, value: Any) -> Any:
        if isinstance(value, dict):
            key = node["value"]
            if key not in value:
                raise NotFoundKey(key)
            return value[key]
        return None

    def visit_comparator(self, node: Any, value: Any) -> Any:
        left = self._lenient(node["children"][0], value)
        right = self._lenient(node["children"][1], value)
        op = node["value"]
        if op in ("eq", "ne"):
            _check_compared(left, right)
            return self.COMPARATOR_FUNC[op](left, right)
        numbers = (int, float)
        if not (isinstance(left, numbers) and isinstance(right, numbers)) or isinstance(left, bool):
            return None
        if isinstance(right, bool):
            return None
        return self.COMPARATOR_FUNC[op](left, right)

    def visit_function_expression(self, node: Any, value: Any) -> Any:
        args = [self._lenient(child, value) for child in node["children"]]
        return _charged(_FUNCTIONS.call_function(node["value"], args))

    def _project(self, base: Any, child: dict[str, Any]) -> list[Any]:
        _budget.charge(len(base) * _PER_ELEMENT)
        collected = []
        for element in base:
            current = self._lenient(child, element)
            if current is not None:
                collected.append(current)
        return collected

    def visit_flatten(self, node: Any, value: Any) -> Any:
        base = self._lenient(node["children"][0], value)
        if not isinstance(base, list):
            return None
        merged: list[Any] = []
        for element in base:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        _budget.charge(len(merged))
        return merged

    def visit_projection(self, node: Any, value: Any) -> Any:
        base = self._lenient(node["children"][0], value)
        if not isinstance(base, list):
            return None
        return self._project(base, node["children"][1])

    def visit_value_projection(self, node: Any, value: Any) -> Any:
        base = self._lenient(node["children"][0], value)
        if not isinstance(base, dict):
            return None
        return self._project(list(base.values()), node["children"][1])

    def visit_filter_projection(self, node: Any, value: Any) -> Any:
        base = self._lenient(node["children"][0], value)
        if not isinstance(base, list):
            return None
        comparator = node["children"][2]
        _budget.charge(len(base) * _PER_ELEMENT)
        kept = [element for element in base if _truthy(self._lenient(comparator, element))]
        return self._project(kept, node["children"][1])

    def visit_or_expression(self, node: Any, value: Any) -> Any:
        matched = self._lenient(node["children"][0], value)
        if not _truthy(matched):
            matched = self.visit(node["children"][1], value)
        return matched

    def visit_and_expression(self, node: Any, value: Any) -> Any:
        matched = self._lenient(node["children"][0], value)
        if not _truthy(matched):
            return matched
        return self._lenient(node["children"][1], value)

    def visit_multi_select_list(self, node: Any, value: Any) -> Any:
        if value is None:
            return None
        return [self._lenient(child, value) for child in node["children"]]

    def visit_multi_select_dict(self, node: Any, value: Any) -> Any:
        if value is None:
            return None
        return {child["value"]: self._lenient(child["children"][0], value) for child in node["children"]}

    def visit_not_expression(self, node: Any, value: Any) -> Any:
        return not _truthy(self._lenient(node["children"][0], value))


_INTERPRETER = _Interpreter(jmespath.Options(custom_functions=_FUNCTIONS))


class CompileError(ValueError):
    """A JMESPath expression does not parse."""


@lru_cache(maxsize=8192)
def compile_expression(expression: str) -> jmespath.parser.ParsedResult:
    """Parse (once) a JMESPath expression."""
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise CompileError(f"invalid JMESPath {expression!r}: {_reason(exc)}") from None
    except RecursionError:
        # jmespath's parser recurses once per prefix operator or bracket: ``!!!…a`` or ``((…))``.
        raise CompileError(f"invalid JMESPath {_shown(expression)}: nested too deeply") from None


def _shown(expression: str, limit: int = 80) -> str:
    """``expression`` quoted, cut short when long (a hostile one can be megabytes)."""
    return repr(expression) if len(expression) <= limit else repr(expression[:limit]) + "..."


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


Compiled = Callable[[Any], Any]
_COMPARE = jmespath.visitor.TreeInterpreter.COMPARATOR_FUNC


def _lenient(function: Compiled) -> Compiled:
    def run(value: Any) -> Any:
        try:
            return function(value)
        except NotFoundKey:
            return None

    return run


def _chain(functions: list[Compiled]) -> Compiled:
    if len(functions) == 1:
        return functions[0]

    def run(value: Any) -> Any:
        for function in functions:
            value = function(value)
        return value

    return run


def _field(key: str) -> Compiled:
    def run(value: Any) -> Any:
        if isinstance(value, dict):
            try:
                return value[key]
            except KeyError:
                raise NotFoundKey(key) from None
        return None

    return run


def _collect(base: Compiled, child: Compiled, over: Callable[[Any], Any], charged: bool) -> Compiled:
    def run(value: Any) -> Any:
        items = over(base(value))
        if items is None:
            return None
        if charged:
            _budget.charge(len(items) * _PER_ELEMENT)
        collected = []
        for element in items:
            current = child(element)
            if current is not None:
                collected.append(current)
        return collected

    return run


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else None


def _as_values(value: Any) -> Any:
    return list(value.values()) if isinstance(value, dict) else None


def _lenient_node(node: Any, charged: bool) -> Compiled:
    """``_lenient(_compile_node(node, charged))``, without raising and catching for plain field paths.

    A missing key inside a lenient context only ever yields None, and a field of a non-object is
    None too, so a path made of fields alone can look keys up directly (raising an exception
    per missing key costs more than the rest of the lookup).
    """
    if node["type"] == "field":
        key = node["value"]
        return lambda value: value.get(key) if isinstance(value, dict) else None
    if node["type"] == "subexpression" and all(child["type"] == "field" for child in node["children"]):
        keys = tuple(child["value"] for child in node["children"])

        def path(value: Any) -> Any:
            for key in keys:
                if not isinstance(value, dict):
                    return None
                value = value.get(key)
            return value

        return path
    return _lenient(_compile_node(node, charged))


def _compile_node(node: Any, charged: bool) -> Compiled:  # noqa: PLR0911, PLR0912, PLR0915  # one case per AST node type
    """A Python closure equivalent to interpreting ``node`` (the hot path avoids the visitor).

    ``charged``: the expression can build more than it reads (:func:`_builds`), so the closures
    count their work against the evaluation's allowance; other expressions skip the counting.
    """
    kind = node["type"]
    children = node.get("children") or []
    if kind == "field":
        return _field(node["value"])
    if kind in ("subexpression", "index_expression", "pipe"):
        return _chain([_compile_node(child, charged) for child in children])
    if kind in ("identity", "current"):
        return lambda value: value
    if kind == "literal":
        literal = node["value"]
        return lambda value: literal
    if kind == "index":
        position = node["value"]

        def index(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            try:
                return value[position]
            except IndexError:
                return None

        return index
    if kind == "projection":
        return _collect(
            _lenient_node(children[0], charged), _lenient_node(children[1], charged), _as_list, charged
        )
    if kind == "value_projection":
        return _collect(
            _lenient_node(children[0], charged), _lenient_node(children[1], charged), _as_values, charged
        )
    if kind == "filter_projection":
        condition = _lenient_node(children[2], charged)

        def kept(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            if charged:
                _budget.charge(len(value) * _PER_ELEMENT)
            return [e for e in value if _truthy(condition(e))]

        return _collect(
            _lenient_node(children[0], charged), _lenient_node(children[1], charged), kept, charged
        )
    if kind == "flatten":
        base = _lenient_node(children[0], charged)

        def flatten(value: Any) -> Any:
            items = base(value)
            if not isinstance(items, list):
                return None
            merged: list[Any] = []
            for element in items:
                if isinstance(element, list):
                    merged.extend(element)
                else:
                    merged.append(element)
            if charged:
                _budget.charge(len(merged))
            return merged

        return flatten
    if kind == "comparator":
        left, right = _lenient_node(children[0], charged), _lenient_node(children[1], charged)
        op = node["value"]
        compare = _COMPARE[op]
        if op in ("eq", "ne") and not charged:
            # Both sides are parts of the input, whose expanded size is bounded.
            return lambda value: compare(left(value), right(value))
        if op in ("eq", "ne"):

            def equality(value: Any) -> Any:
                a, b = left(value), right(value)
                _check_compared(a, b)
                return compare(a, b)

            return equality

        def ordered(value: Any) -> Any:
            a, b = left(value), right(value)
            numbers = (int, float)
            if (
                not (isinstance(a, numbers) and isinstance(b, numbers))
                or isinstance(a, bool)
                or isinstance(b, bool)
            ):
                return None
            return compare(a, b)

        return ordered
    if kind == "or_expression":
        first, second = _lenient_node(children[0], charged), _compile_node(children[1], charged)

        def either(value: Any) -> Any:
            matched = first(value)
            return matched if _truthy(matched) else second(value)

        return either
    if kind == "and_expression":
        first, second = _lenient_node(children[0], charged), _lenient_node(children[1], charged)

        def both(value: Any) -> Any:
            matched = first(value)
            return second(value) if _truthy(matched) else matched

        return both
    if kind == "not_expression":
        inner = _lenient_node(children[0], charged)
        return lambda value: not _truthy(inner(value))
    if kind == "multi_select_list":
        parts = [_lenient_node(child, charged) for child in children]
        return lambda value: None if value is None else [part(value) for part in parts]
    if kind == "multi_select_dict":
        pairs = [(child["value"], _lenient_node(child["children"][0], charged)) for child in children]
        return lambda value: None if value is None else {key: part(value) for key, part in pairs}
    if kind == "function_expression":
        return _function_call(node["value"], [_lenient_node(child, charged) for child in children], charged)
    # Rare node types (slices, expression references) go through the interpreter.
    return lambda value: _INTERPRETER.visit(node, value)


def _function_call(name: str, arguments: list[Compiled], charged: bool) -> Compiled:
    """A call of JMESPath function ``name``; arguments of the types it takes go straight to it.

    The library validates every call in Python (arity, then each argument's type name against
    the types its signature names): about half of a call's cost for most functions (``to_upper``
    1.5 against 0.96 us, ``length`` 1.7 against 0.83 us, compiled engine, benchmarks/README.md).
    The same test, the argument's type name in the set the signature allows, is worked out here
    once. Anything it does not cover (a variadic function, an array of typed elements, an
    argument of another type, an unknown function) goes through ``call_function``, which
    answers or raises exactly as before.
    """

    def checked(value: Any) -> Any:
        return _FUNCTIONS.call_function(name, [argument(value) for argument in arguments])

    allowed = _type_names(name, len(arguments))
    if allowed is None:
        return _counted(checked) if charged else checked
    function = _FUNCTIONS.FUNCTION_TABLE[name]["function"]

    def direct(value: Any) -> Any:
        found = [argument(value) for argument in arguments]
        for current, names in zip(found, allowed, strict=True):
            if names is not None and type(current).__name__ not in names:
                return _FUNCTIONS.call_function(name, found)
        return function(_FUNCTIONS, *found)

    return _counted(direct) if charged else direct


def _counted(call: Compiled) -> Compiled:
    """``call``, its result's size counted against the evaluation's allowance."""
    return lambda value: _charged(call(value))


def _charged(result: Any) -> Any:
    """A function's result, its size counted against the evaluation's allowance."""
    if isinstance(result, (str, list, dict)):
        _budget.charge(len(result))
    return result


def _check_compared(a: Any, b: Any) -> None:
    """Bound ``a == b`` where both sides are containers (deep equality walks shared parts again)."""
    if isinstance(a, (dict, list)) and isinstance(b, (dict, list)) and a is not b:
        _budget.check_expanded(a, "comparing values")
        _budget.check_expanded(b, "comparing values")


def _type_names(name: str, arity: int) -> list[frozenset[str] | None] | None:
    """Per argument, the Python type names function ``name`` accepts (None: any); None if not simple."""
    spec = _FUNCTIONS.FUNCTION_TABLE.get(name)
    if spec is None:
        return None
    signature = spec["signature"]
    if len(signature) != arity or any(argument.get("variadic") for argument in signature):
        return None
    names: list[frozenset[str] | None] = []
    for argument in signature:
        types = argument.get("types") or []
        if not types:
            names.append(None)
            continue
        if any("-" in kind or kind not in jmespath.functions.REVERSE_TYPES_MAP for kind in types):
            return None
        names.append(frozenset(n for kind in types for n in jmespath.functions.REVERSE_TYPES_MAP[kind]))
    return names


# Node types whose results are parts of their input, or lists of such parts no longer than the
# input holds: an expression made of these alone does work bounded by what it reads. Everything
# else (multi-selects, functions, and what the interpreter evaluates: slices, expression
# references) can build values larger than its input, or the same part many times over.
_READS_ONLY = frozenset(
    {
        "field",
        "subexpression",
        "index_expression",
        "pipe",
        "identity",
        "current",
        "literal",
        "index",
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
        "comparator",
        "or_expression",
        "and_expression",
        "not_expression",
    }
)

# Allowance units one element of a projection or filter costs: evaluating an expression per
# element takes about as long as building a few dozen values.
_PER_ELEMENT = 16


# Functions whose result is no larger than their arguments (give or take a constant factor that
# does not compound: upper-casing) and costs time linear in them.
_READING_FUNCTIONS = frozenset(
    {
        "abs",
        "ceil",
        "contains",
        "ends_with",
        "floor",
        "keys",
        "length",
        "not_null",
        "starts_with",
        "to_lower",
        "to_number",
        "to_upper",
        "type",
        "values",
    }
)


def _builds(node: Any) -> bool:
    """Whether the expression ``node`` holds a node that can build more than it reads."""
    pending = [node]
    while pending:
        current = pending.pop()
        children = current.get("children") or ()
        if not _reads_only(current["type"], current.get("value"), children):
            return True
        pending.extend(children)
    return False


def _reads_only(kind: str, value: Any, children: Any) -> bool:
    if kind in _READS_ONLY:
        return True
    if kind == "function_expression":
        return value in _READING_FUNCTIONS
    # ``[initContainers, containers]``: different keys are different parts of the input.
    return kind == "multi_select_list" and _distinct_fields(children)


def _distinct_fields(children: Any) -> bool:
    names = [child.get("value") for child in children if child["type"] == "field"]
    return len(names) == len(children) and len(set(names)) == len(names)


@lru_cache(maxsize=8192)
def _compiled(expression: str) -> tuple[Compiled, bool]:
    parsed = compile_expression(expression).parsed
    try:
        charged = _builds(parsed)
        return _compile_node(parsed, charged), charged
    except RecursionError:
        # The parser's stack was shallower than the tree walk's (a caller deep in recursion).
        raise CompileError(f"invalid JMESPath {_shown(expression)}: nested too deeply") from None


def search(expression: str, data: Any) -> Any:
    """Evaluate ``expression`` on ``data``; failures raise :class:`EvaluationError`."""
    try:
        function, charged = _compiled(expression)
    except CompileError as bad:
        raise EvaluationError(str(bad)) from None
    try:
        if not charged:
            return function(data)
        _budget.start()
        result = function(data)
        # A result that shares its parts ([v, v] piped into itself) is small in memory and huge
        # to whatever walks it next: none leaves an evaluation larger than the allowance.
        if isinstance(result, (dict, list)) and not _budget.within(result):
            raise _budget.too_large("the result")
        return result
    except NotFoundKey as missing:
        raise EvaluationError(f"failed to evaluate {expression!r}: {missing}") from None
    except jmespath.exceptions.JMESPathError as failed:
        raise EvaluationError(f"failed to evaluate {expression!r}: {_reason(failed)}") from None
    except (ValueError, TypeError, ArithmeticError, KeyError, IndexError, LookupError, re.error) as exc:
        raise EvaluationError(f"failed to evaluate {expression!r}: {exc}") from None
    except RecursionError:
        raise EvaluationError(f"failed to evaluate {expression!r}: too deeply nested") from None
    except EvaluationError as exc:
        # The allowance ran out, or a value grew past it (policies._budget).
        raise EvaluationError(f"failed to evaluate {_shown(expression)}: {exc}") from None


def variables_in(text: str) -> list[str]:
    """The expressions of the ``{{ }}`` variables in ``text``."""
    return [_clean(found.group(1)) for found in _VARIABLE.finditer(text)]


def _clean(inner: str) -> str:
    inner = inner.strip()
    if inner.startswith("-"):
        inner = inner[1:].strip()
    return inner


# Policy data is immutable once loaded, so the answer for a container is cached by identity
# (the entry keeps the object alive, so its id cannot be reused while cached).
_HAS_VARIABLES: dict[int, tuple[Any, bool]] = {}
_CACHE_LIMIT = 65536


def has_variables(value: Any) -> bool:
    """Whether any string inside ``value`` holds a ``{{ }}`` variable."""
    if isinstance(value, str):
        return "{{" in value
    if not isinstance(value, (dict, list)):
        return False
    cached = _HAS_VARIABLES.get(id(value))
    if cached is not None and cached[0] is value:
        return cached[1]
    if isinstance(value, dict):
        found = any(has_variables(k) or has_variables(v) for k, v in value.items())
    else:
        found = any(has_variables(v) for v in value)
    if len(_HAS_VARIABLES) >= _CACHE_LIMIT:
        _HAS_VARIABLES.clear()
    _HAS_VARIABLES[id(value)] = (value, found)
    return found


def to_text(value: Any) -> str:
    """A substituted value as it appears inside a longer string."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


Resolver = Callable[[str], Any]


def substitute(value: Any, resolve: Resolver) -> Any:
    """Replace every ``{{ }}`` variable in ``value`` (recursively) using ``resolve``."""
    if isinstance(value, str):
        return substitute_text(value, resolve)
    if isinstance(value, dict):
        return {
            substitute_text(k, resolve) if "{{" in k else k: substitute(v, resolve) for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute(v, resolve) for v in value]
    return value


# The longest text a substitution may build. Substituted values can multiply: a context
# variable ``"{{ v }}{{ v }}"`` doubles the one before it (24 such took 16 GB), and text built
# by a nested round comes from the resource (a container image of
# ``{{ request.object.spec.containers[].image }}`` in a message that lists the images grows it
# by the number of containers per round: 50 MB for four).
MAX_SUBSTITUTED_TEXT = 4 << 20


def _too_long() -> EvaluationError:
    return EvaluationError(
        f"variable substitution makes a text longer than {MAX_SUBSTITUTED_TEXT} characters"
    )


def _split(text: str) -> tuple[str | None, tuple[tuple[bool, str], ...]]:
    """``(expression, ())`` for a lone variable, else ``(None, parts)`` of (is_expression, text)."""
    matches = list(_VARIABLE.finditer(text))
    if len(matches) == 1 and matches[0].span() == (0, len(text)):
        return _clean(matches[0].group(1)), ()
    parts: list[tuple[bool, str]] = []
    position = 0
    for found in matches:
        parts.append((False, text[position : found.start()]))
        parts.append((True, _clean(found.group(1))))
        position = found.end()
    parts.append((False, text[position:]))
    return None, tuple(parts)


# Only a policy's own texts are cached: nested rounds split resource-made text, which would
# pin megabytes per entry.
_template = lru_cache(maxsize=8192)(_split)


def _bounded_join(parts: tuple[tuple[bool, str], ...], resolve: Resolver) -> str:
    pieces: list[str] = []
    size = 0
    for is_expression, chunk in parts:
        piece = to_text(resolve(chunk)) if is_expression else chunk
        size += len(piece)
        if size > MAX_SUBSTITUTED_TEXT:
            raise _too_long()
        pieces.append(piece)
    return "".join(pieces)


def substitute_text(text: str, resolve: Resolver) -> Any:
    """Substitute the variables of one string; a lone variable keeps its JSON type.

    Raises:
        EvaluationError: an expression fails, or the text grows past
            :data:`MAX_SUBSTITUTED_TEXT` characters.
    """
    if "{{" not in text:
        return text
    nested = False
    for _ in range(10):  # nested variables resolve in rounds; bounded against self-reference
        whole, parts = _split(text) if nested else _template(text)
        if whole is not None:
            result = resolve(whole)
            if isinstance(result, str) and "{{" in result and _VARIABLE.search(result):
                text = result
                nested = True
                continue
            return result
        if len(parts) == 1:
            break
        if nested:
            # Resource-made text: its pieces can be many and large, so the size is kept as it grows.
            text = _bounded_join(parts, resolve)
        else:
            # A policy's text has few pieces, each a value already within bounds.
            text = "".join(
                to_text(resolve(chunk)) if is_expression else chunk for is_expression, chunk in parts
            )
            if len(text) > MAX_SUBSTITUTED_TEXT:
                raise _too_long()
        if "{{" not in text or not _VARIABLE.search(text):
            break
        nested = True
    return _ESCAPED.sub("{{", text)
