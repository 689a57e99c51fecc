"""``Devices`` end to end over the simulator's real pseudo-terminals: each protocol, split and merged frames,
noise, bad checksums, GB18030, overlong lines, keypad answers, and unplug/replug of every device."""

import logging
import threading

import pytest

from core.config import SerialConfig
from drivers.card import em4100_frame
from drivers.devices import (
    CardSwiped,
    Devices,
    KeyPressed,
    RateRequested,
    TicketCalled,
    WindowPaused,
    WindowResumed,
)
from drivers.framing import PARTIAL_LINE_SILENCE_S
from drivers.port import BACKOFF_CAP_S
from drivers.sim import Simulator, wait_until


class Rig:
    """A simulator, the devices reading it, and the events they delivered."""

    def __init__(
        self,
        folder,
        *,
        card_protocol="em4100",
        ticket_encoding="utf-8",
        fitted=("card", "ticket", "keypad"),
        **devices_options,
    ):
        self.sim = Simulator(folder, card_protocol=card_protocol, ticket_encoding=ticket_encoding)
        serial = {
            name: SerialConfig(
                name=name, port=self.sim.paths[name], protocol=card_protocol, encoding=ticket_encoding
            )
            for name in fitted
        }
        self.events = []
        self._lock = threading.Lock()
        self.devices = Devices(serial, self._record, **devices_options)
        self.devices.start()
        for name in fitted:
            wait_until(lambda n=name: self.sim.is_open(n), what=f"{name} open")

    def _record(self, event):
        with self._lock:
            self.events.append(event)

    def wait_events(self, count):
        wait_until(lambda: len(self.events) >= count, what=f"{count} events")
        return list(self.events)

    def status(self, name):
        return next(s for s in self.devices.status() if s.name == name)

    def close(self):
        self.devices.stop()
        self.sim.close()


def em(data_hex):
    """The swipe an em4100 frame of ``data_hex`` becomes: its 12 hex chars, one exact card."""
    return CardSwiped(em4100_frame(data_hex)[1:-1].decode())


class Clock:
    """A monotonic clock the test moves; it counts reads: one per chunk a port hands to its parser (and one
    per reconnect that drops something)."""

    def __init__(self):
        self.now, self.reads = 100.0, 0

    def __call__(self):
        self.reads += 1
        return self.now


@pytest.fixture
def rig(tmp_path):
    made = []

    def make(**kwargs):
        r = Rig(tmp_path / f"dev{len(made)}", **kwargs)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_every_device_delivers_its_events(rig):
    r = rig()
    r.sim.swipe("0006102437")
    r.sim.call("A012")
    r.sim.rate("370211-0001", ticket="A012", item_code="C1", item_name="不动产登记")
    r.sim.scan("SP20261128")
    r.sim.pause()
    r.sim.resume()
    r.sim.press(5)
    events = r.wait_events(7)
    assert em("00005D1DA5") in events
    ticket_events = [e for e in events if not isinstance(e, CardSwiped | KeyPressed)]
    assert ticket_events == [
        TicketCalled("A012"),
        RateRequested("A012", "370211-0001", "C1", "不动产登记", "queue"),
        RateRequested(None, "SP20261128", None, None, "scanner"),
        WindowPaused(),
        WindowResumed(),
    ]
    assert KeyPressed(5) in events
    assert [(s.name, s.state, s.frames, s.bad_frames) for s in r.devices.status()] == [
        ("card", "connected", 1, 0),
        ("ticket", "connected", 5, 0),
        ("keypad", "connected", 1, 0),
    ]
    assert all(s.last_frame_at is not None for s in r.devices.status())


def test_em4100_split_merged_noisy_lowercase_and_bad_checksum_frames(rig):
    r = rig(fitted=("card",))
    a, b, c = (
        em4100_frame("0100000001"),
        b"\x020100000002" + b"03\r\n\x03",
        em4100_frame("0100000003").lower(),
    )
    r.sim.garbage("card", b"\xff\x00noise" + a[:5])  # noise, then half a frame …
    wait_until(lambda: r.status("card").bad_frames == 1)
    r.sim.garbage(
        "card", a[5:] + b"\x13\x37" + b + a[:3] + b"zz" + c
    )  # … its rest, noise, CRLF frame, broken, lowercase
    r.sim.garbage("card", b"\x020100000004FF\x03")  # wrong checksum
    wait_until(lambda: r.status("card").bad_frames == 4)
    assert r.wait_events(3) == [em("0100000001"), em("0100000002"), em("0100000003")]
    status = r.status("card")
    assert (status.frames, status.bad_frames) == (3, 4)
    assert status.detail == "last bad frame: checksum mismatch"


def test_card_line_protocol(rig):
    r = rig(card_protocol="line", fitted=("card",))
    r.sim.swipe("26DEFAE7")
    r.sim.garbage("card", b"0006102437\rnot a card\n")
    assert r.wait_events(2) == [CardSwiped("26DEFAE7"), CardSwiped("0006102437")]
    wait_until(lambda: r.status("card").bad_frames == 1)


def test_card_line_reader_repeats_while_the_card_lies_on_it_are_one_swipe(rig):
    r = rig(card_protocol="line", fitted=("card",))
    r.sim.garbage("card", b"26DEFAE7\r\n" * 5)
    r.sim.garbage("card", b"0006102437\r\n")  # another card is a swipe at once
    assert r.wait_events(2) == [CardSwiped("26DEFAE7"), CardSwiped("0006102437")]
    assert r.status("card").frames == 2


@pytest.mark.parametrize(
    ("name", "partial", "rest", "expected"),
    [
        ("ticket", b"CASE-12", b"CASE-3456\r", RateRequested(None, "CASE-3456", None, None, "scanner")),
        ("card", b"26DE", b"005D1DA5\r\n", CardSwiped("005D1DA5")),
    ],
)
def test_a_partial_line_does_not_survive_an_unplug(rig, name, partial, rest, expected):
    clock = Clock()  # never moves: only the reconnect may drop the partial line
    r = rig(card_protocol="line", fitted=(name,), clock=clock)
    r.sim.garbage(name, partial)
    wait_until(lambda: clock.reads == 1, what="partial line read")
    r.sim.unplug(name)
    wait_until(lambda: r.status(name).state == "waiting", what="loss noticed")
    r.sim.replug(name)
    wait_until(lambda: r.sim.is_open(name), timeout_s=2 * BACKOFF_CAP_S + 1, what="reopened")
    r.sim.garbage(name, rest)
    assert r.wait_events(1) == [expected]
    wait_until(lambda: r.status(name).bad_frames == 1)
    assert r.status(name).detail == "last bad frame: incomplete line dropped: device reconnected"


def test_a_partial_line_left_by_silence_is_not_glued_to_the_next(rig):
    clock = Clock()
    r = rig(fitted=("ticket",), clock=clock)
    r.sim.garbage("ticket", b"CASE-12")
    wait_until(lambda: clock.reads == 1, what="partial line read")
    clock.now += PARTIAL_LINE_SILENCE_S + 0.01
    r.sim.scan("CASE-3456")
    assert r.wait_events(1) == [RateRequested(None, "CASE-3456", None, None, "scanner")]
    assert (r.status("ticket").frames, r.status("ticket").bad_frames) == (1, 1)


def test_gb18030_ticket_feed(rig):
    r = rig(ticket_encoding="gb18030", fitted=("ticket",))
    r.sim.rate("C-1", item_name="企业设立登记（含分支机构）")
    r.sim.scan("办件2026")
    assert r.wait_events(2) == [
        RateRequested(None, "C-1", None, "企业设立登记（含分支机构）", "queue"),
        RateRequested(None, "办件2026", None, None, "scanner"),
    ]


def test_a_2000_byte_line_is_dropped_and_counted(rig):
    r = rig(fitted=("ticket",))
    r.sim.garbage("ticket", b"S" * 2000 + b"\r\n")
    r.sim.call("A001")
    assert r.wait_events(1) == [TicketCalled("A001")]
    assert r.status("ticket").bad_frames == 1


def test_keypad_answers_reach_the_device(rig):
    r = rig(fitted=("keypad",))
    r.sim.press(4)
    assert r.wait_events(1) == [KeyPressed(4)]
    r.devices.answer_keypad(4)
    r.devices.answer_keypad(None)
    answers = []
    wait_until(lambda: answers.extend(r.sim.keypad_answers()) or len(answers) == 2)
    assert answers == ["OK4", "NO"]


def test_answer_without_a_keypad_is_a_no_op(rig):
    r = rig(fitted=("card",))
    r.devices.answer_keypad(5)
    assert [s.name for s in r.devices.status()] == ["card"]


@pytest.mark.parametrize("name", ["card", "ticket", "keypad"])
def test_unplug_and_replug_recovers_without_restarting(rig, name):
    r = rig()
    r.sim.unplug(name)
    wait_until(lambda: r.status(name).state == "waiting", what="loss noticed")
    assert "device" in r.status(name).detail
    r.sim.replug(name)
    wait_until(lambda: r.sim.is_open(name), timeout_s=2 * BACKOFF_CAP_S + 1, what="reopened")
    send = {
        "card": lambda: r.sim.swipe("26DEFAE7"),
        "ticket": lambda: r.sim.call("B7"),
        "keypad": lambda: r.sim.press(3),
    }
    send[name]()
    expected = {"card": em("0026DEFAE7"), "ticket": TicketCalled("B7"), "keypad": KeyPressed(3)}
    assert r.wait_events(1) == [expected[name]]
    status = r.status(name)
    assert (status.state, status.reconnects) == ("connected", 1)
    if name == "keypad":
        r.devices.answer_keypad(3)
        wait_until(lambda: r.sim.keypad_answers() == ["OK3"])


def test_absent_devices_do_not_stop_the_others(tmp_path):
    events = []
    serial = {"card": SerialConfig(name="card", port=str(tmp_path / "no-such-reader"))}
    with Simulator(tmp_path / "dev") as sim:
        serial["keypad"] = SerialConfig(name="keypad", port=sim.paths["keypad"])
        with Devices(serial, events.append) as devices:
            wait_until(lambda: sim.is_open("keypad"))
            sim.press(2)
            wait_until(lambda: events == [KeyPressed(2)])
            card = devices.status()[0]
            assert (card.name, card.state, card.detail) == ("card", "waiting", "device not present")


def test_a_failing_event_handler_does_not_lose_later_events(tmp_path):
    seen = []

    def handler(event):
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("kiosk bug")

    with (
        Simulator(tmp_path / "dev") as sim,
        Devices({"keypad": SerialConfig(name="keypad", port=sim.paths["keypad"])}, handler),
    ):
        wait_until(lambda: sim.is_open("keypad"))
        sim.press(1)
        wait_until(lambda: len(seen) == 1)
        sim.press(2)
        wait_until(lambda: seen == [KeyPressed(1), KeyPressed(2)])


def test_a_card_lying_on_the_reader_is_one_swipe_and_each_simulated_swipe_is_one(rig):
    r = rig(fitted=("card", "keypad"))
    r.sim.swipe("26DEFAE7", repeats=5)
    r.sim.swipe("26DEFAE7")  # the simulator waits as long as a person would take to present it again
    r.sim.press(5)
    r.sim.press(5)
    wait_until(lambda: len(r.events) == 4)
    assert sorted(map(repr, r.events)) == sorted(map(repr, [em("0026DEFAE7")] * 2 + [KeyPressed(5)] * 2))


def test_logs_never_carry_card_or_case_numbers(rig, caplog):
    caplog.set_level(logging.DEBUG)
    r = rig(fitted=("card", "ticket"), bad_frame_log_interval_s=0)  # every bad frame is logged
    r.sim.swipe("26DEFAE7")
    r.sim.scan("SP370211777")
    r.sim.garbage("ticket", b'{"event": "rate", "case_no": "SP370211888 with spaces"}\r\nSP370211999 x\r\n')
    r.sim.garbage("card", b"\x0200" + b"26DEFAE7" + b"00\x03")  # a checksum failure with the card inside
    r.wait_events(2)
    wait_until(lambda: r.status("ticket").bad_frames == 2 and r.status("card").bad_frames == 1)
    bad_frame_logs = [m for m in caplog.messages if "bad frame" in m]
    assert len(bad_frame_logs) == 3
    text = caplog.text.upper()
    assert not any(secret in text for secret in ("26DEFAE7", "SP370211", "0652147431"))


def test_bad_frames_are_logged_at_most_once_an_interval_with_a_count(rig, caplog):
    caplog.set_level(logging.WARNING)
    r = rig(fitted=("keypad",))
    for _ in range(3):
        r.sim.garbage("keypad", b"x")
        r.sim.press(1)  # ends the run of noise, so each x is a bad frame of its own
    wait_until(lambda: r.status("keypad").bad_frames == 3)
    assert [m for m in caplog.messages if "bad frame" in m] == [
        "keypad: bad frame: not a key 1-5; 1 bad so far"
    ]
