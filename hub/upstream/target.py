"""The ``[upstream]`` section made usable: the profile, the key read from its file and the signer,
checked when the configuration is loaded so a mistake stops the hub at start with one line naming the
file and the key (exit 2), never at the first send."""

from __future__ import annotations

from pathlib import Path

from core.tomlconfig import ConfigError

from .profiles import PROFILES
from .sender import DEFAULT_TIMEOUT_S, Target
from .signing import SigningKeyError, make_signer, parse_hex_key


def read_key(config_path: Path, key_file: Path) -> bytes:
    try:
        text = key_file.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(config_path, "[upstream] key_file", f"{key_file}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "not ASCII text"
        raise ConfigError(config_path, "[upstream] key_file", f"{key_file}: cannot read: {why}") from None
    try:
        return parse_hex_key(text)
    except ValueError:
        raise ConfigError(
            config_path, "[upstream] key_file", f"{key_file}: expected the key as hex"
        ) from None


def make_target(
    config_path: Path,
    profile: str,
    url: str,
    app: str,
    key_file: Path,
    signature: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Target:
    """The checked target; ConfigError naming ``[upstream] KEY`` for each kind of mistake."""
    chosen = PROFILES.get(profile)
    if chosen is None:
        raise ConfigError(config_path, "[upstream] profile", f"expected one of {', '.join(PROFILES)}")
    algorithm = signature or chosen.default_signature
    if algorithm not in chosen.signatures:
        raise ConfigError(
            config_path, "[upstream] signature", f"{profile} signs with {' or '.join(chosen.signatures)}"
        )
    key = read_key(config_path, key_file)
    try:
        signer = make_signer(algorithm, key)
    except SigningKeyError as e:
        raise ConfigError(config_path, "[upstream] key_file", f"{key_file}: {e}") from None
    return Target(chosen, url, app, signer, timeout_s)
