"""The key files the kiosk reads at start: the device secret (QR tokens) and the hub's public key
(sealing the citizen's phone number). Each is optional: without it that feature is off, and logged."""

from __future__ import annotations

import logging

from nacl.public import PublicKey

from core import contact
from core.config import Config, ConfigError, read_device_secret

log = logging.getLogger(__name__)


def read_secret(config: Config) -> bytes | None:
    """The device secret for QR tokens, or None (no QR code) when there is none to read."""
    if config.hub is None or config.qr is None:
        return None
    try:
        return read_device_secret(config.path, config.hub.secret_file)
    except ConfigError as e:
        # Absent is a setup not finished yet; present but unusable is a mistake.
        level = logging.ERROR if config.hub.secret_file.exists() else logging.WARNING
        log.log(level, "%s: the rate page shows no QR code", e)
        return None


def read_public_key(config: Config) -> PublicKey | None:
    if config.hub is None or config.hub.public_key_file is None:
        return None
    try:
        return contact.load_public_key(config.hub.public_key_file)
    except (OSError, contact.ContactError) as e:
        log.error("cannot use the hub public key (%s): the reasons page offers no phone number", e)
        return None
