"""Progress of long work on a terminal (tqdm), and silence everywhere else.

A command wraps its long work in ``with task("what", unit="events"):``; the code doing the work calls
``advance(n)`` as it goes and ``set_total(n)`` once it knows how much there is, without knowing whether
anyone watches: with no task open (the hub serving, the agent's loop, a test) both are no-ops costing a
context-variable read. The bar is drawn on stderr only when stderr is a terminal, so systemd's journal,
CI logs and pipes get nothing; stdout (what a command prints for scripts) is never touched.

Both halves use it (``kiosk sync --once`` on a terminal, ``kiosk hub verify`` and friends on a hub), so
tqdm is in both the ``terminal`` and the ``hub`` extras and imported only when a bar is drawn.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO


class _Task:
    """The bar is made on the first report (a task that never reports draws nothing)."""

    def __init__(self, what: str, total: int | None, unit: str, drawn: bool) -> None:
        self.what, self.total, self.unit, self.drawn = what, total, unit, drawn
        self.bar: Any = None
        self.done = 0

    def _bar(self) -> Any:
        if self.bar is None and self.drawn:
            from tqdm import tqdm

            columns = _columns()
            self.bar = tqdm(
                total=self.total,
                desc=self.what,
                unit=f" {self.unit}",
                file=sys.stderr,
                # follow the terminal's width; a terminal that reports none (0: a serial console) gets 80
                dynamic_ncols=columns > 0,
                ncols=None if columns > 0 else 80,
                mininterval=0.2,
                leave=True,
            )
        return self.bar

    def advance(self, n: int) -> None:
        self.done += n
        bar = self._bar()
        if bar is not None:
            bar.update(n)

    def set_total(self, total: int | None) -> None:
        self.total = total
        bar = self._bar()
        if bar is not None:
            bar.total = total
            bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


_current: ContextVar[_Task | None] = ContextVar("kiosk_progress", default=None)


def shown(stream: TextIO | None = None) -> bool:
    """Whether a bar would be drawn: ``stream`` (stderr) is a terminal."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


@contextmanager
def task(what: str, *, total: int | None = None, unit: str = "it") -> Iterator[_Task]:
    """Long work named ``what``: a bar on stderr from its first report on, when stderr is a terminal."""
    work = _Task(what, total, unit, shown())
    token = _current.set(work)
    try:
        yield work
    finally:
        _current.reset(token)
        work.close()


def advance(n: int = 1) -> None:
    """``n`` more units of the open task done (nothing when none is open)."""
    work = _current.get()
    if work is not None:
        work.advance(n)


def set_total(total: int | None) -> None:
    """How many units the open task has in all, once known (nothing when none is open)."""
    work = _current.get()
    if work is not None:
        work.set_total(total)
