"""Remote settings: the kiosk configuration keys the hub may set for a section or a device (docs/fleet.md).

One table, ``SETTINGS``: each entry names a key as it is written in kiosk.toml (``ui.thanks_s`` is
``[ui] thanks_s``; ``reasons`` is ``[[reasons]]``) and how to check a value. The hub checks a value
before it stores it (a bad one is refused with the reason) and the kiosk checks it again before it
applies it. Adding a key is one entry here (and the field in ``core.config``).

Precedence: a key written in the device's kiosk.toml is the technician's and wins; a key left out of the
file takes the hub's value; a key neither sets keeps the built-in default.

Plain Python, no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import Config
from .domain import REASON_CODE_PATTERN, Reason


class SettingError(ValueError):
    """A settings document or value that cannot be used; ``str()`` names the key and the problem."""


@dataclass(frozen=True)
class Setting:
    key: str  # as written in kiosk.toml: "section.key", or a top-level array name
    parse: Callable[[Any], Any]  # the value as the Config field holds it; SettingError (the problem) if bad
    what: str  # for the docs and the console


def _integer(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(v: object) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise SettingError(f"expected an integer, got {v!r}")
        if not lo <= v <= hi:
            raise SettingError(f"expected {lo} to {hi}, got {v}")
        return v

    return parse


def _boolean(v: object) -> bool:
    if not isinstance(v, bool):
        raise SettingError(f"expected true or false, got {v!r}")
    return v


_REASON_CODE = re.compile(REASON_CODE_PATTERN)
MAX_REASONS = 64


def _reasons(v: Any) -> tuple[Reason, ...]:
    """The same rules as ``[[reasons]]`` in kiosk.toml: at least one, codes unique, labels not blank."""
    if not isinstance(v, list) or not v:
        raise SettingError("expected a list of at least one reason")
    if len(v) > MAX_REASONS:
        raise SettingError(f"expected at most {MAX_REASONS} reasons, got {len(v)}")
    parsed = []
    for i, item in enumerate(v):
        if not isinstance(item, dict) or set(item) - {"code", "label", "group"}:
            raise SettingError(f"reason {i + 1}: expected an object with code, label and optional group")
        code, label, group = item.get("code"), item.get("label"), item.get("group", "其他")
        if not isinstance(code, str) or not _REASON_CODE.fullmatch(code):
            raise SettingError(
                f"reason {i + 1}: code: expected 1-16 characters of A-Z a-z 0-9 _, got {code!r}"
            )
        if not isinstance(label, str) or not label.strip() or len(label) > 64:
            raise SettingError(f"reason {i + 1}: label: expected 1-64 characters")
        if not isinstance(group, str) or not group.strip() or len(group) > 32:
            raise SettingError(f"reason {i + 1}: group: expected 1-32 characters")
        parsed.append(Reason(code, label, group))
    if len({r.code for r in parsed}) != len(parsed):
        raise SettingError("reason codes must be unique")
    return tuple(parsed)


# The ranges are those of core.config (tests/test_settings.py holds the two to the same answers).
SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting("reasons", _reasons, "the 差评 reasons catalogue: [{code, label, group}, …]"),
        Setting("ui.rating_timeout_s", _integer(5, 3600), "seconds the rating page waits"),
        Setting("ui.reasons_timeout_s", _integer(10, 3600), "seconds the reasons page waits"),
        Setting("ui.thanks_s", _integer(1, 60), "seconds the thanks page shows"),
        Setting("ui.walkin", _boolean, "walk-in mode: the ready page offers the rating buttons"),
        Setting(
            "ui.reasons_idle_s",
            _integer(3, 600),
            "seconds untouched after which a rate request closes the reasons page",
        ),
        Setting("ui.elderly", _boolean, "长辈模式 between visits: larger text, fewer choices, longer times"),
        Setting("voice.mute", _boolean, "no spoken prompts (the captions stay)"),
        Setting("voice.volume", _integer(0, 100), "spoken prompts' volume, percent of the recording"),
        Setting("qr.ttl_s", _integer(30, 86400), "seconds a QR code stays valid"),
    )
}


def check_settings(settings: Any) -> dict[str, Any]:
    """``settings`` (a JSON object of key → value) checked key by key; the values as sent. SettingError
    naming the first unknown key or bad value."""
    if not isinstance(settings, Mapping):
        raise SettingError("settings: expected an object of key → value")
    for key, value in settings.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise SettingError(f"{key}: unknown setting; known: {', '.join(sorted(SETTINGS))}")
        try:
            setting.parse(value)
        except SettingError as e:
            raise SettingError(f"{key}: {e}") from None
    return dict(settings)


def settings_version(settings: Mapping[str, Any]) -> str:
    """A version that changes exactly when the settings do: a digest of their canonical JSON."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Applied:
    config: Config  # the configuration with the remote values in place
    taken: tuple[str, ...]  # remote keys applied
    local: tuple[str, ...]  # remote keys that kiosk.toml sets, so kept as the file says


def apply_settings(config: Config, settings: Any) -> Applied:
    """``config`` with the remote ``settings`` applied, except keys the file sets (precedence above).
    SettingError when any value is bad: then nothing of this set applies (the caller keeps the last
    good one)."""
    check_settings(settings)
    taken, local = [], []
    for key in sorted(settings):
        if key in config.explicit_keys:
            local.append(key)
            continue
        value = SETTINGS[key].parse(settings[key])
        section, _, field = key.rpartition(".")
        if not section:
            config = dataclasses.replace(config, **{field: value})
        else:
            part = getattr(config, section)
            if part is None:  # e.g. no [qr] (no hub): nothing for the value to change
                continue
            config = dataclasses.replace(config, **{section: dataclasses.replace(part, **{field: value})})
        taken.append(key)
    return Applied(config, tuple(taken), tuple(local))
