"""Keys gate keeps in its data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gate._files import FileTooLarge, NotRegularFile, read_regular
from gate.errors import ConfigError

KEY_BYTES = 32
# A key file holds KEY_BYTES (or a few more); anything near this is not one.
_MOST_BYTES = 64 * 1024


def load_or_create_key(path: Path, setting: str) -> bytes:
    """Return the key in ``path``, creating a random one (mode 0600) if the file does not exist.

    Replicas that share a database must share this key (mount the same file):
    fingerprints of secrets are keyed hashes, and a different key makes the
    same secret look like a new finding.

    Raises:
        ConfigError: naming ``setting`` when the file is unreadable or too short.
    """
    try:
        data = read_regular(path, _MOST_BYTES)
    except (NotRegularFile, FileTooLarge) as exc:
        raise ConfigError(setting, "", f"{path}: {exc}") from None
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        try:
            # O_EXCL: when two processes start at once, one creates and both use its key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path, setting)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key
    except OSError as exc:
        raise ConfigError(setting, "", f"cannot read {path}: {exc.strerror}") from None
    if len(data) < KEY_BYTES:
        raise ConfigError(setting, "", f"{path}: expected at least {KEY_BYTES} bytes of key, got {len(data)}")
    return data
