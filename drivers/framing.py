"""Line framing shared by the text protocols: bytes in, whole lines out, with a hard length cap.

Any terminator byte ends a line, so CR, LF, CRLF (and TAB where allowed) all work and the empty line
between CR and LF is simply skipped. A line longer than the cap is dropped whole: reported once when it
overflows, then everything up to its terminator is discarded, so its tail never poses as a new line.
``LineProtocol`` is the base of the line-based parsers (card ``line``, ticket feed). A half-received line
is never glued to what comes next: it is dropped (and reported) when the device reconnects (``reset``)
or when the line stalls for ``PARTIAL_LINE_SILENCE_S``: devices send a line in one burst.
"""

from __future__ import annotations

import math
import re

from .events import BadFrame, Outcome

MAX_LINE_BYTES = 1024  # docs/hardware.md
OVERLONG = None  # what feed() yields in place of a dropped overlong line
# Scanners and queue systems send a line in one burst (1024 bytes take 1.07 s at 9600 baud, without gaps);
# a pause this long inside a line means its sender gave up, was reset or was unplugged.
PARTIAL_LINE_SILENCE_S = 1.0


class LineSplitter:
    def __init__(self, terminators: bytes, max_bytes: int = MAX_LINE_BYTES):
        self._split = re.compile(b"[" + re.escape(terminators) + b"]").split
        self._max = max_bytes
        self._line = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[bytes | None]:
        """The lines ``data`` completes, in order; ``OVERLONG`` marks each line dropped for its length."""
        out: list[bytes | None] = []
        pieces = self._split(data)
        for i, piece in enumerate(pieces):
            if not self._overlong:
                if len(self._line) + len(piece) > self._max:
                    self._overlong = True
                    self._line.clear()
                    out.append(OVERLONG)
                else:
                    self._line += piece
            if i < len(pieces) - 1:  # a terminator followed this piece
                if self._line:
                    out.append(bytes(self._line))
                self._line.clear()
                self._overlong = False
        return out

    def drop_partial(self) -> bool:
        """Forget the line received so far; whether there was one (an overlong one is reported already)."""
        had = bool(self._line)
        self._line.clear()
        self._overlong = False
        return had


class LineProtocol:
    """A protocol of one message a line: subclasses say how a line ends and what a line means."""

    terminators = b"\r\n"

    def __init__(self) -> None:
        self._lines = LineSplitter(self.terminators, MAX_LINE_BYTES)
        self._last_data_at = -math.inf

    def parse_line(self, line: bytes, now: float) -> Outcome | None:
        """What one non-empty line received at ``now`` means; None for a line that means nothing (only
        blanks, a repeat)."""
        raise NotImplementedError

    def reset(self) -> list[Outcome]:
        """The device (re)connected: a line begun before belongs to no line that follows."""
        return [BadFrame("incomplete line dropped: device reconnected")] if self._lines.drop_partial() else []

    def feed(self, data: bytes, now: float) -> list[Outcome]:
        out: list[Outcome] = []
        if data:
            stalled = now - self._last_data_at >= PARTIAL_LINE_SILENCE_S
            if stalled and self._lines.drop_partial():
                out.append(BadFrame("incomplete line dropped after silence"))
            self._last_data_at = now
        for line in self._lines.feed(data):
            outcome = (
                BadFrame(f"line over {MAX_LINE_BYTES} bytes")
                if line is OVERLONG
                else self.parse_line(line, now)
            )
            if outcome is not None:
                out.append(outcome)
        return out
