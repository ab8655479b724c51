"""Registry authentication: ``WWW-Authenticate`` challenges and bearer tokens cached per scope."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# One auth-param: name=token or name="quoted string" (RFC 7235).
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')
# Tokens are renewed this long before they expire, so a request never carries a stale one.
_EXPIRY_MARGIN = 10.0
# The distribution spec's default lifetime when the token service gives none.
DEFAULT_TOKEN_LIFETIME = 60.0
# The longest a token is cached, whatever the token service says. Clamped, not refused: the
# token itself is usable, only its lifetime is unbelievable. Token services hand out tokens for
# minutes (Docker Hub: 300 s), and one the registry finds expired costs a 401 and a new token,
# so the cap costs at most one request an hour; without it ``expires_in: 1e400`` (infinity)
# kept a token, and whatever rights it carried, for the life of the process.
MAX_TOKEN_LIFETIME = 3600.0
# RFC 6750 section 2.1 ``b64token``: what a Bearer credential may hold. Anything else could not
# be sent (httpx encodes headers as ASCII) or would change the header's meaning (spaces, CR/LF).
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_MAX_CHALLENGE = 4096


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` challenge (``Basic`` or ``Bearer``)."""

    scheme: str
    params: dict[str, str]

    @property
    def realm(self) -> str | None:
        """The token service URL of a Bearer challenge."""
        return self.params.get("realm")


def parse_challenge(header: str) -> Challenge | None:
    """Parse the first challenge of a ``WWW-Authenticate`` header; None if it is not one."""
    text = header.strip()[:_MAX_CHALLENGE]
    scheme, _, rest = text.partition(" ")
    if not scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*", scheme):
        return None
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None:
            break
        name, quoted, plain = match.groups()
        params[name.lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain
        position = match.end()
    return Challenge(scheme.lower(), params)


def token_lifetime(expires_in: object) -> float:
    """Seconds to keep a token whose service answered ``expires_in``: the default when absent or
    not a positive number, at most :data:`MAX_TOKEN_LIFETIME`."""
    # ``not > 0`` also catches NaN, which compares false with everything.
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or not expires_in > 0:
        return DEFAULT_TOKEN_LIFETIME
    # Capped before float(): float() of a 400-digit integer overflows; int and float compare exactly.
    return float(min(expires_in, MAX_TOKEN_LIFETIME))


def is_bearer_token(token: str) -> bool:
    """True when ``token`` may be sent as ``Authorization: Bearer <token>`` (RFC 6750 b64token)."""
    return _B64TOKEN.fullmatch(token) is not None


class TokenCache:
    """Bearer tokens by (realm, service, scope, identity) until shortly before they expire."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        """The cached token for ``key`` if it is still fresh."""
        with self._lock:
            found = self._tokens.get(key)
            if found is None:
                return None
            token, expires = found
            if self._clock() >= expires:
                del self._tokens[key]
                return None
            return token

    def put(self, key: tuple[str, str, str, str], token: str, lifetime: float) -> None:
        """Remember ``token`` for ``lifetime`` seconds (less a safety margin)."""
        usable = max(lifetime - _EXPIRY_MARGIN, lifetime / 2)
        with self._lock:
            self._tokens[key] = (token, self._clock() + usable)

    def drop(self, key: tuple[str, str, str, str]) -> None:
        """Forget the token for ``key`` (the registry refused it)."""
        with self._lock:
            self._tokens.pop(key, None)
