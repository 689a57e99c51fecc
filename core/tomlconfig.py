"""Reading a TOML configuration file into checked values: the rules the terminal's file (``core.config``)
and the hub's file (``hub.config``) share. Every problem is one ConfigError naming the file and the key;
the command line turns it into one message and exit status 2.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is the whole message for the technician."""

    def __init__(self, path: Path | str, key: str | None, problem: str):
        self.path = Path(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + problem)


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; ConfigError for a missing, unreadable or malformed one."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, None, f"TOML syntax error: {e}") from None


REQUIRED = object()


class Section:
    """Reads one table, checking each key's type and rejecting keys nobody asked for."""

    def __init__(self, path: Path, name: str, data: Any):
        self.path, self.name = path, name
        if not isinstance(data, dict):
            raise ConfigError(path, f"[{name}]", "expected a table")
        self.data = data
        self.seen: set[str] = set()

    def key(self, key: str) -> str:
        return f"[{self.name}] {key}"

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = REQUIRED,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is REQUIRED:
                raise ConfigError(self.path, self.key(key), "required key is missing")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are not integers here, whatever Python thinks.
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(_TYPE_NAMES[k] for k in kinds)
            raise ConfigError(self.path, self.key(key), f"expected {names}, got {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(self.path, self.key(key), problem)
        return value

    @overload
    def path_value(self, key: str) -> Path: ...
    @overload
    def path_value(self, key: str, default: str) -> Path: ...
    @overload
    def path_value(self, key: str, default: None) -> Path | None: ...
    def path_value(self, key: str, default: object = REQUIRED) -> Path | None:
        value = self.get(key, str, default, check=lambda v: "expected a non-empty path" if not v else None)
        if value is None or isinstance(value, Path):
            return value
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            if not self.name and isinstance(self.data[unknown[0]], dict):  # [hubb]: a section, not a key
                raise ConfigError(self.path, f"[{unknown[0]}]", "unknown section")
            raise ConfigError(self.path, self.key(unknown[0]), "unknown key")


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    float: "a number",
    list: "a list",
    dict: "a table",
}


def pattern(pattern: str, what: str) -> Callable[[str], str | None]:
    rx = re.compile(pattern)
    return lambda v: None if rx.fullmatch(v) else f"expected {what}, got {v!r}"


def one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda v: None if v in choices else f"expected one of {', '.join(choices)}, got {v!r}"


def int_range(lo: int, hi: int) -> Callable[[int], str | None]:
    return lambda v: None if lo <= v <= hi else f"expected {lo} to {hi}, got {v}"


def http_url(v: str) -> str | None:
    return None if re.match(r"https?://[^\s/]+", v) else f"expected an http:// or https:// URL, got {v!r}"
