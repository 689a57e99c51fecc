"""``kiosk hub --workers N``: N hub processes on one listening socket, under one systemd service.

The supervisor (the service's main process) binds the socket once, then forks N workers; each opens its
own connection pool and serves the inherited socket (the kernel hands each new connection to one of
them). Systemd hears from the supervisor alone (``NotifyAccess=main``):

- ``READY=1`` once every worker has said it serves; a worker that exits before that fails the start.
- ``WATCHDOG=1`` only while every worker's event loop has pinged the supervisor within the watchdog
  timeout, so one hung worker lets systemd restart the service.
- SIGTERM (or SIGINT) is passed to every worker, which finishes its requests (uvicorn's graceful
  shutdown); whoever is still there after ``STOP_TIMEOUT_S`` is killed.
- A worker that dies once it has served is replaced by a new one: the others' requests go on meanwhile.
  More than ``MAX_RESTARTS`` deaths within ``RESTART_WINDOW_S`` is not bad luck but a fault every worker
  meets; the supervisor then stops them all and exits 1, and systemd's ``Restart=`` and start limit
  take over (logged, rate-limited, visible in ``systemctl status``).

No I/O besides the pipes and signals it owns; what a worker does is the ``work`` callable.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from core.systemd import notify, watchdog_interval_s

log = logging.getLogger("hub")

STOP_TIMEOUT_S = 10.0  # below kiosk-hub.service's TimeoutStopSec (15 s)
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
READY, PING = b"R", b"W"

# work(sock, tell, ping_every_s) serves on sock until SIGTERM and returns an exit status; tell(b"R") once
# it serves, tell(b"W") every ping_every_s seconds while its loop runs (ping_every_s None: no pings).
Work = Callable[[socket.socket, Callable[[bytes], None], float | None], int]


class WorkersFailed(Exception):
    """The workers could not start, or died too often; the message says which and how."""


@dataclass
class _Worker:
    number: int
    pid: int
    pipe: int  # read end
    ready: bool = False
    last_ping: float = field(default_factory=time.monotonic)


def _die_with_parent(parent: int) -> bool:
    """Linux: this process gets SIGTERM when the supervisor ``parent`` dies (even by SIGKILL), never
    orphaned. False when it died already, between the fork and this call: the signal will never come, so
    the worker must not start."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    return os.getppid() == parent


class Supervisor:
    def __init__(self, count: int, sock: socket.socket, work: Work):
        self.count, self.sock, self.work = count, sock, work
        self.workers: dict[int, _Worker] = {}  # by pid
        self.stopping = False
        self.deaths: deque[float] = deque()
        self.watchdog_s = watchdog_interval_s()  # half systemd's timeout, None without a watchdog
        self._wake_r, self._wake_w = os.pipe()

    # --- the workers ------------------------------------------------------------------------------------

    def _fork(self, number: int) -> None:
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(read_end)
                for w in self.workers.values():
                    os.close(w.pipe)
                os.close(self._wake_r)
                os.close(self._wake_w)
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                if not _die_with_parent(parent):
                    os._exit(1)  # the supervisor was killed before the worker could ask to follow it
                os.environ.pop("NOTIFY_SOCKET", None)  # only the supervisor talks to systemd
                os.set_blocking(write_end, False)

                def tell(message: bytes) -> None:
                    with contextlib.suppress(BlockingIOError, BrokenPipeError):
                        os.write(write_end, message)

                ping_every = self.watchdog_s / 2 if self.watchdog_s else None
                code = self.work(self.sock, tell, ping_every)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                log.exception("hub worker %d failed", number)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write_end)
        self.workers[pid] = _Worker(number, pid, read_end)
        log.info("hub worker %d started (pid %d)", number, pid)

    def _signal(self, sig: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _reap(self) -> list[tuple[_Worker, int]]:
        dead = []
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self._drain(worker)  # what it said before it died (READY)
                os.close(worker.pipe)
                dead.append((worker, status))
        return dead

    @staticmethod
    def _drain(worker: _Worker) -> None:
        with contextlib.suppress(OSError):
            while data := os.read(worker.pipe, 4096):
                worker.ready = worker.ready or READY in data

    def _read_pipes(self, readable: list[int]) -> None:
        by_pipe = {w.pipe: w for w in self.workers.values()}
        for fd in readable:
            worker = by_pipe.get(fd)
            if worker is None:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                continue
            if READY in data:
                worker.ready = True
            if data:
                worker.last_ping = time.monotonic()

    # --- the loop ---------------------------------------------------------------------------------------

    def _on_stop(self, signum, _frame) -> None:
        self.stopping = True

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT: 0 after a clean stop; WorkersFailed when they cannot be kept up."""
        previous = {
            sig: signal.signal(sig, self._on_stop if sig != signal.SIGCHLD else lambda *_: None)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
        }
        os.set_blocking(self._wake_w, False)
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        try:
            for number in range(1, self.count + 1):
                self._fork(number)
            self._supervise()
        finally:
            self._stop()
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)
        return 0

    def _supervise(self) -> None:
        announced = False
        last_watchdog = time.monotonic()
        while not self.stopping:
            pipes = [w.pipe for w in self.workers.values()]
            readable, _, _ = select.select([self._wake_r, *pipes], [], [], 0.5)
            if self._wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 512)
            self._read_pipes(readable)
            if self.stopping:
                return
            for worker, status in self._reap():
                how = _status_text(status)
                if not announced and not worker.ready:
                    raise WorkersFailed(f"hub worker {worker.number} exited before serving ({how})")
                now = time.monotonic()
                self.deaths.append(now)
                while self.deaths and self.deaths[0] < now - RESTART_WINDOW_S:
                    self.deaths.popleft()
                if len(self.deaths) > MAX_RESTARTS:
                    raise WorkersFailed(
                        f"hub workers died {len(self.deaths)} times within {RESTART_WINDOW_S:g} s "
                        f"(the last, worker {worker.number}: {how}); stopping all"
                    )
                log.warning(
                    "hub worker %d (pid %d) died (%s); starting another", worker.number, worker.pid, how
                )
                self._fork(worker.number)
            if (
                not announced
                and len(self.workers) == self.count
                and all(w.ready for w in self.workers.values())
            ):
                announced = True
                log.info("hub serving with %d workers (pids %s)", self.count, sorted(self.workers))
                notify("READY=1")
                notify(f"STATUS=serving with {self.count} workers")
            now = time.monotonic()
            if self.watchdog_s and now - last_watchdog >= self.watchdog_s:
                # the watchdog timeout is 2 × watchdog_s: a worker silent that long is hung
                if all(now - w.last_ping < 2 * self.watchdog_s for w in self.workers.values()):
                    notify("WATCHDOG=1")
                    last_watchdog = now
                else:
                    log.error("a hub worker's loop stopped answering: no watchdog ping to systemd")

    def _stop(self) -> None:
        """SIGTERM to every worker, then wait; SIGKILL to those still there after STOP_TIMEOUT_S."""
        self.stopping = True
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.workers and time.monotonic() < deadline:
            self._reap()
            if self.workers:
                select.select([self._wake_r], [], [], 0.1)
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 512)
        if self.workers:
            log.error("hub workers %s did not stop within %g s: killed", sorted(self.workers), STOP_TIMEOUT_S)
            self._signal(signal.SIGKILL)
            for pid in list(self.workers):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                os.close(self.workers.pop(pid).pipe)


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
