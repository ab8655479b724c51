"""How much one JMESPath evaluation may build, and how large a value may grow when walked.

Expressions can multiply their work: ``[@, @][]`` piped into itself doubles a list per step, and
a projection inside a multi-select inside a projection evaluates its right side once per element
of every level. Values can also share parts: ``[v, v]`` holds ``v`` twice, so a chain of context
variables each ``[v<n>, v<n>]`` is a few hundred bytes in memory yet ``2**n`` values once
serialised, compared or printed (22 levels took 15 s and 400 MB). Two bounds keep both finite:

* in an expression that can build more than it reads (``policies._jmes._builds``: multi-selects
  that name a part twice, most functions, what the tree interpreter runs), every projection,
  filter, flattening and function result charges its work to the evaluation's allowance;
  :func:`start` gives each such evaluation a fresh one. Expressions that only read (field paths,
  projections, filters, ``[initContainers, containers]``, ``length``...) do work bounded by
  their input and skip the counting: Pod Security's rules are all of that kind;
* no value larger than the bound, counted as a tree, leaves such an evaluation or a substituted
  list or object (:func:`within`), and functions that walk their arguments as trees
  (``to_string``, ``contains``) or compare them check first. The count stops as soon as it
  passes the bound, so a check costs at most the bound.

The allowance is per thread: reviews are evaluated on several threads at once.
"""

from __future__ import annotations

import threading
from typing import Any

from policies._errors import EvaluationError

MAX_BUILT = 4 << 20
"""Values and characters one expression may build, and the largest expanded size of a value it
walks. A stored Kubernetes object is at most ~1.5 MiB (etcd's request limit), so an expression
over the largest real resource fits with room to spare, while a doubling chain stops within a
step or two of the bound (~0.3 s and ~80 MB of work at most)."""


_ALLOWANCE = threading.local()


def start() -> None:
    """Give the calling thread's next evaluation a fresh allowance."""
    _ALLOWANCE.left = MAX_BUILT


def charge(amount: int) -> None:
    """Count ``amount`` built values against the allowance.

    Raises:
        EvaluationError: the evaluation has built more than :data:`MAX_BUILT`.
    """
    # An evaluation that did not go through start() (a function called directly) starts full.
    left: int = getattr(_ALLOWANCE, "left", MAX_BUILT) - amount
    _ALLOWANCE.left = left
    if left < 0:
        raise EvaluationError(f"the expression builds more than {MAX_BUILT} values and characters")


def check_expanded(value: Any, what: str) -> None:
    """Raise unless :func:`within` ``value``.

    Raises:
        EvaluationError: naming ``what`` was being done with the value.
    """
    if not within(value):
        raise too_large(what)


def too_large(what: str) -> EvaluationError:
    """The error for a value :func:`within` refused while doing ``what``."""
    return EvaluationError(f"{what}: the value holds more than {MAX_BUILT} values and characters")


def within(value: Any) -> bool:
    """Whether ``value``, walked as a tree, holds at most :data:`MAX_BUILT` values and characters.

    Shared parts count once per place they appear, as a serialiser or a deep comparison meets
    them; the count stops at the bound.
    """
    if not isinstance(value, (dict, list)):
        return True
    left = MAX_BUILT
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            left -= len(item)
            for key, child in item.items():
                left -= len(key) if isinstance(key, str) else 1
                if isinstance(child, (dict, list)):
                    pending.append(child)
                elif isinstance(child, str):
                    left -= len(child)
        else:
            left -= len(item)
            for child in item:
                if isinstance(child, (dict, list)):
                    pending.append(child)
                elif isinstance(child, str):
                    left -= len(child)
        if left < 0:
            return False
    return True
