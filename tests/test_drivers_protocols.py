"""The pure protocol parsers: every framing case of contracts.md §3, and hypothesis hammering each parser."""

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from drivers.card import CardLineParser, Em4100Parser, em4100_frame
from drivers.events import (
    BadFrame,
    CardSwiped,
    KeyPressed,
    RateRequested,
    TicketCalled,
    WindowPaused,
    WindowResumed,
)
from drivers.framing import OVERLONG, LineSplitter
from drivers.keypad import KeypadParser, answer
from drivers.ticket import TicketParser

WORKED_FRAME = b"\x0213005D1DA5F6\x03"  # domain.md


def events(outcomes):
    return [o for o in outcomes if not isinstance(o, BadFrame)]


def bad(outcomes):
    return [o.reason for o in outcomes if isinstance(o, BadFrame)]


def feed_in_chunks(parser, data: bytes, cuts=(), now: float = 0.0):
    """Feed ``data`` cut at ``cuts`` (positions, any order) and return every outcome in order."""
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    out = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        out += parser.feed(data[start:end], now)
    return out


# --- line framing -------------------------------------------------------------------------------------


def test_line_splitter_accepts_every_line_end_and_skips_empty_lines():
    lines = LineSplitter(b"\r\n\t").feed(b"a\rb\nc\r\nd\te\r\n\r\n")
    assert lines == [b"a", b"b", b"c", b"d", b"e"]


def test_line_splitter_drops_an_overlong_line_whole_and_reports_it_once():
    splitter = LineSplitter(b"\n", max_bytes=10)
    assert splitter.feed(b"0123456789\n") == [b"0123456789"]  # exactly the cap is fine
    assert splitter.feed(b"0123456789A") == [OVERLONG]
    assert splitter.feed(b"more of the same line\nnext\n") == [b"next"]


# --- em4100 -------------------------------------------------------------------------------------------


def test_em4100_worked_example():
    assert em4100_frame("13005D1DA5") == WORKED_FRAME
    assert Em4100Parser().feed(WORKED_FRAME, 0.0) == [CardSwiped("13005D1DA5")]


def test_em4100_lowercase_hex_and_crlf_before_etx():
    lower = b"\x0213005d1da5f6\x03"
    crlf = b"\x0213005D1DA5F6\r\n\x03"
    assert Em4100Parser().feed(lower, 0.0) == [CardSwiped("13005D1DA5")]
    assert Em4100Parser().feed(crlf, 0.0) == [CardSwiped("13005D1DA5")]
    assert em4100_frame("13005D1DA5", crlf=True) == crlf


def test_em4100_frame_split_at_every_byte():
    parser = Em4100Parser()
    out = [o for b in WORKED_FRAME for o in parser.feed(bytes([b]), 0.0)]
    assert out == [CardSwiped("13005D1DA5")]


def test_em4100_merged_frames_of_two_cards():
    data = em4100_frame("0100000001") + em4100_frame("0100000002")
    assert Em4100Parser().feed(data, 0.0) == [CardSwiped("0100000001"), CardSwiped("0100000002")]


def test_em4100_noise_before_between_and_inside_frames():
    a, b = em4100_frame("0100000001"), em4100_frame("0100000002")
    inside = a[:6] + b"\xff\x00zz" + a[6:]  # a frame with garbage in the middle is lost, not misread
    out = Em4100Parser().feed(b"\xfe\x01junk" + a + b"\x03\x03\x99" + inside + b"\x02123" + b, 0.0)
    assert events(out) == [CardSwiped("0100000001"), CardSwiped("0100000002")]
    assert bad(out) == ["noise between frames", "noise between frames", "malformed frame", "incomplete frame"]


def test_em4100_wrong_checksum_is_a_bad_frame():
    out = Em4100Parser().feed(b"\x0213005D1DA5F7\x03", 0.0)
    assert out == [BadFrame("checksum mismatch")]


def test_em4100_repeats_while_the_card_lies_on_the_reader_are_one_swipe():
    parser = Em4100Parser(repeat_hold_s=0.5)
    swipes = [o for t in range(50) for o in parser.feed(WORKED_FRAME, t * 0.2)]  # ten seconds on the reader
    assert swipes == [CardSwiped("13005D1DA5")]
    assert parser.feed(WORKED_FRAME, 9.8 + 0.6) == [CardSwiped("13005D1DA5")]  # taken away, presented again


def test_em4100_another_card_is_a_new_swipe_at_once():
    parser = Em4100Parser()
    a, b = em4100_frame("0100000001"), em4100_frame("0100000002")
    swipes = events(parser.feed(a + b + a, 0.0))
    assert [s.card for s in swipes] == ["0100000001", "0100000002", "0100000001"]


# --- card line ----------------------------------------------------------------------------------------


def test_card_line_reader():
    out = CardLineParser().feed(b"26DEFAE7\r\n0652147431\rE7FADE26\nnot a card\n", 0.0)
    assert events(out) == [CardSwiped("26DEFAE7"), CardSwiped("0652147431"), CardSwiped("E7FADE26")]
    assert bad(out) == ["not a card number"]


# --- ticket feed --------------------------------------------------------------------------------------


def line(message) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode() + b"\r\n"


def test_ticket_feed_messages():
    data = (
        line({"event": "call", "ticket": "A012"})
        + line(
            {
                "event": "rate",
                "ticket": "A012",
                "case_no": "370211-2026-0001",
                "item_code": "C1",
                "item_name": "不动产 登记",
            }
        )
        + line({"event": "rate", "case_no": "370211-2026-0002"})
        + line({"event": "pause"})
        + line({"event": "resume"})
    )
    assert TicketParser().feed(data, 0.0) == [
        TicketCalled("A012"),
        RateRequested("A012", "370211-2026-0001", "C1", "不动产 登记", "queue"),
        RateRequested(None, "370211-2026-0002", None, None, "queue"),
        WindowPaused(),
        WindowResumed(),
    ]


@pytest.mark.parametrize("suffix", [b"\r", b"\n", b"\r\n", b"\t"])
def test_scanned_code_with_every_suffix(suffix):
    out = TicketParser().feed(b"SP2026112800017" + suffix + b"SP2026112800018" + suffix, 0.0)
    assert out == [
        RateRequested(None, c, None, None, "scanner") for c in ("SP2026112800017", "SP2026112800018")
    ]


def test_gb18030_item_names():
    message = {"event": "rate", "case_no": "C-1", "item_name": "企业设立登记（含分支机构）"}
    data = json.dumps(message, ensure_ascii=False).encode("gb18030") + b"\r\n"
    assert TicketParser("gb18030").feed(data, 0.0) == [
        RateRequested(None, "C-1", None, "企业设立登记（含分支机构）", "queue")
    ]
    assert bad(TicketParser("utf-8").feed(data, 0.0)) == ["not utf-8 text"]


def test_a_2000_byte_line_is_dropped_and_counted_and_the_next_line_works():
    overlong = b'{"event": "rate", "case_no": "C1", "item_name": "' + b"x" * 2000 + b'"}\r\n'
    out = TicketParser().feed(overlong + line({"event": "call", "ticket": "A1"}), 0.0)
    assert out == [BadFrame("line over 1024 bytes"), TicketCalled("A1")]


def test_a_line_of_exactly_1024_bytes_is_taken():
    prefix = b'{"event": "rate", "case_no": "C1", "item_name": "'
    name = "名".encode() * 200  # the longest item name, padded out with JSON whitespace
    data = prefix + name + b'"' + b" " * (1024 - len(prefix) - len(name) - 2) + b"}"
    assert len(data) == 1024
    assert [type(o) for o in TicketParser().feed(data + b"\n", 0.0)] == [RateRequested]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'{"event": "call"}', "ticket missing"),
        (b'{"event": "call", "ticket": 12}', "ticket is not a string"),
        (b'{"event": "rate", "ticket": "A1"}', "case_no missing"),
        (
            b'{"event": "rate", "case_no": "has space"}',
            "case_no is not 1-64 printable characters without spaces",
        ),
        (
            b'{"event": "rate", "case_no": "' + b"9" * 65 + b'"}',
            "case_no is not 1-64 printable characters without spaces",
        ),
        (
            b'{"event": "rate", "case_no": "C1", "item_name": "a\\u0000b"}',
            "item_name is not 1-200 printable characters",
        ),
        (b'{"event": "dance"}', "unknown event"),
        (b'{"ticket": "A1"}', "event missing"),
        (b'{"event": "call", "ticket": "A1"', "malformed JSON"),
        (b"{" + b"[" * 1000, "malformed JSON"),
        (b"SP 2026", "case_no is not 1-64 printable characters without spaces"),
        (b"\x1b[2J", "case_no is not 1-64 printable characters without spaces"),
    ],
)
def test_bad_lines_are_counted_with_a_reason_that_does_not_quote_them(text, reason):
    out = TicketParser().feed(text + b"\n", 0.0)
    assert out == [BadFrame(reason)]


# --- keypad -------------------------------------------------------------------------------------------


def test_keypad_digits_with_and_without_line_ends():
    out = KeypadParser().feed(b"5\r\n4\n3", 0.0) + KeypadParser().feed(b"21", 0.0)
    assert out == [KeyPressed(5), KeyPressed(4), KeyPressed(3), KeyPressed(2), KeyPressed(1)]


def test_keypad_bounce_is_one_press_but_a_deliberate_second_press_counts():
    parser = KeypadParser(bounce_s=0.15)
    assert parser.feed(b"555", 0.0) + parser.feed(b"5", 0.01) == [KeyPressed(5)]
    assert parser.feed(b"5", 0.5) == [KeyPressed(5)]
    assert parser.feed(b"4", 0.51) == [KeyPressed(4)]


def test_keypad_garbage_is_one_bad_frame_a_run():
    out = KeypadParser().feed(b"\x00\xff79x5", 0.0)
    assert out == [BadFrame("not a key 1-5"), KeyPressed(5)]


def test_keypad_answers():
    assert answer(5) == b"OK5\r\n"
    assert answer(None) == b"NO\r\n"
    with pytest.raises(ValueError):
        answer(6)


# --- hypothesis ---------------------------------------------------------------------------------------

PARSERS = [Em4100Parser, CardLineParser, TicketParser, lambda: TicketParser("gb18030"), KeypadParser]
cuts = st.lists(st.integers(0, 10_000), max_size=8)


@pytest.mark.parametrize(
    "make_parser", PARSERS, ids=["em4100", "card-line", "ticket-utf8", "ticket-gb18030", "keypad"]
)
@given(data=st.binary(max_size=3000), cuts=cuts)
def test_no_byte_sequence_raises_and_chunking_never_changes_the_outcome(make_parser, data, cuts):
    whole = make_parser().feed(data, 0.0)
    assert feed_in_chunks(make_parser(), data, cuts) == whole


em_data = st.text("0123456789ABCDEFabcdef", min_size=10, max_size=10)


@given(em=em_data, crlf=st.booleans(), before=st.binary(max_size=60), after=st.binary(max_size=60), cuts=cuts)
def test_em4100_frame_in_noise_is_decoded_exactly_once(em, crlf, before, after, cuts):
    assume(not events(Em4100Parser().feed(before, 0.0)) and not events(Em4100Parser().feed(after, 0.0)))
    out = feed_in_chunks(Em4100Parser(), before + em4100_frame(em, crlf=crlf) + after, cuts)
    assert events(out) == [CardSwiped(em.upper())]


ticket_messages = st.one_of(
    st.builds(
        lambda t: ({"event": "call", "ticket": t}, TicketCalled(t)),
        st.from_regex(r"[A-Z][0-9]{1,4}", fullmatch=True),
    ),
    st.builds(
        lambda c, name: (
            {"event": "rate", "case_no": c, "item_name": name},
            RateRequested(None, c, None, name.strip() or None, "queue"),
        ),
        st.from_regex(r"[0-9A-Za-z-]{1,64}", fullmatch=True),
        st.text(st.characters(categories=["L", "N", "P"]), max_size=40),
    ),
    st.builds(
        lambda c: (c, RateRequested(None, c, None, None, "scanner")),
        st.from_regex(r"[0-9A-Z]{4,40}", fullmatch=True),
    ),
)


@given(message=ticket_messages, before=st.binary(max_size=80), after=st.binary(max_size=80), cuts=cuts)
def test_ticket_message_in_noise_is_decoded_exactly_once(message, before, after, cuts):
    payload, expected = message
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    assume(
        not events(TicketParser().feed(before + b"\n", 0.0))
        and not events(TicketParser().feed(after + b"\n", 0.0))
    )
    out = feed_in_chunks(TicketParser(), before + b"\n" + text.encode() + b"\r\n" + after, cuts)
    assert events(out) == [expected]


@given(
    digit=st.integers(1, 5),
    noise=st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"12345")),
    cuts=cuts,
)
def test_key_press_in_noise_is_decoded_exactly_once(digit, noise, cuts):
    out = feed_in_chunks(KeypadParser(), noise + str(digit).encode() + noise, cuts)
    assert events(out) == [KeyPressed(digit)]


@given(n=st.integers(0, 2**32 - 1), before=st.binary(max_size=40), cuts=cuts)
def test_card_line_in_noise_is_decoded_exactly_once(n, before, cuts):
    assume(not events(CardLineParser().feed(before + b"\n", 0.0)))
    out = feed_in_chunks(CardLineParser(), before + b"\n" + f"{n:08X}\r\n".encode() + before, cuts)
    assert events(out) == [CardSwiped(f"{n:08X}")]
