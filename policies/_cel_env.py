"""CEL environments (Kubernetes admission and Kyverno ValidatingPolicy), compilation and bounded evaluation.

The CEL engine is ``cel-expr-python`` (the CEL maintainers' wrapper of cel-cpp): it is the only
PyPI library that parses the optional syntax (``.?f``, ``[?k]``) most Kyverno CEL policies use.
Where its behaviour differs from cel-go (which Kyverno and the API server run), a source rewrite
or an input conversion here closes the gap; each says why.

Cost bounds (the library has no cost-limit setting): expression length at load, ``lists.range``
only with a small literal, inputs bounded in depth, node count and JSON bytes, the library's
own budget of 10,000 comprehension iterations per evaluation, and a per-request time budget that
is checked between expressions (:class:`Budget`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel

from policies import _cel_libs

MAX_EXPRESSION_CHARS = 10_000
"""Longest expression a policy may hold (Kubernetes rejects expressions beyond its cost estimate)."""
MAX_INLINED_CHARS = 100_000
"""Longest expression once ``variables.X`` references are inlined (bounds variable fan-out)."""
MAX_RANGE = 10_000
"""Largest literal ``lists.range(n)``: the library allocates the list before any budget applies."""
MAX_INPUT_BYTES = 4 * 1024 * 1024
"""Largest input (object, oldObject, params...) as JSON bytes (an AdmissionReview is at most ~3 MiB)."""
REQUEST_BUDGET_SECONDS = 0.25
"""Wall time one request's CEL expressions may take; later expressions give ``error``."""

_BASE_EXTENSIONS = """
extensions:
  - name: optional
  - name: strings
    version: 2
  - name: lists
  - name: sets
  - name: regex
  - name: two-var-comprehensions
"""
# Kyverno's ValidatingPolicy environment adds these (cel-go's ext.Bindings/Math/Encoders).
_KYVERNO_EXTENSIONS = """
  - name: bindings
  - name: math
  - name: encoders
"""

_ADMISSION_VARIABLES = ("object", "oldObject", "request", "namespaceObject", "params", "authorizer")
_KYVERNO_VARIABLES = ("object", "oldObject", "request", "namespaceObject", "exceptions")


class CelCompileError(Exception):
    """An expression does not compile; the message is the library's (or our bound's)."""


class CelBudgetError(Exception):
    """The request's CEL time budget is spent."""


@dataclass(frozen=True, slots=True)
class Environment:
    """One compile environment: which variables exist and which function libraries."""

    name: str
    env: Any
    variables: tuple[str, ...]


def _new_environment(name: str, variables: Sequence[str], extensions: str, kyverno: bool) -> Environment:
    config = cel.NewEnvConfigFromYaml(extensions)
    functions = _cel_libs.kubernetes_functions()
    if kyverno:
        functions += _cel_libs.kyverno_functions()
    env = cel.NewEnv(
        config=config,
        variables=dict.fromkeys(variables, cel.Type.DYN),
        functions=functions,
    )
    return Environment(name, env, tuple(variables))


_ENVIRONMENTS: dict[str, Environment] = {}


def admission_environment() -> Environment:
    """The Kubernetes admission-policy environment (validate.cel rules, ValidatingAdmissionPolicy)."""
    if "admission" not in _ENVIRONMENTS:
        _ENVIRONMENTS["admission"] = _new_environment(
            "admission", _ADMISSION_VARIABLES, _BASE_EXTENSIONS, kyverno=False
        )
    return _ENVIRONMENTS["admission"]


def kyverno_environment() -> Environment:
    """Kyverno's ValidatingPolicy environment (Kubernetes libraries plus Kyverno's)."""
    if "kyverno" not in _ENVIRONMENTS:
        _ENVIRONMENTS["kyverno"] = _new_environment(
            "kyverno", _KYVERNO_VARIABLES, _BASE_EXTENSIONS + _KYVERNO_EXTENSIONS, kyverno=True
        )
    return _ENVIRONMENTS["kyverno"]


# --- source rewrites -------------------------------------------------------------------------

_STRING = re.compile(
    r"""[rRbB]{0,2}(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""",
    re.DOTALL,
)
_VARIABLE = re.compile(r"(?<![\w.])variables\.([A-Za-z_]\w*)")


def code_spans(text: str) -> list[tuple[int, int, bool]]:
    """``(start, end, is_code)`` spans: string literals are never rewritten."""
    spans: list[tuple[int, int, bool]] = []
    position = 0
    for found in _STRING.finditer(text):
        # A match that starts inside an identifier (``bar'...``) is not a literal prefix.
        start = found.start()
        if start > position:
            spans.append((position, start, True))
        spans.append((start, found.end(), False))
        position = found.end()
    if position < len(text):
        spans.append((position, len(text), True))
    return spans


def inline_variables(text: str, variables: Mapping[str, str], *, _depth: int = 0) -> str:
    """Replace ``variables.NAME`` with ``(expression)``, recursively.

    cel-cpp has no lazily evaluated variables; inlining keeps Kyverno's laziness (a variable is
    evaluated only where used, and its error only surfaces there).

    Raises:
        CelCompileError: an unknown or cyclic variable, or an expansion beyond the size bound.
    """
    if _depth > len(variables) + 1:
        raise CelCompileError("variables reference each other in a cycle")
    if "variables." not in text:
        return text

    def replace(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in variables:
            raise CelCompileError(f"undeclared reference to 'variables.{name}'")
        return "(" + inline_variables(variables[name], variables, _depth=_depth + 1) + ")"

    pieces = [
        _VARIABLE.sub(replace, text[start:end]) if code else text[start:end]
        for start, end, code in code_spans(text)
    ]
    result = "".join(pieces)
    if len(result) > MAX_INLINED_CHARS:
        raise CelCompileError(f"expression exceeds {MAX_INLINED_CHARS} characters once variables are inlined")
    return result


_OR_VALUE = ".orValue("
_OPTIONAL_MARKERS = (".?", "[?", "optional.")


def _receiver_start(text: str, end: int) -> int:
    """Start of the postfix chain (identifiers, selections, calls, indexes) ending at ``end``."""
    position = end
    while position > 0:
        char = text[position - 1]
        if char in ")]":
            opening = "(" if char == ")" else "["
            depth = 0
            while position > 0:
                position -= 1
                if text[position] == char:
                    depth += 1
                elif text[position] == opening:
                    depth -= 1
                    if depth == 0:
                        break
            continue
        if char.isalnum() or char in "_.?":
            position -= 1
            continue
        break
    return position


def _call_end(text: str, start: int) -> int:
    """Index just past the ``)`` closing the call whose ``(`` is at ``start``."""
    depth = 0
    for position in range(start, len(text)):
        if text[position] == "(":
            depth += 1
        elif text[position] == ")":
            depth -= 1
            if depth == 0:
                return position + 1
    return len(text)


def drop_plain_or_value(text: str) -> str:
    """``X.orValue(Y)`` -> ``X`` when ``X`` cannot be optional.

    cel-go >= 0.28 rejects ``orValue`` on a plain value and Kyverno registers a replacement that
    returns the value; cel-cpp's ``orValue`` cannot be overloaded, so the call is removed instead.
    Only code spans are considered (a string literal may contain the text).
    """
    if _OR_VALUE not in text:
        return text
    spans = code_spans(text)
    masked = "".join(text[s:e] if code else "\x00" * (e - s) for s, e, code in spans)
    search_from = 0
    while True:
        index = masked.find(_OR_VALUE, search_from)
        if index < 0:
            return text
        start = _receiver_start(masked, index)
        receiver = masked[start:index]
        if any(marker in receiver for marker in _OPTIONAL_MARKERS) or not receiver:
            search_from = index + len(_OR_VALUE)
            continue
        end = _call_end(masked, index + len(".orValue"))
        text = text[:index] + text[end:]
        masked = masked[:index] + masked[end:]
        search_from = index


_RANGE = re.compile(r"lists\.range\(\s*([^)]*)\)")


def check_bounds(text: str) -> None:
    """Static cost bounds on an expression's source.

    Raises:
        CelCompileError: the expression is too long, or asks ``lists.range`` for a list that is
            not a small literal.
    """
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CelCompileError(f"expression is {len(text)} characters long (at most {MAX_EXPRESSION_CHARS})")
    _check_ranges(text)


def _check_ranges(text: str) -> None:
    for start, end, code in code_spans(text):
        if not code:
            continue
        for found in _RANGE.finditer(text[start:end]):
            argument = found.group(1).strip()
            if not argument.isdigit() or int(argument) > MAX_RANGE:
                raise CelCompileError(
                    f"lists.range needs an integer literal of at most {MAX_RANGE} (got {argument!r}): "
                    "larger lists are built before any cost check"
                )


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled expression and where it came from."""

    source: str
    path: str
    expression: Any


def compile_expression(
    environment: Environment, text: str, path: str, variables: Mapping[str, str] | None = None
) -> Program:
    """Compile ``text`` (with ``variables.X`` inlined) in ``environment``.

    Raises:
        CelCompileError: the library's message, or one of our bounds.
    """
    if not text.strip():
        raise CelCompileError("expected a non-empty expression")
    check_bounds(text)
    source = inline_variables(text, variables or {})
    source = drop_plain_or_value(source)
    _check_ranges(source)
    try:
        expression = environment.env.compile(source)
    except RuntimeError as exc:
        raise CelCompileError(_library_message(str(exc))) from None
    return Program(text, path, expression)


def _library_message(text: str) -> str:
    text = text.replace("INVALID_ARGUMENT: ", "", 1)
    text = re.sub(r"\s*\[INVALID_ARGUMENT\]$", "", text)
    return text.strip()


# --- evaluation ------------------------------------------------------------------------------


class Budget:
    """The time one request's expressions may take, checked before each expression."""

    __slots__ = ("deadline",)

    def __init__(self, seconds: float = REQUEST_BUDGET_SECONDS) -> None:
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        """Raises :class:`CelBudgetError` when the budget is spent."""
        if time.monotonic() > self.deadline:
            raise CelBudgetError(f"CEL evaluation exceeded the request budget of {REQUEST_BUDGET_SECONDS} s")


class EvalError(Exception):
    """An expression evaluated to an error (no such key, no matching overload, budget...)."""


@dataclass(frozen=True, slots=True)
class Activation:
    """Inputs of one evaluation, converted once for every expression."""

    activation: Any
    data: _cel_libs.RequestData


def activation(
    environment: Environment, inputs: Mapping[str, Any], data: _cel_libs.RequestData
) -> Activation:
    """Bind every variable of ``environment`` to inputs already made by :func:`to_cel_input`
    (missing ones are null)."""
    bound = {name: inputs.get(name) for name in environment.variables}
    return Activation(environment.env.Activation(bound), data)


def to_cel_input(value: Any) -> Any:
    """Plain JSON for the library, at most :data:`MAX_INPUT_BYTES` of it; null map values become
    ``{}`` (:func:`policies._cel_libs.cel_json`). The copy goes through the C JSON codec: a
    Python walk over a 3 KB Pod costs ten times more.

    Raises:
        EvalError: the input's JSON form is larger than :data:`MAX_INPUT_BYTES`.
    """
    if value is None:
        return None
    text = json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    if len(text) > MAX_INPUT_BYTES:
        raise EvalError(f"the input is {len(text)} bytes of JSON (at most {MAX_INPUT_BYTES})")
    return _cel_libs.cel_json(text)


_ERROR = cel.Type.ERROR
_BOOL = cel.Type.BOOL


def evaluate(program: Program, bound: Activation, budget: Budget | None = None) -> Any:
    """The plain value of ``program`` on ``bound``.

    Raises:
        EvalError: the expression evaluated to an error, exhausted the iteration budget, or the
            request budget is spent.
    """
    if budget is not None and time.monotonic() > budget.deadline:
        raise EvalError(f"CEL evaluation exceeded the request budget of {REQUEST_BUDGET_SECONDS} s")
    # Callers bind the request data once per policy (_cel_libs.bound_data); this is the fallback.
    token = None if _cel_libs.CURRENT.get() is bound.data else _cel_libs.CURRENT.set(bound.data)
    try:
        value = program.expression.eval(bound.activation)
        result = value.value()
        # An error value's value() is its message (a string), never a bool.
        if result is True or result is False:
            return result
        if value.type() == _ERROR:
            raise EvalError(_runtime_message(str(result)))
        return value.plain_value()
    except RuntimeError as exc:
        raise EvalError(_runtime_message(str(exc))) from None
    except TypeError:
        # Optional values have no Python form: a result that is an optional is a type error
        # for every caller here (conditions want bool, messages want string).
        raise EvalError("expression returned an optional value") from None
    finally:
        if token is not None:
            _cel_libs.CURRENT.reset(token)


def _runtime_message(text: str) -> str:
    text = re.sub(r"^[A-Z_]+: ", "", text)
    text = re.sub(r"\s*\[[A-Z_]+\]$", "", text)
    if text.startswith("Key not found in map : "):
        return "no such key: " + text.removeprefix("Key not found in map : ").strip('"')
    if text.startswith("Iteration budget exceeded"):
        return "CEL iteration budget (10000 comprehension iterations) exceeded"
    return text


Evaluator = Callable[[Program], Any]
