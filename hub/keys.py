"""The private key that opens sealed rater contacts: kept in its own 0600 file, never in the database.

Made on first use; a hub from before the key file kept it in the ``meta`` table, and ``HubStore`` moves
it out on start.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from nacl.public import PrivateKey

log = logging.getLogger("hub")

KEY_FILE = "contact.key"


class KeyFileError(Exception):
    """The contact key file cannot be read, made or trusted; the message names it."""


def key_file_path(data: str | Path | None, key_file: str | Path | None) -> Path:
    """``--key-file PATH`` as given, else contact.key in ``--data DIR`` (default ./hub-data)."""
    return Path(key_file) if key_file else Path(data or "hub-data").absolute() / KEY_FILE


def read_key_file(path: Path) -> PrivateKey | None:
    """The key in ``path``; None if there is no such file."""
    try:
        text = path.read_text(encoding="ascii")
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise KeyFileError(f"{path}: cannot read the contact key: {e}") from None
    if mode & 0o077:
        log.warning("%s can be read by others than the hub's user: chmod 600 it", path)
    try:
        return PrivateKey(bytes.fromhex(text.strip()))
    except ValueError:
        raise KeyFileError(f"{path}: expected the contact key as 64 hex digits") from None


def create_key_file(path: Path, key: PrivateKey | None) -> PrivateKey:
    """Write ``key`` (a new one if None) to ``path``, mode 0600; the key of whoever wrote it first."""
    key = key or PrivateKey.generate()
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(bytes(key).hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)  # complete or absent, and never replaces a key that exists
        except FileExistsError:  # another hub process made it first
            return read_key_file(path) or key
        finally:
            temporary.unlink()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot write the contact key: {e.strerror}") from None
    return key
