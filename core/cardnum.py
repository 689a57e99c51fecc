"""Card numbers in every form readers print them, reduced to comparable 32-bit keys.

The same card reads differently by reader and setting (docs/hardware.md): 10-hex EM4100 data ``13005D1DA5``
(a version byte, then the card), an 8-hex UID ``26DEFAE7`` or its byte-reversed ``E7FADE26``, a
10-digit decimal of either byte order ``0652147431`` / ``3891977766``, or the 8H10D style ``093,07589``
(the low 24 bits as facility,number). A roster entry written in any form matches a swipe read in any
other when their key sets intersect. This is the one place card numbers are normalised.

Ten digits are a decimal number, never EM data, unless they exceed 32 bits: read both ways, roster
``0006102437`` would also match the unrelated card 0x06102437. An ``em4100`` reader's swipe is the 12 hex
characters of its frame, EM data and checksum (``13005D1DA5F6``): exactly one card, whatever its digits.
"""

from __future__ import annotations

import re
from functools import reduce
from operator import xor

_EM_FRAME = re.compile(r"[0-9A-F]{12}")
_HEX10 = re.compile(r"[0-9A-F]{10}")
_HEX8 = re.compile(r"[0-9A-F]{8}")
_DEC10 = re.compile(r"[0-9]{10}")
_H8D10 = re.compile(r"([0-9]{3}),([0-9]{5})")

_U32 = 1 << 32


def _reversed_bytes(value: int) -> int:
    return int.from_bytes(value.to_bytes(4, "big"), "little")


def _both_orders(value: int) -> set[int]:
    return {value, _reversed_bytes(value)}


def _h8d10(text: str) -> int | None:
    """The low 24 bits that ``ddd,ddddd`` denotes, or None when the parts are out of range."""
    m = _H8D10.fullmatch(text)
    if not m:
        return None
    facility, number = int(m.group(1)), int(m.group(2))
    return facility << 16 | number if facility < 256 and number < 65536 else None


def _decimal(text: str) -> int | None:
    return int(text) if _DEC10.fullmatch(text) and int(text) < _U32 else None


def _em_frame(text: str) -> int | None:
    """The card of an em4100 frame's 12 hex chars (data, then the XOR of its bytes), None when no such frame."""
    if not _EM_FRAME.fullmatch(text):
        return None
    raw = bytes.fromhex(text)
    return int.from_bytes(raw[1:5], "big") if reduce(xor, raw[:5]) == raw[5] else None


def card_keys(text: str) -> frozenset[int]:
    """The 32-bit card numbers ``text`` may denote, in every accepted form: 10-hex EM4100 data (last 8
    hex = card), 8-hex UID (both byte orders), 10-digit decimal (both byte orders), 8H10D "093,07589".
    Empty for text that is no card number. A roster entry matches a swipe when their keys intersect.
    Also the 12 hex chars of an em4100 frame (an em4100 swipe): exactly its card. Ten digits that fit in
    32 bits are decimal only."""
    t = text.strip().upper()
    exact = _em_frame(t)
    if exact is None and _HEX10.fullmatch(t) and _decimal(t) is None:
        exact = int(t[2:], 16)
    if exact is not None:
        return frozenset({exact})
    if _HEX8.fullmatch(t):
        return frozenset(_both_orders(int(t, 16)))
    decimal = _decimal(t)
    if decimal is not None:
        return frozenset(_both_orders(decimal))
    low24 = _h8d10(t)
    if low24 is not None:
        # 8H10D drops the top byte, so it stands for any card that agrees on the low 24 bits.
        return frozenset(top << 24 | low24 for top in range(256))
    return frozenset()


def card_number(text: str) -> int | None:
    """The one number a person most likely means by ``text`` (the simulator builds frames from it): the
    card of an em4100 frame or EM data, 8-hex UID as written, 10 digits as decimal, or 8H10D's 24 bits."""
    t = text.strip().upper()
    exact = _em_frame(t)
    if exact is not None:
        return exact
    if _HEX10.fullmatch(t) and _decimal(t) is None:
        return int(t[2:], 16)
    if _HEX8.fullmatch(t):
        return int(t, 16)
    decimal = _decimal(t)
    return decimal if decimal is not None else _h8d10(t)
