"""The port layer over real pseudo-terminals, a loop:// URL and a socket:// server: it never raises, it waits
for absent devices, it comes back after an unplug, and it keeps a second program off a locked port."""

import socket
import threading
import time

import pytest

import drivers.port
from drivers.port import BACKOFF_CAP_S, CONNECTED, ERROR, WAITING, Port
from drivers.sim import Simulator, wait_until


class Received:
    """Collects what a port reads, from its thread."""

    def __init__(self):
        self.data = bytearray()
        self.lock = threading.Lock()

    def __call__(self, chunk: bytes) -> None:
        with self.lock:
            self.data += chunk

    def has(self, expected: bytes) -> bool:
        with self.lock:
            return expected in self.data


@pytest.fixture
def sim(tmp_path):
    with Simulator(tmp_path / "dev") as s:
        yield s


@pytest.fixture
def ports():
    made = []

    def make(url, on_data=None, name="card"):
        port = Port(name, url, 9600, on_data or Received())
        made.append(port)
        port.start()
        return port

    yield make
    for port in made:
        port.stop()


def test_reads_a_pty(sim, ports):
    received = Received()
    port = ports(sim.paths["card"], received)
    wait_until(lambda: sim.is_open("card"), what="port open")
    assert port.state == CONNECTED
    sim.garbage("card", b"hello")
    wait_until(lambda: received.has(b"hello"))


def test_absent_device_is_waited_for_and_taken_within_two_seconds_of_appearing(tmp_path, ports):
    folder = tmp_path / "dev"
    port = ports(str(folder / "card"))
    wait_until(lambda: port.detail == "device not present")
    assert port.state == WAITING
    with Simulator(folder) as sim:
        appeared = time.monotonic()
        wait_until(lambda: port.state == CONNECTED, timeout_s=2 * BACKOFF_CAP_S, what="connection within 2 s")
        assert time.monotonic() - appeared < 2.0
        assert port.reconnects == 0
        assert sim.is_open("card")


def test_after_a_long_absence_the_device_is_taken_within_two_seconds_of_appearing(tmp_path, ports):
    folder = tmp_path / "dev"
    port = ports(str(folder / "card"))
    absent_since = time.monotonic()
    wait_until(lambda: port.detail == "device not present")
    # The premise, not a synchronisation: absent long enough for the backoff to reach its cap.
    time.sleep(max(0.0, absent_since + 3.0 - time.monotonic()))
    with Simulator(folder):
        appeared = time.monotonic()
        wait_until(lambda: port.state == CONNECTED, timeout_s=5, what="connection")
        assert time.monotonic() - appeared < 2.0


def test_unplug_and_replug_recovers_without_restarting(sim, ports):
    received = Received()
    port = ports(sim.paths["card"], received)
    wait_until(lambda: sim.is_open("card"))
    sim.unplug("card")
    wait_until(lambda: port.state == WAITING, what="loss noticed")
    sim.replug("card")
    wait_until(lambda: sim.is_open("card"), timeout_s=2 * BACKOFF_CAP_S + 1, what="reopened")
    sim.garbage("card", b"after")
    wait_until(lambda: received.has(b"after"))
    assert port.state == CONNECTED
    assert port.reconnects == 1


def test_a_locked_port_is_an_error_for_a_second_program_until_released(sim, ports):
    first = ports(sim.paths["keypad"], name="keypad")
    wait_until(lambda: first.state == CONNECTED)
    second = ports(sim.paths["keypad"], name="keypad")
    wait_until(lambda: second.state == ERROR, what="second refused")
    assert second.detail.startswith("in use by another program")
    first.stop()
    wait_until(lambda: second.state == CONNECTED, what="second takes over")


def test_writes_from_many_threads_arrive_whole(sim, ports):
    port = ports(sim.paths["keypad"], name="keypad")
    wait_until(lambda: sim.is_open("keypad"))
    lines = [f"OK{d}\r\n".encode() for d in range(1, 6)] * 20

    def write(chunk):
        assert port.write(chunk)

    threads = [threading.Thread(target=write, args=(chunk,)) for chunk in lines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answers = []
    wait_until(lambda: answers.extend(sim.keypad_answers()) or len(answers) >= len(lines))
    assert sorted(answers) == sorted(chunk.decode().strip() for chunk in lines)


def test_a_device_that_stops_taking_bytes_does_not_block_the_writer(sim, ports):
    port = ports(sim.paths["keypad"], name="keypad")
    wait_until(lambda: sim.is_open("keypad"))
    assert port.write(b"N" * 1_000_000) is False  # far beyond what the pty buffers while nobody reads
    sim.keypad_answers()  # the device drains what it got …
    assert port.write(b"OK5\r\n")  # … and takes answers again
    answers = []
    wait_until(lambda: answers.extend(sim.keypad_answers()) or answers)
    assert answers[0].endswith("OK5")  # after the part of the flood that got through


def test_write_without_a_device_is_refused_not_raised(tmp_path, ports):
    port = ports(str(tmp_path / "nothing"))
    assert port.write(b"OK5\r\n") is False


def test_a_failing_handler_does_not_stop_the_port(sim, ports):
    received = Received()
    failures = []

    def handler(chunk):
        if b"boom" in chunk:
            failures.append(chunk)
            raise RuntimeError("handler bug")
        received(chunk)

    ports(sim.paths["card"], handler)
    wait_until(lambda: sim.is_open("card"))
    sim.garbage("card", b"boom")
    wait_until(lambda: failures, what="handler called")
    sim.garbage("card", b"fine")
    wait_until(lambda: received.has(b"fine"))


def test_on_connect_is_called_on_every_connection_before_any_data(sim):
    events = []
    port = Port(
        "card",
        sim.paths["card"],
        9600,
        lambda chunk: events.append(chunk),
        on_connect=lambda: events.append("connected"),
    )
    port.start()
    try:
        wait_until(lambda: sim.is_open("card"))
        sim.unplug("card")
        wait_until(lambda: port.state == WAITING)
        sim.replug("card")
        wait_until(lambda: sim.is_open("card"), timeout_s=2 * BACKOFF_CAP_S + 1)
        sim.garbage("card", b"x")
        wait_until(lambda: b"x" in events)
        assert events == ["connected", "connected", b"x"]
    finally:
        port.stop()


def test_an_unexpected_error_is_an_error_state_and_the_port_keeps_trying(ports, caplog):
    port = ports("loop://?logging=nonsense", name="keypad")  # pyserial raises KeyError for this
    wait_until(lambda: port.state == ERROR, what="error state")
    assert port.detail.startswith("unexpected error: KeyError")
    assert sum(t.name == "serial-keypad" and t.is_alive() for t in threading.enumerate()) == 1
    assert [r.levelname for r in caplog.records if "unexpected error" in r.getMessage()] == ["ERROR"]


def test_a_stop_that_times_out_never_leaves_two_readers(sim, monkeypatch):
    monkeypatch.setattr(drivers.port, "STOP_TIMEOUT_S", 0.2)
    entered, release = threading.Event(), threading.Event()

    def hanging_handler(chunk):
        entered.set()
        release.wait(10)

    port = Port("card", sim.paths["card"], 9600, hanging_handler)
    port.start()
    wait_until(lambda: sim.is_open("card"))
    sim.garbage("card", b"x")
    wait_until(entered.is_set, what="handler entered")
    port.stop()
    port.start()  # the old reader is still inside the handler
    assert readers() == 1
    assert (port.state, port.detail) == (ERROR, "the previous reader has not stopped yet")
    release.set()
    wait_until(lambda: readers() == 0, what="old reader gone")
    port.start()
    wait_until(lambda: port.state == CONNECTED and readers() == 1, what="restarted")
    port.stop()


def readers() -> int:
    return sum(t.name == "serial-card" and t.is_alive() for t in threading.enumerate())


def test_a_bad_url_is_an_error_state_not_an_exception(ports):
    port = ports("nonsense://where")
    wait_until(lambda: port.state == ERROR)
    assert "nonsense" in port.detail


def test_loop_url(ports):
    received = Received()
    port = ports("loop://", received)
    wait_until(lambda: port.state == CONNECTED)
    assert port.write(b"echo")
    wait_until(lambda: received.has(b"echo"))


def test_socket_url_reconnects_when_the_server_comes_back():
    server = socket.create_server(("127.0.0.1", 0))
    host, tcp_port = server.getsockname()
    received = Received()
    port = Port("ticket", f"socket://{host}:{tcp_port}", 9600, received)
    port.start()
    try:
        for reconnects, greeting in enumerate((b"first", b"second")):
            conn, _ = server.accept()
            # Opening a socket:// port discards what is already waiting, like a serial port does.
            wait_until(lambda n=reconnects: port.state == CONNECTED and port.reconnects == n)
            conn.sendall(greeting)
            wait_until(lambda g=greeting: received.has(g))
            conn.close()  # the far end goes away; the port must come back for the next connection
        assert port.reconnects == 1
    finally:
        port.stop()
        server.close()


def test_stop_is_prompt_even_while_waiting(tmp_path):
    port = Port("card", str(tmp_path / "absent"), 9600, Received())
    port.start()
    wait_until(lambda: port.detail == "device not present")
    started = time.monotonic()
    port.stop()
    assert time.monotonic() - started < 1.0
    assert port.detail == "stopped"
