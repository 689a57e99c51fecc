"""Secret rotation: the device secret in ``[hub] secret_file``, read again when the file changes, so a
secret rotated with ``kiosk hub device add`` is taken without restarting the agent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.config import ConfigError, file_stamp, read_device_secret

from .client import HubClient, HubRefused

logger = logging.getLogger("sync")

T = TypeVar("T")


class SecretFile:
    """The device secret file and the secret read from it."""

    def __init__(self, config_path: Path, path: Path):
        self.config_path, self.path = config_path, path
        self._stamp = file_stamp(path)
        self.secret = read_device_secret(config_path, path)  # ConfigError at start: the agent cannot run

    def changed(self) -> bool:
        """Whether the file looks rewritten since it was last read (mtime, size or inode)."""
        return file_stamp(self.path) != self._stamp

    def reload(self) -> bool:
        """Read the file again; True if it now holds another secret. A file that cannot be used (being
        rewritten, or emptied) keeps the secret in use, and is read again at the next change."""
        self._stamp = file_stamp(self.path)
        try:
            secret = read_device_secret(self.config_path, self.path)
        except ConfigError as e:
            logger.warning("device secret not reloaded, the one in use stays: %s", e)
            return False
        if secret == self.secret:
            return False
        self.secret = secret
        logger.info("device secret in %s changed: signing with the new one", self.path)
        return True


class Signer:
    """Every request of the agent goes through ``signed``: it signs with the secret now in the file."""

    def __init__(self, client: HubClient, secret_file: SecretFile | None):
        self.client, self.secret_file = client, secret_file  # secret_file None: the secret is fixed

    def changed(self) -> bool:
        return self.secret_file is not None and self.secret_file.changed()

    def reload(self) -> bool:
        """Sign with the secret now in the secret file; True if it is another than before."""
        if self.secret_file is None or not self.secret_file.reload():
            return False
        self.client.secret = self.secret_file.secret
        return True

    def signed(self, request: Callable[[], T]) -> T:
        """``request`` signed with the secret now in the secret file; after a 401, once more if the file
        holds another secret than the one refused (rewritten with its size and times kept)."""
        if self.changed():
            self.reload()
        try:
            return request()
        except HubRefused as e:
            if e.status != 401 or not self.reload():
                raise
        return request()

    def refusal(self, refused: HubRefused) -> str:
        """The status text of a refusal, naming what to check."""
        if refused.status != 401:
            return f"the hub refuses this device: {refused}"
        key = self.secret_file.path if self.secret_file is not None else "the device secret"
        device = self.client.device_id
        return (
            f"the hub refuses this device's signature: check {key} against `kiosk hub device add {device}` "
            f"on the hub's own data folder or database (a hub started from another folder has another, "
            f"empty registry) ({refused})"
        )
