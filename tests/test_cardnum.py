"""Card-number normalisation: every printed form of a card matches every other (docs/hardware.md worked examples)."""

import itertools

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.cardnum import card_keys, card_number
from drivers.card import em4100_frame

# One 125 kHz card (docs/hardware.md): EM data, its card number in decimal and 8H10D, and as an 8-hex UID.
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


def em4100_swipe(data_hex: str) -> str:
    """The card text an em4100 reader's frame for ``data_hex`` becomes: the 12 hex chars between STX and ETX."""
    return em4100_frame(data_hex)[1:-1].decode()


def test_an_em4100_swipe_is_exactly_one_card():
    assert em4100_swipe("13005D1DA5") == "13005D1DA5F6"
    assert card_keys("13005D1DA5F6") == {0x005D1DA5}
    assert em4100_swipe("0106102437") == "010610243704"  # all digits, still EM data by its length
    assert card_keys("010610243704") == {0x06102437}
    assert card_keys("13005D1DA5F7") == frozenset()  # a wrong checksum is no card


@pytest.mark.parametrize(
    ("roster", "swipe"),
    [
        ("0006102437", em4100_swipe("0106102437")),  # decimal 0x005D1DA5 is not EM data 0x06102437
        ("0006102437", "37241006"),  # nor the UID whose reversed bytes are 0x06102437
        ("0012345678", "12345678"),  # decimal 0x00BC614E is not UID 0x12345678
        ("0012345678", em4100_swipe("0012345678")),
    ],
)
def test_ten_digits_in_the_roster_are_decimal_not_em_data(roster, swipe):
    assert not card_keys(roster) & card_keys(swipe)


def test_ten_characters_that_cannot_be_decimal_are_em_data():
    assert card_keys("5000000001") == {1}  # over 2**32 - 1: only EM data (version 0x50) is left
    assert card_keys("0000000099") == {99, 99 << 24}


def test_different_cards_do_not_match():
    for a, b in itertools.product(EM_CARD, ["13005D1DA6", "0006102438", "093,07590", "26DEFAE7"]):
        assert not card_keys(a) & card_keys(b), (a, b)


def roster_forms(n: int) -> list[str]:
    """The forms of ``n`` a roster may hold that denote ``n`` (ten-digit EM data reads as decimal)."""
    return [f for f in forms(n) if n in card_keys(f) or _reversed(n) in card_keys(f)]


def swipe_forms(n: int, version: int) -> list[str]:
    """What the readers send for card ``n``: an em4100 frame, or a line reader's text in any setting."""
    return [em4100_swipe(f"{version:02X}{n:08X}"), *forms(n)[1:5]]


def _reversed(n: int) -> int:
    return int.from_bytes(n.to_bytes(4, "big"), "little")


u32 = st.integers(0, 2**32 - 1)


@given(n=u32, m=u32, version=st.integers(0, 255))
def test_two_different_cards_never_match(n, m, version):
    assume(m not in (n, _reversed(n)))  # byte order is a reader setting: a UID and its reverse are one card
    for roster_form in roster_forms(n):
        if "," in roster_form and n & 0xFFFFFF in (m & 0xFFFFFF, _reversed(m) & 0xFFFFFF):
            continue  # 8H10D holds only the low 24 bits, as documented
        for swiped in swipe_forms(m, version):
            assert not card_keys(roster_form) & card_keys(swiped), (roster_form, swiped)


@given(n=u32, version=st.integers(0, 255))
def test_an_em4100_swipe_matches_every_roster_form_of_its_card(n, version):
    swiped = card_keys(em4100_swipe(f"{version:02X}{n:08X}"))
    assert swiped == {n}
    for roster_form in roster_forms(n):
        assert card_keys(roster_form) & swiped, roster_form


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


@given(u32, st.integers(0, 255), st.data())
def test_any_card_matches_itself_across_forms(n, version, data):
    roster_form = data.draw(st.sampled_from(roster_forms(n)))
    swiped_form = data.draw(st.sampled_from(swipe_forms(n, version)))  # readers never send 8H10D
    assert {n, _reversed(n)} & card_keys(swiped_form)
    assert card_keys(roster_form) & card_keys(swiped_form)
