"""Staff card reader protocols: ``em4100`` (STX/ETX frames of 125 kHz readers) and ``line`` (text + line end).

Pure parsers: bytes and the monotonic time in, outcomes out; no I/O, no threads. ``em4100`` frames are
STX, 10 hex chars (version byte + 4 card bytes), 2 hex chars of XOR checksum, ETX (docs/hardware.md); either
hex case, an optional CR LF before ETX, resync on the next STX whatever came before. The swipe carries
the frame's 12 hex chars, which ``cardnum`` reads as exactly one card. Readers of both protocols repeat
the card while it lies on them: reads of the same card less than ``repeat_hold_s`` after its previous
read are one swipe, so a card left on the reader through a noise burst or a short replug is not swiped
again (the hold survives ``reset``).
"""

from __future__ import annotations

import math
from functools import reduce
from operator import xor

from core.cardnum import card_keys

from .events import BadFrame, CardSwiped, Outcome
from .framing import LineProtocol

STX, ETX = 0x02, 0x03
EM4100_DATA_CHARS = 10  # version byte + 4 card bytes, as hex
_FRAME_CHARS = EM4100_DATA_CHARS + 2  # + checksum
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_LINE_END = frozenset(b"\r\n")
# Readers repeat every 0.1-0.3 s while a card lies on them; taking a card away and presenting it again
# on purpose takes longer. Generous, because a false repeat signs the member out.
REPEAT_HOLD_S = 1.5


def em4100_frame(data_hex: str, *, crlf: bool = False) -> bytes:
    """The 14-byte frame (16 with ``crlf``) a reader sends for 10 hex chars of EM4100 data."""
    if len(data_hex) != EM4100_DATA_CHARS or not set(data_hex.encode()) <= _HEX:
        raise ValueError(f"EM4100 data is {EM4100_DATA_CHARS} hex characters")
    checksum = reduce(xor, bytes.fromhex(data_hex))
    return bytes([STX]) + f"{data_hex}{checksum:02X}".encode() + (b"\r\n" if crlf else b"") + bytes([ETX])


class _RepeatFilter:
    """Whether a read is a new swipe: not the same card as the previous read within the hold."""

    def __init__(self, hold_s: float):
        self._hold = hold_s
        self._last_keys: frozenset[int] = frozenset()
        self._last_seen = -math.inf

    def is_new(self, card: str, now: float) -> bool:
        keys = card_keys(card)
        repeated = keys == self._last_keys and now - self._last_seen < self._hold
        self._last_keys, self._last_seen = keys, now
        return not repeated


class Em4100Parser:
    def __init__(self, repeat_hold_s: float = REPEAT_HOLD_S):
        self._repeats = _RepeatFilter(repeat_hold_s)
        self._frame: bytearray | None = None  # None: between frames
        self._line_end_bytes = 0  # CR/LF seen after the 12 hex chars
        self._in_noise = False  # inside a run of garbage already reported

    def reset(self) -> list[Outcome]:
        """The reader (re)connected: a frame begun before it is lost; the card on it is still the same."""
        frame, self._frame, self._in_noise = self._frame, None, False
        return [BadFrame("incomplete frame dropped: device reconnected")] if frame is not None else []

    def feed(self, data: bytes, now: float) -> list[Outcome]:
        out: list[Outcome] = []
        for b in data:
            frame = self._frame
            if b == STX:
                if frame is not None:
                    out.append(BadFrame("incomplete frame"))
                self._frame, self._line_end_bytes, self._in_noise = bytearray(), 0, False
            elif frame is None:
                if b not in _LINE_END and not self._in_noise:
                    self._in_noise = True
                    out.append(BadFrame("noise between frames"))
            elif b == ETX and len(frame) == _FRAME_CHARS:
                self._frame = None
                out.extend(self._complete(frame.decode("ascii").upper(), now))
            elif b in _HEX and len(frame) < _FRAME_CHARS and not self._line_end_bytes:
                frame.append(b)
            elif b in _LINE_END and len(frame) == _FRAME_CHARS and self._line_end_bytes < 2:
                self._line_end_bytes += 1
            else:
                out.append(BadFrame("malformed frame"))
                self._frame, self._in_noise = None, True
        return out

    def _complete(self, chars: str, now: float) -> list[Outcome]:
        if not card_keys(chars):  # the 12 chars are one card exactly when the checksum holds
            return [BadFrame("checksum mismatch")]
        return [CardSwiped(chars)] if self._repeats.is_new(chars, now) else []


class CardLineParser(LineProtocol):
    """Text readers (13.56 MHz in ASCII mode and the like): one card number a line, CR, LF or CRLF."""

    def __init__(self, repeat_hold_s: float = REPEAT_HOLD_S):
        super().__init__()
        self._repeats = _RepeatFilter(repeat_hold_s)

    def parse_line(self, line: bytes, now: float) -> Outcome | None:
        text = line.decode("ascii", errors="replace").strip()
        if not card_keys(text):
            return BadFrame("not a card number")
        return CardSwiped(text) if self._repeats.is_new(text, now) else None
