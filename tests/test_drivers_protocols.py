"""The pure protocol parsers: every framing case of docs/hardware.md, and hypothesis hammering each parser."""

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core import qrtoken
from core.cardnum import card_keys
from drivers.card import REPEAT_HOLD_S, CardLineParser, Em4100Parser, em4100_frame
from drivers.events import (
    BadFrame,
    CardSwiped,
    KeyPressed,
    RateRequested,
    TicketCalled,
    WindowPaused,
    WindowResumed,
)
from drivers.framing import OVERLONG, PARTIAL_LINE_SILENCE_S, LineSplitter
from drivers.keypad import KeypadParser, answer
from drivers.ticket import QR_FIELD_BYTES, TicketParser

WORKED_FRAME = b"\x0213005D1DA5F6\x03"  # docs/hardware.md
WORKED_SWIPE = CardSwiped("13005D1DA5F6")  # what the card reader reports: the frame's 12 hex chars


def em(data_hex: str) -> CardSwiped:
    """The swipe an em4100 frame of ``data_hex`` becomes."""
    return CardSwiped(em4100_frame(data_hex)[1:-1].decode())


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
    assert Em4100Parser().feed(WORKED_FRAME, 0.0) == [WORKED_SWIPE]
    assert card_keys(WORKED_SWIPE.card) == {0x005D1DA5}  # exactly the one card


def test_em4100_lowercase_hex_and_crlf_before_etx():
    lower = b"\x0213005d1da5f6\x03"
    crlf = b"\x0213005D1DA5F6\r\n\x03"
    assert Em4100Parser().feed(lower, 0.0) == [WORKED_SWIPE]
    assert Em4100Parser().feed(crlf, 0.0) == [WORKED_SWIPE]
    assert em4100_frame("13005D1DA5", crlf=True) == crlf


def test_em4100_frame_split_at_every_byte():
    parser = Em4100Parser()
    out = [o for b in WORKED_FRAME for o in parser.feed(bytes([b]), 0.0)]
    assert out == [WORKED_SWIPE]


def test_em4100_merged_frames_of_two_cards():
    data = em4100_frame("0100000001") + em4100_frame("0100000002")
    assert Em4100Parser().feed(data, 0.0) == [em("0100000001"), em("0100000002")]


def test_em4100_noise_before_between_and_inside_frames():
    a, b = em4100_frame("0100000001"), em4100_frame("0100000002")
    inside = a[:6] + b"\xff\x00zz" + a[6:]  # a frame with garbage in the middle is lost, not misread
    out = Em4100Parser().feed(b"\xfe\x01junk" + a + b"\x03\x03\x99" + inside + b"\x02123" + b, 0.0)
    assert events(out) == [em("0100000001"), em("0100000002")]
    assert bad(out) == ["noise between frames", "noise between frames", "malformed frame", "incomplete frame"]


def test_em4100_wrong_checksum_is_a_bad_frame():
    out = Em4100Parser().feed(b"\x0213005D1DA5F7\x03", 0.0)
    assert out == [BadFrame("checksum mismatch")]


@pytest.mark.parametrize("make_parser", [Em4100Parser, CardLineParser], ids=["em4100", "line"])
def test_a_card_lying_on_the_reader_is_one_swipe_until_taken_away(make_parser):
    parser = make_parser()
    frame = WORKED_FRAME if isinstance(parser, Em4100Parser) else b"26DEFAE7\r\n"
    # Ten seconds on the reader, read every 0.2 s, with a gap of 1.4 s (a noise burst, a replug) in the middle.
    times = [t * 0.2 for t in range(25)] + [4.8 + 1.4 + t * 0.2 for t in range(25)]
    swipes = [o for t in times for o in parser.feed(frame, t)]
    assert len(swipes) == 1
    # Held since the last frame: taken away, presented again after the hold.
    assert len(parser.feed(frame, times[-1] + REPEAT_HOLD_S + 0.1)) == 1
    assert REPEAT_HOLD_S >= 1.5


def test_em4100_another_card_is_a_new_swipe_at_once():
    parser = Em4100Parser()
    a, b = em4100_frame("0100000001"), em4100_frame("0100000002")
    swipes = events(parser.feed(a + b + a, 0.0))
    assert swipes == [em("0100000001"), em("0100000002"), em("0100000001")]


# --- card line ----------------------------------------------------------------------------------------


def test_card_line_reader():
    out = CardLineParser().feed(b"26DEFAE7\r\n0006102437\rE7FADE26\nnot a card\n", 0.0)
    assert events(out) == [CardSwiped("26DEFAE7"), CardSwiped("0006102437"), CardSwiped("E7FADE26")]
    assert bad(out) == ["not a card number"]


def test_card_line_reader_repeats_are_one_swipe_and_another_card_is_new_at_once():
    out = CardLineParser().feed(b"26DEFAE7\r\n26defae7\r\n005D1DA5\r\n26DEFAE7\r\n", 0.0)
    assert events(out) == [CardSwiped("26DEFAE7"), CardSwiped("005D1DA5"), CardSwiped("26DEFAE7")]


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


CASE_NO_REASON = "case_no is not 1-64 UTF-8 bytes of printable text without spaces"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'{"event": "call"}', "ticket missing"),
        (b'{"event": "call", "ticket": 12}', "ticket is not a string"),
        (b'{"event": "rate", "ticket": "A1"}', "case_no missing"),
        (
            b'{"event": "rate", "case_no": "has space"}',
            CASE_NO_REASON,
        ),
        (
            b'{"event": "rate", "case_no": "' + b"9" * 65 + b'"}',
            CASE_NO_REASON,
        ),
        (
            b'{"event": "rate", "case_no": "C1", "item_name": "a\\u0000b"}',
            "item_name is not 1-600 UTF-8 bytes of printable text",
        ),
        (b'{"event": "dance"}', "unknown event"),
        (b'{"ticket": "A1"}', "event missing"),
        (b'{"event": "call", "ticket": "A1"', "malformed JSON"),
        (b"{" + b"[" * 1000, "malformed JSON"),
        (b"SP 2026", CASE_NO_REASON),
        (b"\x1b[2J", CASE_NO_REASON),
    ],
)
def test_bad_lines_are_counted_with_a_reason_that_does_not_quote_them(text, reason):
    out = TicketParser().feed(text + b"\n", 0.0)
    assert out == [BadFrame(reason)]


def rate_line(**fields) -> bytes:
    return line({"event": "rate", "case_no": "C1"} | fields)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("办" * 22 + "\r", CASE_NO_REASON),  # 22 characters, 66 bytes: too long for the QR token
        (rate_line(case_no="件" * 22), CASE_NO_REASON),
        (
            rate_line(item_code="码" * 22),
            "item_code is not 1-64 UTF-8 bytes of printable text without spaces",
        ),
        (
            line({"event": "call", "ticket": "号" * 11}),
            "ticket is not 1-32 UTF-8 bytes of printable text without spaces",
        ),
    ],
)
def test_fields_are_limited_in_utf8_bytes(data, reason):
    data = data.encode() if isinstance(data, str) else data
    assert TicketParser().feed(data, 0.0) == [BadFrame(reason)]


def test_the_longest_accepted_fields_fit_in_a_qr_token():
    assert QR_FIELD_BYTES is qrtoken.MAX_FIELD_BYTES == 64
    longest = "办" * 21 + "A"  # 64 bytes
    out = TicketParser().feed(rate_line(case_no=longest, item_code=longest), 0.0)
    assert out == [RateRequested(None, longest, longest, None, "queue")]
    token_fields = {"device_id": "T1", "window": "03", "staff_no": "0371", "issued_at": 0, "ttl_s": 60}
    assert qrtoken.issue_token(b"k", case_no=longest, item_code=longest, **token_fields)


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
    assert events(out) == [CardSwiped(em4100_frame(em)[1:-1].decode().upper())]


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


LINE_PARSERS = [CardLineParser, TicketParser, lambda: TicketParser("gb18030")]
LINE_IDS = ["card-line", "ticket-utf8", "ticket-gb18030"]
partial = st.binary(min_size=1, max_size=80).filter(lambda b: not set(b) & set(b"\r\n\t"))


@pytest.mark.parametrize("make_parser", LINE_PARSERS, ids=LINE_IDS)
@given(before=partial, cuts=cuts)
def test_a_partial_line_left_by_silence_is_dropped_not_glued_to_the_next(make_parser, before, cuts):
    parser = make_parser()
    assert parser.feed(before, 0.0) == []
    out = feed_in_chunks(parser, b"26DEFAE7\r\n", cuts, now=PARTIAL_LINE_SILENCE_S + 0.01)
    assert bad(out) == ["incomplete line dropped after silence"]
    assert len(events(out)) == 1  # the line alone: a card for the reader, a scanned code for the feed


@pytest.mark.parametrize("make_parser", LINE_PARSERS, ids=LINE_IDS)
@given(before=partial)
def test_a_partial_line_is_forgotten_when_the_device_reconnects(make_parser, before):
    parser = make_parser()
    parser.feed(before, 0.0)
    assert parser.reset() == [BadFrame("incomplete line dropped: device reconnected")]
    assert parser.reset() == []
    assert len(events(parser.feed(b"26DEFAE7\r\n", 0.0))) == 1


def test_a_line_sent_slowly_but_without_pauses_is_whole():
    parser = TicketParser()
    data = b"SP2026112800017\r"
    out = [o for i, b in enumerate(data) for o in parser.feed(bytes([b]), i * PARTIAL_LINE_SILENCE_S * 0.9)]
    assert out == [RateRequested(None, "SP2026112800017", None, None, "scanner")]


def test_em4100_partial_frame_is_forgotten_on_reconnect_but_not_the_card_on_the_reader():
    parser = Em4100Parser()
    parser.feed(WORKED_FRAME + WORKED_FRAME[:6], 0.0)
    assert parser.reset() == [BadFrame("incomplete frame dropped: device reconnected")]
    assert parser.feed(WORKED_FRAME[6:], 0.1) == [BadFrame("noise between frames")]
    assert parser.feed(WORKED_FRAME, 0.2) == []  # still lying there: no second swipe


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
