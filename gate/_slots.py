"""Building frozen, slotted dataclass instances on hot paths."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Names of the generated functions' own locals and globals; a field named so keeps the class's
# own constructor (none is).
_PREFIX = "_slots_"


def slot_constructor(cls: type[T]) -> Callable[..., T]:
    """A constructor setting the slots directly; its parameters are the fields (names, order, defaults).

    A frozen dataclass's ``__init__`` goes through ``object.__setattr__`` for each field:
    ~1.6 us for a 12-field policy rule response, built ~20 times per admission review. This
    one fills an instance of a twin class (:func:`_twin`) with plain attribute stores, then
    makes it an instance of ``cls``: ~0.4 us (~0.9 through each slot's descriptor, which is
    what a class without a twin gets). Instances are the same (same type, fields, equality
    and hash). No ``__post_init__``: a class with one (or without slot descriptors, or with
    keyword-only or ``init=False`` fields) gets its own constructor back.
    """
    fields = _fields(cls)
    if fields is None:
        return cls
    parameters = []
    namespace: dict[str, Any] = {f"{_PREFIX}missing": _MISSING}
    factories = []
    for index, field in enumerate(fields):
        if field.default is not dataclasses.MISSING:
            namespace[f"{_PREFIX}default{index}"] = field.default
            parameters.append(f"{field.name}={_PREFIX}default{index}")
        elif field.default_factory is not dataclasses.MISSING:
            # As dataclasses do: a marker default, the factory called when it is left.
            namespace[f"{_PREFIX}factory{index}"] = field.default_factory
            parameters.append(f"{field.name}={_PREFIX}missing")
            factories.append(
                f"    if {field.name} is {_PREFIX}missing:\n"
                f"        {field.name} = {_PREFIX}factory{index}()\n"
            )
        else:
            parameters.append(field.name)
    body = _fill(cls, fields, namespace, {field.name: field.name for field in fields})
    source = f"def build({', '.join(parameters)}):\n{''.join(factories)}{body}"
    return _generated(cls, "new", source, namespace)


def slot_replacer(cls: type[T]) -> Callable[..., T]:
    """``dataclasses.replace`` for one class, setting the copy's slots directly.

    ``replace(instance, **changes)`` goes through the class's ``__init__`` with every field
    as a keyword: ~5.7 us for a decision, against ~1.5 here (the copy is built as
    :func:`slot_constructor` builds). Unknown fields are a ``TypeError``, as there. A class
    :func:`slot_constructor` cannot build gets ``dataclasses.replace`` itself.
    """
    fields = _fields(cls)
    if fields is None:
        return lambda instance, /, **changes: dataclasses.replace(instance, **changes)
    parameters = ", ".join(f"{field.name}={_PREFIX}missing" for field in fields)
    namespace: dict[str, Any] = {f"{_PREFIX}missing": _MISSING}
    values = {
        field.name: f"{_PREFIX}original.{field.name} if {field.name} is {_PREFIX}missing else {field.name}"
        for field in fields
    }
    source = f"def build({_PREFIX}original, /, *, {parameters}):\n{_fill(cls, fields, namespace, values)}"
    return _generated(cls, "replace", source, namespace)


_MISSING = object()


def _fields(cls: type[Any]) -> list[dataclasses.Field[Any]] | None:
    """The fields, when a generated function can set every one through its slot descriptor."""
    fields = list(dataclasses.fields(cls))
    # A class with a __new__ of its own (a mypyc native class has one) is not object.__new__'s.
    own_new: object = cls.__new__
    if (
        own_new is not object.__new__
        or hasattr(cls, "__post_init__")
        or any(
            not f.init
            or f.kw_only
            or f.name.startswith(_PREFIX)
            or getattr(cls.__dict__.get(f.name), "__set__", None) is None
            for f in fields
        )
    ):
        return None
    return fields


def _twin(cls: type[Any], fields: list[dataclasses.Field[Any]]) -> type[Any] | None:
    """A class laid out as ``cls`` (the same slots, in order) that takes plain attribute stores.

    A frozen dataclass refuses attribute stores (its ``__setattr__`` raises); an instance of
    its twin takes them into the same slots, then becomes a ``cls`` instance by assigning its
    ``__class__``, which CPython allows between classes of the same layout and slots (and
    checks: where it would refuse, there is no twin).
    """
    slots = tuple(field.name for field in fields)
    if cls.__bases__ != (object,) or cls.__dict__.get("__slots__") != slots:
        return None
    twin = type(f"{cls.__name__}Twin", (), {"__slots__": slots, "__module__": __name__})
    probe: Any = object.__new__(twin)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return twin


def _fill(
    cls: type[Any], fields: list[dataclasses.Field[Any]], namespace: dict[str, Any], values: dict[str, str]
) -> str:
    """The generated body that builds an instance of ``cls`` from ``values`` (expressions by field)."""
    namespace[f"{_PREFIX}new"] = object.__new__
    namespace[f"{_PREFIX}cls"] = cls
    made = f"{_PREFIX}made"
    twin = _twin(cls, fields)
    if twin is not None:
        namespace[f"{_PREFIX}twin"] = twin
        stores = "".join(f"    {made}.{field.name} = {values[field.name]}\n" for field in fields)
        return (
            f"    {made} = {_PREFIX}new({_PREFIX}twin)\n{stores}"
            f"    {made}.__class__ = {_PREFIX}cls\n    return {made}\n"
        )
    for index, field in enumerate(fields):
        namespace[f"{_PREFIX}set{index}"] = cls.__dict__[field.name].__set__
    stores = "".join(
        f"    {_PREFIX}set{index}({made}, {values[field.name]})\n" for index, field in enumerate(fields)
    )
    return f"    {made} = {_PREFIX}new({_PREFIX}cls)\n{stores}    return {made}\n"


def _generated(cls: type[T], verb: str, source: str, namespace: dict[str, Any]) -> Callable[..., T]:
    # Generated, as dataclasses generate ``__init__``: one straight-line function per class.
    exec(source, namespace)  # noqa: S102  # generated from the class's own field names
    build: Callable[..., T] = namespace["build"]
    build.__name__ = build.__qualname__ = f"{verb}_{cls.__name__}"
    return build
