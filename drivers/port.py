"""A serial port that stays open: absent devices, unplugs, EIO and "returned no data" never reach the caller.

One thread per port opens the configured path or pyserial URL (``/dev/…``, ``/dev/serial/by-id/…``,
``loop://``, ``socket://``), locking real ttys against a second user, tells ``on_connect`` each time it
has opened it (so a parser forgets what it half received before) and hands every chunk it reads to
``on_data``. When the device is missing or goes away it retries with capped exponential backoff, so it
is back within ``BACKOFF_CAP_S`` plus the open time of the device reappearing; any other failure, even
an unexpected exception, is an ``error`` state that is logged once and retried the same way. State,
detail text and a reconnect count are kept for the admin panel and ``kiosk doctor``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
from collections.abc import Callable

import serial

log = logging.getLogger(__name__)

CONNECTED, WAITING, ERROR = "connected", "waiting", "error"
BACKOFF_START_S = 0.05
BACKOFF_CAP_S = 1.0  # keeps reconnection within 2 s of a device coming back
READ_TIMEOUT_S = 0.2  # how long a read may block before the thread looks at its stop flag
WRITE_TIMEOUT_S = 0.2  # a device that stops taking bytes must not freeze the caller (the UI thread)
STOP_TIMEOUT_S = 5.0  # how long stop() waits for the reader (blocked at most in a handler, or a read)
_ABSENT = (errno.ENOENT, errno.ENODEV, errno.ENXIO)


def _describe(e: Exception) -> tuple[str, str]:
    """(state, detail) for a failure to open: an absent device is waited for, anything else is an error."""
    code = getattr(e, "errno", None)
    if code in _ABSENT:
        return WAITING, "device not present"
    if code == errno.EACCES:
        return ERROR, "permission denied (is the kiosk user in the dialout group?)"
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
        return ERROR, "in use by another program"
    return ERROR, str(e) or type(e).__name__


def _refuse_if_locked(path: str) -> None:
    """Raise "in use" when another program holds the tty's lock, without opening it through pyserial: its
    open flushes the input queue, which would eat bytes the holder has not read yet."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        # Shared: enough to collide with a holder's exclusive lock, invisible to other shared probes.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise serial.SerialException(errno.EBUSY, "in use by another program") from None
    finally:
        os.close(fd)  # releases the probe's lock


def _open(url: str, baudrate: int) -> serial.SerialBase:
    ser = serial.serial_for_url(
        url, baudrate=baudrate, timeout=READ_TIMEOUT_S, write_timeout=WRITE_TIMEOUT_S, do_not_open=True
    )
    tty = isinstance(ser, serial.Serial)  # a real tty; URL transports (loop://, socket://) have no lock
    if tty:
        _refuse_if_locked(ser.port)
    ser.open()
    if tty:
        # Locked once open has flushed the input (pyserial's exclusive=True locks before that), so a lock
        # seen from outside means the port is reading: the simulator's is_open relies on it.
        try:
            fcntl.flock(ser.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another program took it in the meantime
            ser.close()
            raise serial.SerialException(errno.EBUSY, "in use by another program") from None
    return ser


class Port:
    def __init__(
        self,
        name: str,
        url: str,
        baudrate: int,
        on_data: Callable[[bytes], None],
        on_connect: Callable[[], None] = lambda: None,
    ):
        self.name, self.url, self.baudrate = name, url, baudrate
        self._on_data, self._on_connect = on_data, on_connect
        self._serial: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.state, self.detail = WAITING, "not started"
        self.reconnects = 0
        self._connected_before = False

    def start(self) -> None:
        """Start reading; a no-op while running. Refused (``error`` state) while the reader of a previous
        ``stop`` is still busy: two readers on one port would share a parser."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            if self._stopping.is_set():
                self._set(ERROR, "the previous reader has not stopped yet")
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        ser = self._serial
        if ser is not None and hasattr(ser, "cancel_read"):
            with contextlib.suppress(OSError):  # closed meanwhile: the thread is leaving anyway
                ser.cancel_read()  # wake a blocked read now rather than at its timeout
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)
            if self._thread.is_alive():  # kept, so start() knows it is still there
                log.error("%s: the reader did not stop within %.0f s", self.name, STOP_TIMEOUT_S)

    def write(self, data: bytes) -> bool:
        """Send ``data`` whole; False (and logged) when the device is not connected or the write fails."""
        with self._write_lock:
            ser = self._serial
            if ser is None:
                log.warning("%s: not connected, %d bytes not sent", self.name, len(data))
                return False
            try:
                ser.write(data)
            except (serial.SerialException, OSError) as e:
                log.warning("%s: write failed: %s", self.name, e)
                return False
        return True

    def _run(self) -> None:
        delay = BACKOFF_START_S
        while not self._stopping.is_set():
            try:
                ser = self._try_open()
                if ser is not None:
                    delay = BACKOFF_START_S
                    self._serve(ser)
                    continue
            except Exception as e:  # a bug or a driver surprise: report it, never let the thread die
                self._set(ERROR, f"unexpected error: {type(e).__name__}: {e}", exc_info=True)
            self._stopping.wait(delay)
            delay = min(delay * 2, BACKOFF_CAP_S)
        self.state, self.detail = WAITING, "stopped"

    def _serve(self, ser: serial.SerialBase) -> None:
        """Read ``ser`` until it is lost or the port stops, then let it go."""
        try:
            try:
                self._on_connect()
            except Exception:
                log.exception("%s: connect handler failed; the port keeps running", self.name)
            self._pump(ser)
        finally:
            with self._write_lock:
                self._serial = None
            with contextlib.suppress(Exception):  # gone already: nothing to release
                ser.close()

    def _set(self, state: str, detail: str, *, exc_info: bool = False) -> None:
        """Record a failure, logging it when it differs from the last one (retries repeat it)."""
        if (state, detail) != (self.state, self.detail):
            level = logging.INFO if state == WAITING else logging.ERROR if exc_info else logging.WARNING
            log.log(level, "%s: %s: %s", self.name, self.url, detail, exc_info=exc_info)
        self.state, self.detail = state, detail

    def _try_open(self) -> serial.SerialBase | None:
        try:
            ser = _open(self.url, self.baudrate)
        except (serial.SerialException, OSError, ValueError) as e:
            self._set(*_describe(e))
            return None
        with self._write_lock:
            self._serial = ser
        if self._connected_before:
            self.reconnects += 1
        self._connected_before = True
        self.state, self.detail = CONNECTED, ""
        log.info("%s: connected on %s", self.name, self.url)
        return ser

    def _pump(self, ser: serial.SerialBase) -> None:
        while not self._stopping.is_set():
            try:
                data = ser.read(1)
                if data and ser.in_waiting:
                    data += ser.read(ser.in_waiting)
            except (serial.SerialException, OSError) as e:
                # Unplugged: EIO, or "device reports readiness to read but returned no data".
                self.state, self.detail = WAITING, f"device lost: {e}"
                log.warning("%s: device lost, waiting for it to come back", self.name)
                return
            if data:
                try:
                    self._on_data(data)
                except Exception:
                    log.exception("%s: handler failed; the port keeps running", self.name)
