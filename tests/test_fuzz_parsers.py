"""Fuzzing the serial parsers with structured hostile input (issue 10): JSON messages whose fields are any
Unicode text, lone surrogates included, between valid lines. Whatever arrives, no exception leaves a parser,
each bad line is one BadFrame, and every valid line around it still gets through.

CI runs these at the default example count; ``HYPOTHESIS_PROFILE=fuzz`` runs them longer.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card import CardLineParser, Em4100Parser
from drivers.events import BadFrame, CardSwiped, KeyPressed, RateRequested, TicketCalled
from drivers.keypad import KeypadParser
from drivers.ticket import TicketParser

VALID_BEFORE = b'{"event": "call", "ticket": "A1"}\n'
VALID_AFTER = b'{"event": "rate", "case_no": "C-2"}\n'
EXPECTED_AROUND = [TicketCalled("A1"), RateRequested(None, "C-2", None, None, "queue")]


def test_a_lone_surrogate_in_the_ticket_feed_is_one_bad_frame_and_nothing_else_is_lost():
    attack = b'{"event":"rate","case_no":"\\ud800"}\n'
    out = TicketParser().feed(VALID_BEFORE + attack + VALID_AFTER, 0.0)
    assert out == [EXPECTED_AROUND[0], BadFrame(out[1].reason), EXPECTED_AROUND[1]]
    assert "case_no" in out[1].reason


# Any code point, surrogates (category Cs) and controls included: what json.loads can hand the parser.
# (st.text never yields surrogates, whatever its alphabet: join characters instead.)
any_char = st.one_of(st.characters(), st.characters(categories=["Cs"]))
any_text = st.lists(any_char, max_size=40).map("".join)
json_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text, st.lists(any_text))
# Valid values often enough that a hostile one in a later field is reached.
field_value = st.one_of(st.sampled_from(["A1", "C-1", "不动产登记"]), any_text, json_value)
messages = st.fixed_dictionaries(
    {"event": st.one_of(st.sampled_from(["call", "rate", "rate", "pause"]), json_value)},
    optional={f: field_value for f in ("ticket", "case_no", "item_code", "item_name", "other")},
)


@given(message=messages)
def test_any_json_message_is_an_event_or_one_bad_frame_and_the_lines_around_it_survive(message):
    attack = json.dumps(message).encode("ascii")  # ascii: surrogates travel as \\udxxx escapes
    if len(attack) > 1000 or b"\n" in attack or b"\r" in attack or b"\t" in attack:
        return  # the line framing's concern, fuzzed by the byte-level test
    out = TicketParser().feed(VALID_BEFORE + attack + b"\n" + VALID_AFTER, 0.0)
    assert out[0] == EXPECTED_AROUND[0] and out[-1] == EXPECTED_AROUND[1]
    assert len(out) == 3


@given(text=any_text)
def test_any_scanned_text_is_a_case_or_one_bad_frame(text):
    data = text.encode("utf-8", "surrogatepass")
    if set(data) & set(b"\r\n\t") or len(data) > 1000:
        return
    out = TicketParser().feed(VALID_BEFORE + data + b"\n" + VALID_AFTER, 0.0)
    assert out[0] == EXPECTED_AROUND[0] and out[-1] == EXPECTED_AROUND[1]
    assert len(out) in (2, 3)  # 2: a blank line means nothing


@settings(max_examples=300)
@given(data=st.binary(max_size=200))
def test_card_and_keypad_parsers_take_any_bytes_and_keep_the_next_frame(data):
    for make, good, expected in (
        (CardLineParser, b"\n26DEFAE7\r\n", CardSwiped("26DEFAE7")),
        (Em4100Parser, b"\x0213005D1DA5F6\x03", CardSwiped("13005D1DA5F6")),
        (KeypadParser, b"\n4\r\n", KeyPressed(4)),
    ):
        parser = make()
        out = parser.feed(data, 0.0) + parser.feed(good, 100.0)  # later: past stalls and repeat holds
        assert out[-1] == expected
