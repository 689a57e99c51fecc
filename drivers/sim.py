"""Simulated card reader, ticket feed and keypad on pseudo-terminals; also the ``kiosk sim`` command.

Each device is a pty pair: the kiosk opens the slave through a stable symlink (``folder/card`` …,
like a udev ``SYMLINK+=``), the simulator writes what the device would send on the master and reads the
keypad answers back from it. ``unplug`` closes the pair and removes the symlink, as when a USB adapter
is pulled; ``replug`` opens a new pair (the kernel may give it another ``/dev/pts/N``) and re-points
the symlink. The demo and the tests use ``Simulator`` directly; ``main`` drives it from stdin for
technicians.
"""

from __future__ import annotations

import csv
import fcntl
import inspect
import json
import os
import random
import select
import shlex
import shutil
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from core.cardnum import card_keys, card_number
from core.config import ConfigError

from .card import EM4100_DATA_CHARS, REPEAT_HOLD_S, em4100_frame
from .devices import DEVICE_NAMES
from .keypad import BOUNCE_S
from .ticket import ENCODINGS

ANSWER_POLL_S = 0.05  # how often `kiosk sim` looks for keypad answers to print
# A device whose port nobody reads fills the pty buffer; give a reading port this long to make room.
SEND_TIMEOUT_S = 1.0
# How much longer than the drivers' hold a person takes to present the same card again; also covers a
# reader thread that took the previous read late.
REPRESENT_MARGIN_S = 0.5


def wait_until(condition: Callable[[], object], timeout_s: float = 5.0, what: str = "a condition") -> None:
    """Poll ``condition`` until it is true, for scripts and tests driving the simulator (the kiosk reacts
    on its own threads); TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


def em4100_data(card: str) -> str:
    """The 10 hex chars of EM4100 data a reader would send for ``card`` in any accepted form."""
    text = card.strip().upper()
    if len(text) == EM4100_DATA_CHARS and not text.isdigit() and card_keys(text):
        return text  # already EM data, version byte included
    number = card_number(text)
    if number is None:
        raise ValueError("not a card number")
    return f"00{number:08X}"


class Simulator:
    def __init__(
        self, folder: Path | None = None, *, card_protocol: str = "em4100", ticket_encoding: str = "utf-8"
    ):
        if ticket_encoding not in ENCODINGS:
            raise ValueError(f"ticket_encoding must be one of {ENCODINGS}")
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="kiosk-sim-")) if folder is None else Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.card_protocol = card_protocol
        self.ticket_encoding = ticket_encoding
        self.paths: dict[str, str] = {name: str(self.folder / name) for name in DEVICE_NAMES}
        self._lock = threading.Lock()  # plug state and fds: the CLI reads answers on another thread
        self._ptys: dict[str, tuple[int, int] | None] = dict.fromkeys(DEVICE_NAMES)
        self._answers = bytearray()
        self._last_input: dict[tuple[str, object], float] = {}  # (device, what) -> time.monotonic() sent
        for name in DEVICE_NAMES:
            self.replug(name)

    # --- plumbing ------------------------------------------------------------------------------------

    def tty(self, name: str) -> str | None:
        """The /dev/pts/N the symlink for ``name`` points at now, or None while unplugged."""
        pair = self._ptys[name]
        return os.ttyname(pair[1]) if pair else None

    def is_open(self, name: str) -> bool:
        """Whether a program holds the device open: the kiosk's port layer locks it exclusively once it is
        reading (its probe before that is a shared lock, which this does not see). Tests wait on this
        before sending, because opening a serial port discards whatever arrived before."""
        with self._lock:
            pair = self._ptys[name]
            if pair is None:
                return False
            try:
                fcntl.flock(pair[1], fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(pair[1], fcntl.LOCK_UN)
            return False

    def unplug(self, name: str) -> None:
        with self._lock:
            pair = self._ptys[name]
            self._ptys[name] = None
            Path(self.paths[name]).unlink(missing_ok=True)
            if pair:
                for fd in pair:
                    os.close(fd)

    def replug(self, name: str) -> None:
        self.unplug(name)
        with self._lock:
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no CR/LF translation, even before the kiosk opens it
            os.set_blocking(master, False)  # a full buffer is reported, never waited on forever
            link, staging = Path(self.paths[name]), self.folder / f".{name}.new"
            staging.unlink(missing_ok=True)
            staging.symlink_to(os.ttyname(slave))
            staging.replace(link)  # atomic: the kiosk never sees a half-made link
            self._ptys[name] = (master, slave)

    def _send(self, name: str, data: bytes) -> None:
        """Write ``data`` whole; RuntimeError when unplugged, or when the buffer stays full (nobody reads)."""
        with self._lock:
            pair = self._ptys[name]
            if pair is None:
                raise RuntimeError(f"{name} is unplugged")
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(pair[0], view) :]
                except BlockingIOError:
                    if not select.select([], [pair[0]], [], SEND_TIMEOUT_S)[1]:
                        sent = len(data) - len(view)
                        raise RuntimeError(
                            f"{name}: device buffer full, is the port read? ({sent} of {len(data)} bytes sent)"
                        ) from None

    def close(self) -> None:
        for name in DEVICE_NAMES:
            self.unplug(name)
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def config_fragment(self, card_protocol: str | None = None) -> str:
        """The ``[serial.*]`` TOML for these devices; ``card_protocol`` also sets what ``swipe`` sends."""
        if card_protocol is not None:
            self.card_protocol = card_protocol
        q = json.dumps  # a JSON string is a valid TOML basic string
        return (
            f"[serial.card]\nport = {q(self.paths['card'])}\nbaudrate = 9600\nprotocol = {q(self.card_protocol)}\n\n"
            f"[serial.ticket]\nport = {q(self.paths['ticket'])}\nbaudrate = 9600\n"
            f"encoding = {q(self.ticket_encoding)}\n\n"
            f"[serial.keypad]\nport = {q(self.paths['keypad'])}\nbaudrate = 9600\n"
        )

    # --- what the devices send -----------------------------------------------------------------------

    def _pace(self, what: tuple[str, object], gap_s: float) -> None:
        """Leave ``gap_s`` since the last identical input, as a person would: the drivers merge a card's
        repeated frames and a bouncing key's repeats, and each call here must stay one input."""
        last = self._last_input.get(what)
        if last is not None:
            time.sleep(max(0.0, last + gap_s - time.monotonic()))
        self._last_input[what] = time.monotonic()

    def swipe(self, card: str, repeats: int = 1) -> None:
        """One swipe of this card number in the configured card protocol (em4100 or line). ``repeats``
        sends the read that many times back to back, as a reader does while the card lies on it."""
        if self.card_protocol == "em4100":
            read = em4100_frame(em4100_data(card))
        elif card_keys(card):
            read = card.strip().encode("ascii") + b"\r\n"
        else:
            raise ValueError("not a card number")
        self._pace(("card", card_keys(card)), REPEAT_HOLD_S + REPRESENT_MARGIN_S)
        self._send("card", read * repeats)

    def _message(self, message: dict) -> None:
        self._send("ticket", json.dumps(message, ensure_ascii=False).encode(self.ticket_encoding) + b"\r\n")

    def call(self, ticket: str) -> None:
        self._message({"event": "call", "ticket": ticket})

    def rate(
        self,
        case_no: str,
        ticket: str | None = None,
        item_code: str | None = None,
        item_name: str | None = None,
    ) -> None:
        self._message(
            {
                "event": "rate",
                "ticket": ticket,
                "case_no": case_no,
                "item_code": item_code,
                "item_name": item_name,
            }
        )

    def scan(self, code: str, encoding: str | None = None) -> None:
        """A bare scanned code with a CR suffix, in ``encoding`` (default: the ticket feed's)."""
        self._send("ticket", code.encode(encoding or self.ticket_encoding) + b"\r")

    def pause(self) -> None:
        self._message({"event": "pause"})

    def resume(self) -> None:
        self._message({"event": "resume"})

    def press(self, digit: int) -> None:
        key = str(digit)
        self._pace(("keypad", key), 2 * BOUNCE_S)
        self._send("keypad", key.encode("ascii"))

    def garbage(self, name: str, data: bytes) -> None:
        self._send(name, data)

    def keypad_answers(self) -> list[str]:
        """Lines the kiosk wrote back ("OK5", "NO"), in order; each is returned once."""
        with self._lock:
            pair = self._ptys["keypad"]
            while pair and select.select([pair[0]], [], [], 0)[0]:
                try:
                    chunk = os.read(pair[0], 4096)
                except OSError:  # EIO: nobody has the slave open
                    break
                if not chunk:
                    break
                self._answers += chunk
            *lines, rest = bytes(self._answers).replace(b"\r\n", b"\n").split(b"\n")
            self._answers[:] = rest
        return [line.decode("ascii", errors="replace").strip() for line in lines if line.strip()]


# --- kiosk sim ---------------------------------------------------------------------------------------

HELP = """commands (one a line; quote words with spaces):
  swipe CARD|STAFF_NO|NAME   a staff card (any card-number form, or a roster entry with --roster)
  call TICKET                the queue system calls a ticket to this window
  rate CASE_NO [ticket=T] [item_code=C] [item_name=N]
                             the queue system asks for a rating of this case
  scan CODE [encoding=gb18030]
                             a scanner reads a case number (bare code, CR suffix)
  pause | resume             the window stops / restarts serving
  press 1-5                  a keypad key (5 = 非常满意 … 1 = 非常不满意)
  garbage DEVICE [HEX]       noise on card|ticket|keypad (16 random bytes without HEX)
  unplug DEVICE | replug DEVICE
  paths                      where the devices are
  help | quit
keypad answers from the kiosk are printed as they arrive: "keypad answered OK5" / "keypad answered NO"."""


def load_roster_cards(path: Path) -> dict[str, str]:
    """Staff number and name -> card, from a roster CSV (header card,staff_no,name,title,photo)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ConfigError(path, None, f"cannot read roster: {e.strerror}") from None
    except (UnicodeDecodeError, csv.Error):
        raise ConfigError(path, None, "roster is not a UTF-8 CSV file") from None
    cards: dict[str, str] = {}
    for row in rows:
        card = (row.get("card") or "").strip()
        for key in ("staff_no", "name"):
            if card and (row.get(key) or "").strip():
                cards[row[key].strip()] = card
    return cards


class _Console:
    """``kiosk sim``'s command interpreter: one line in, one line out."""

    def __init__(self, sim: Simulator, roster_cards: dict[str, str]):
        self.sim, self.roster_cards = sim, roster_cards

    def run(self, line: str) -> str:
        try:
            words = shlex.split(line)
        except ValueError as e:  # an unbalanced quote
            return f"error: {e}"
        if not words:
            return ""
        command, args = words[0], words[1:]
        handler = getattr(self, f"do_{command}", None)
        if handler is None:
            return f"unknown command {command!r}; type help"
        try:
            inspect.signature(handler).bind(*args)
        except TypeError:
            usage = next((u.strip() for u in HELP.splitlines() if u.strip().startswith(command)), command)
            return f"usage: {usage}"
        try:
            return handler(*args) or "ok"
        except (TypeError, ValueError, RuntimeError, KeyError) as e:
            return f"error: {e}"

    def do_help(self) -> str:
        return HELP

    def do_paths(self) -> str:
        return "\n".join(
            f"{name:<7}{path} -> {self.sim.tty(name) or 'unplugged'}{' (open)' if self.sim.is_open(name) else ''}"
            for name, path in self.sim.paths.items()
        )

    def do_swipe(self, who: str) -> None:
        self.sim.swipe(self.roster_cards.get(who, who))

    def do_call(self, ticket: str) -> None:
        self.sim.call(ticket)

    def do_rate(self, case_no: str, *options: str) -> None:
        self.sim.rate(case_no, **_options(options, ("ticket", "item_code", "item_name")))

    def do_scan(self, code: str, *options: str) -> None:
        self.sim.scan(code, **_options(options, ("encoding",)))

    def do_pause(self) -> None:
        self.sim.pause()

    def do_resume(self) -> None:
        self.sim.resume()

    def do_press(self, digit: str) -> None:
        self.sim.press(int(digit))

    def do_garbage(self, name: str, hex_bytes: str | None = None) -> None:
        _device(name)
        self.sim.garbage(name, bytes.fromhex(hex_bytes) if hex_bytes else random.randbytes(16))

    def do_unplug(self, name: str) -> None:
        self.sim.unplug(_device(name))

    def do_replug(self, name: str) -> None:
        self.sim.replug(_device(name))


def _device(name: str) -> str:
    if name not in DEVICE_NAMES:
        raise ValueError(f"device is one of {', '.join(DEVICE_NAMES)}")
    return name


def _options(words: tuple[str, ...], allowed: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in allowed:
            raise ValueError(f"expected {' '.join(f'{k}=…' for k in allowed)}, got {word!r}")
        options[key] = value
    return options


def main(args) -> int:
    """``kiosk sim [--config-out PATH] [--roster CSV]``: print the paths, then obey commands on stdin."""
    roster_cards = load_roster_cards(Path(args.roster)) if args.roster else {}
    print_lock = threading.Lock()

    def say(text: str) -> None:
        if text:
            with print_lock:
                print(text, flush=True)

    with Simulator() as sim:
        console = _Console(sim, roster_cards)
        say(console.do_paths())
        if args.config_out:
            Path(args.config_out).write_text(sim.config_fragment(), encoding="utf-8")
            say(f"config fragment written to {args.config_out}")
        say("type help for commands")
        done = threading.Event()

        def print_answers() -> None:
            while not done.wait(ANSWER_POLL_S):
                for answer in sim.keypad_answers():
                    say(f"keypad answered {answer}")

        printer = threading.Thread(target=print_answers, name="sim-answers", daemon=True)
        printer.start()
        try:
            for line in sys.stdin:
                if line.strip() in ("quit", "exit"):
                    break
                say(console.run(line))
        finally:
            done.set()
            printer.join()
    return 0
