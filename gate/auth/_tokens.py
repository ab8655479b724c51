"""Static bearer tokens: a YAML file of token hashes, never the tokens themselves."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gate._files import FileIdentity, file_identity
from gate.auth._identity import Identity
from gate.config import MAX_FILE_BYTES, Role, read_yaml_file
from gate.errors import ConfigError

log = logging.getLogger("gate.auth")

# A tokens file lists at most a few thousand entries; anything larger is a mistake.
MAX_TOKENS_FILE_BYTES = MAX_FILE_BYTES
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def hash_token(token: str) -> str:
    """The key a token is listed under in a tokens file: its SHA-256, lowercase hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: Annotated[str, Field(min_length=1, max_length=253)]
    roles: Annotated[tuple[Role, ...], Field(min_length=1)]
    projects: tuple[str, ...] = ()


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: dict[str, _Entry] = Field(default_factory=dict)


def load_tokens(path: Path) -> Mapping[str, Identity]:
    """Read a tokens file: ``tokens: {<sha256 hex>: {identity, roles, projects}}``.

    Returns:
        token hash -> identity (named ``token:<identity>``).

    Raises:
        ConfigError: the file is missing, too large, not YAML, or an entry is malformed.
    """
    source = str(path)
    # Read as the configuration is: a FIFO or device named here blocked the server's start, and
    # plain safe_load let alias bombs, deep nesting and repeated keys through.
    tree = read_yaml_file(path)
    entries = tree.get("tokens")
    for digest in entries if isinstance(entries, dict) else ():
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            # Shown truncated: a clear token pasted by mistake must not land in a log whole.
            raise ConfigError(
                source, f"tokens.{str(digest)[:8]}...", "expected the SHA-256 of the token (64 lowercase hex)"
            )
    try:
        parsed = _File.model_validate(tree)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part)[:12] for part in error["loc"])
        raise ConfigError(source, key, str(error["msg"])) from None
    return {
        digest: Identity.of(f"token:{entry.identity}", entry.roles, entry.projects)
        for digest, entry in parsed.tokens.items()
    }


class ReloadingTokens(Mapping[str, Identity]):
    """A tokens file that follows its changes (a Secret volume update, a rotated token).

    The file's identity (inode, size, mtime) is looked at no more than once per
    ``interval`` seconds on lookup; when it changed the file is read again. A change
    that does not load keeps the tokens in force and logs why (as a bad policy file
    keeps the previous bundle), so a half-written file never locks every caller out.
    A removed token stops authenticating within ``interval`` seconds of the new file.

    Raises:
        ConfigError: (constructor) the file does not load at start.
    """

    def __init__(
        self, path: Path, *, interval: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = path
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = _stamp(path)
        self._tokens = load_tokens(path)
        self._checked = clock()

    def _current(self) -> Mapping[str, Identity]:
        now = self._clock()
        if now - self._checked < self._interval:
            return self._tokens
        with self._lock:
            if now - self._checked < self._interval:
                return self._tokens
            self._checked = now
            stamp = _stamp(self._path)
            if stamp != self._stamp:
                try:
                    self._tokens = load_tokens(self._path)
                except ConfigError as error:
                    log.error(
                        "the tokens file changed but does not load; the previous tokens stay: %s",
                        error.message,
                    )
                else:
                    log.info("tokens file %s reloaded: %d tokens", self._path, len(self._tokens))
                # Also after a failure: the same broken file is not read again at every lookup.
                self._stamp = stamp
            return self._tokens

    def __getitem__(self, digest: str) -> Identity:
        return self._current()[digest]

    def get(self, digest: str, default: Identity | None = None) -> Identity | None:  # type: ignore[override]
        return self._current().get(digest, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


def _stamp(path: Path) -> FileIdentity | None:
    try:
        return file_identity(path)
    except OSError:
        return None
