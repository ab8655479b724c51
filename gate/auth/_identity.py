"""Who is calling: an authenticated identity, its roles and projects."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from dataclasses import dataclass

ROLES: tuple[str, ...] = ("pipeline", "admission", "auditor", "admin")
# A project entry that stands for every project.
ALL_PROJECTS = "*"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    ``name`` says how it was authenticated and who it is (``token:ci-payments``,
    ``cert:spiffe://cluster/ns/ci/sa/runner``, ``k8s:system:serviceaccount:ci:runner``);
    it is what decisions record as their caller. ``projects`` only matter to the
    ``pipeline`` role.
    """

    name: str
    roles: frozenset[str]
    projects: frozenset[str] = frozenset()

    @classmethod
    def of(cls, name: str, roles: Iterable[str], projects: Iterable[str] = ()) -> Identity:
        """Build an identity from any iterables of role and project names."""
        return cls(name, frozenset(roles), frozenset(projects))

    def acts_for(self, project: str) -> bool:
        """Whether this identity may ask about ``project``'s artifacts."""
        return bool(project) and (ALL_PROJECTS in self.projects or project in self.projects)


_CURRENT: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("gate_caller", default=None)


def current_identity() -> Identity | None:
    """The identity of the request being served in this context, if the transport set one."""
    return _CURRENT.get()


def current_caller() -> str:
    """The name of :func:`current_identity`, or an empty string."""
    identity = _CURRENT.get()
    return identity.name if identity is not None else ""


def set_identity(identity: Identity | None) -> contextvars.Token[Identity | None]:
    """Make ``identity`` the caller of this context; reset with the returned token."""
    return _CURRENT.set(identity)


def reset_identity(token: contextvars.Token[Identity | None]) -> None:
    """Undo :func:`set_identity`."""
    _CURRENT.reset(token)
