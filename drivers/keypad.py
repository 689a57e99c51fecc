"""The rating keypad protocol (docs/hardware.md): one ASCII digit 1-5 a key press, answers written back.

Pure parser: bytes and the monotonic time in, key presses out. Line ends after a digit are ignored. A
mechanical key that bounces sends its digit again within milliseconds; the same digit closer than
``bounce_s`` to the previous one is the same press.
"""

from __future__ import annotations

import math

from .events import BadFrame, KeyPressed, Outcome

BOUNCE_S = 0.15  # contact bounce lasts well under this; nobody re-presses a key this fast on purpose
_DIGITS = {ord(str(d)): d for d in range(1, 6)}
_IGNORED = frozenset(b"\r\n ")


def answer(satisfaction: int | None) -> bytes:
    """``OK<digit>\\r\\n`` once a rating is durably stored, ``NO\\r\\n`` when it cannot be taken."""
    if satisfaction is None:
        return b"NO\r\n"
    if satisfaction not in _DIGITS.values():
        raise ValueError(f"satisfaction must be 1-5, got {satisfaction!r}")
    return f"OK{satisfaction}\r\n".encode()


class KeypadParser:
    def __init__(self, bounce_s: float = BOUNCE_S):
        self._bounce_s = bounce_s
        self._last_digit: int | None = None
        self._last_at = -math.inf
        self._in_noise = False

    def reset(self) -> list[Outcome]:
        """The keypad (re)connected: a key is one byte, so nothing half-received can be lost."""
        self._in_noise = False
        return []

    def feed(self, data: bytes, now: float) -> list[Outcome]:
        out: list[Outcome] = []
        for b in data:
            digit = _DIGITS.get(b)
            if digit is None:
                if b not in _IGNORED and not self._in_noise:
                    self._in_noise = True
                    out.append(BadFrame("not a key 1-5"))
                continue
            self._in_noise = False
            bounced = digit == self._last_digit and now - self._last_at < self._bounce_s
            self._last_digit, self._last_at = digit, now
            if not bounced:
                out.append(KeyPressed(digit))
        return out
