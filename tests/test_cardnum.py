"""Card-number normalisation: every printed form of a card matches every other (domain.md worked examples)."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.cardnum import card_keys, card_number

# One 125 kHz card (domain.md): EM data, its card number in decimal and 8H10D, and as an 8-hex UID.
EM_CARD = ["13005D1DA5", "13005d1da5", "0006102437", "093,07589", "005D1DA5"]
# One 13.56 MHz card as four reader settings print its UID.
MIFARE_CARD = ["26DEFAE7", "E7FADE26", "0652147431", "3891977766", "26defae7"]


def forms(n: int) -> list[str]:
    """Every form a reader may print for card number ``n``."""
    r = int.from_bytes(n.to_bytes(4, "big"), "little")
    return [
        f"00{n:08X}",
        f"{n:08X}",
        f"{r:08X}",
        f"{n:010d}",
        f"{r:010d}",
        f"{n >> 16 & 0xFF:03d},{n & 0xFFFF:05d}",
    ]


@pytest.mark.parametrize("card", [EM_CARD, MIFARE_CARD], ids=["em4100", "mifare"])
def test_every_form_of_a_card_matches_every_other(card):
    for roster_form, swiped_form in itertools.permutations(card, 2):
        assert card_keys(roster_form) & card_keys(swiped_form), (roster_form, swiped_form)


def test_different_cards_do_not_match():
    for a, b in itertools.product(EM_CARD, ["13005D1DA6", "0006102438", "093,07590", "26DEFAE7"]):
        assert not card_keys(a) & card_keys(b), (a, b)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello",
        "12345",
        "005D1DA",
        "13005D1DA5F",
        "GGGGGGGGGG",
        "256,00001",
        "093,65536",
        "0x5D1DA5",
    ],
)
def test_text_that_is_no_card_number_has_no_keys(text):
    assert card_keys(text) == frozenset()


def test_surrounding_whitespace_is_ignored():
    assert card_keys(" 26DEFAE7\r\n") == card_keys("26DEFAE7")


def test_card_number_reads_the_form_a_person_most_likely_means():
    assert card_number("0006102437") == 0x005D1DA5  # ten digits: decimal, not EM hex
    assert card_number("13005D1DA5") == 0x005D1DA5
    assert card_number("26DEFAE7") == 0x26DEFAE7
    assert card_number("093,07589") == 0x5D1DA5
    assert card_number("nonsense") is None


@given(st.integers(0, 2**32 - 1), st.data())
def test_any_card_matches_itself_across_forms(n, data):
    printed = forms(n)
    roster_form = data.draw(st.sampled_from(printed))
    swiped_form = data.draw(st.sampled_from(printed[:5]))  # readers send the full number, never 8H10D
    assert n in card_keys(swiped_form) or int.from_bytes(n.to_bytes(4, "big"), "little") in card_keys(
        swiped_form
    )
    assert card_keys(roster_form) & card_keys(swiped_form)
