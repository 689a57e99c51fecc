"""Line framing shared by the text protocols: bytes in, whole lines out, with a hard length cap.

Any terminator byte ends a line, so CR, LF, CRLF (and TAB where allowed) all work and the empty line
between CR and LF is simply skipped. A line longer than the cap is dropped whole: reported once when it
overflows, then everything up to its terminator is discarded, so its tail never poses as a new line.
``LineProtocol`` is the base of the line-based parsers (card ``line``, ticket feed).
"""

from __future__ import annotations

import re

from .events import BadFrame, Outcome

MAX_LINE_BYTES = 1024  # contracts.md §3
OVERLONG = None  # what feed() yields in place of a dropped overlong line


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


class LineProtocol:
    """A protocol of one message a line: subclasses say how a line ends and what a line means."""

    terminators = b"\r\n"

    def __init__(self) -> None:
        self._lines = LineSplitter(self.terminators, MAX_LINE_BYTES)

    def parse_line(self, line: bytes) -> Outcome | None:
        """What one non-empty line means; None for a line that means nothing (only blanks)."""
        raise NotImplementedError

    def feed(self, data: bytes, now: float) -> list[Outcome]:
        out: list[Outcome] = []
        for line in self._lines.feed(data):
            outcome = (
                BadFrame(f"line over {MAX_LINE_BYTES} bytes") if line is OVERLONG else self.parse_line(line)
            )
            if outcome is not None:
                out.append(outcome)
        return out
