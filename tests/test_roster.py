"""The staff roster: the local CSV and the hub's cached roster, found by a card in any printed form."""

from pathlib import Path

import pytest
from PIL import Image

from core.store import EventLog
from kiosk.flow import Staff
from kiosk.roster import Roster, RosterEntry

HEADER = "card,staff_no,name,title,photo\n"
# One card in the forms readers print it (docs/hardware.md): EM4100 data, decimal, 8H10D.
EM_DATA, EM_DECIMAL, EM_8H10D = "13005D1DA5", "0006102437", "093,07589"
# One Mifare UID as hex, byte-reversed hex, and the decimals of each.
UID_HEX, UID_REVERSED, UID_DECIMAL, UID_REVERSED_DECIMAL = "26DEFAE7", "E7FADE26", "0652147431", "3891977766"


def write_roster(folder: Path, body: str, *, encoding: str = "utf-8", header: str = HEADER) -> Path:
    path = folder / "roster.csv"
    path.write_bytes((header + body).encode(encoding))
    return path


@pytest.fixture
def cached_roster(tmp_path):
    """The hub roster as the sync agent leaves it in the store."""
    with EventLog(tmp_path / "kiosk.db") as log:
        log.replace_roster(
            "v7",
            [
                {"card": UID_HEX, "staff_no": "0500", "name": "赵六", "title": "", "photo": b"hub-photo"},
                {
                    "card": "0000000099",
                    "staff_no": "0371",
                    "name": "王晓燕（中心）",
                    "title": "主任",
                    "photo": None,
                },
            ],
        )
        return log.roster()


@pytest.mark.parametrize("swipe", [EM_DATA, EM_DECIMAL, EM_8H10D, EM_DATA.lower()])
def test_a_card_matches_in_whichever_form_the_reader_sends(tmp_path, swipe):
    roster = Roster.load(write_roster(tmp_path, f"{EM_DECIMAL},0371,王晓燕,科员,\n"))
    assert roster.find(swipe) == Staff("0371", "王晓燕", "科员", None)


@pytest.mark.parametrize("written", [UID_HEX, UID_REVERSED, UID_DECIMAL, UID_REVERSED_DECIMAL])
def test_a_uid_written_in_any_form_matches_the_reader(tmp_path, written):
    roster = Roster.load(write_roster(tmp_path, f"{written},0372,李明,,\n"))
    assert roster.find(UID_HEX).staff_no == "0372"
    assert roster.find(UID_REVERSED).staff_no == "0372"


def test_photo_is_read_relative_to_the_csv_and_bom_is_accepted(tmp_path):
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (30, 40), "red").save(tmp_path / "photos" / "0371.png")
    path = write_roster(tmp_path, f"{EM_DATA},0371,王晓燕,科员,photos/0371.png\n", encoding="utf-8-sig")
    roster = Roster.load(path)
    assert roster.find(EM_DATA).photo == (tmp_path / "photos" / "0371.png").read_bytes()
    assert roster.problems == []


def test_a_gbk_file_from_excel_is_read(tmp_path):
    roster = Roster.load(write_roster(tmp_path, f"{EM_DATA},0371,王晓燕,科员,\n", encoding="gbk"))
    assert roster.find(EM_DATA).name == "王晓燕"


def test_bad_rows_are_reported_and_the_others_still_work(tmp_path):
    body = (
        f"{EM_DATA},0371,王晓燕,科员,missing.png\n"  # kept, without its photo
        "not-a-card,0372,李明,,\n"
        f"{UID_HEX},,无工号,,\n"
        f"{UID_HEX},0373,张三,,,extra\n"
        f"{EM_DECIMAL},0374,重复,,\n"  # the first row's card in another form
        f"{UID_REVERSED},0375,孙七,,\n"
    )
    roster = Roster.load(write_roster(tmp_path, body))
    assert len(roster) == 2
    assert roster.find(EM_DATA) == Staff("0371", "王晓燕", "科员", None)
    assert roster.find(UID_HEX).staff_no == "0375"
    problems = "\n".join(roster.problems)
    for line, words in [(2, "missing.png"), (3, "not a card number"), (4, "required"), (5, "more cells")]:
        assert f"roster.csv line {line}: " in problems and words in problems
    assert "roster.csv line 6: card is already in the roster (roster.csv line 2)" in problems
    assert len(roster.problems) == 5


def test_problems_name_the_file_and_line_never_the_card_number(tmp_path):
    body = f"not-a-card,0372,李明,,\n{EM_DATA},0371,王晓燕,,\n{EM_DECIMAL},0374,重复,,\n"
    roster = Roster.load(write_roster(tmp_path, body), [{"card": "zz-77", "staff_no": "9", "name": "x"}])
    assert roster.problems == [
        "roster.csv line 2: card is not a card number",
        "roster.csv line 4: card is already in the roster (roster.csv line 3)",
        "hub roster entry 1: card is not a card number",
    ]


def test_a_header_without_the_required_columns_leaves_only_the_hub_roster(tmp_path, cached_roster):
    path = write_roster(tmp_path, f"{EM_DATA},王晓燕\n", header="card,name\n")
    roster = Roster.load(path, cached_roster)
    assert roster.find(EM_DATA) is None
    assert roster.find(UID_HEX).staff_no == "0500"
    assert roster.problems == [f"{path}: header lacks staff_no (expected card,staff_no,name,title,photo)"]


def test_unknown_columns_are_reported_but_the_rows_are_used(tmp_path):
    roster = Roster.load(
        write_roster(tmp_path, f"{EM_DATA},0371,王晓燕,X\n", header="Card,Staff_No,Name,Phone\n")
    )
    assert roster.find(EM_DATA).staff_no == "0371"
    assert roster.problems == [f"{tmp_path / 'roster.csv'}: ignoring unknown columns phone"]


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path, cached_roster):
    roster = Roster.load(tmp_path / "absent.csv", cached_roster)
    assert len(roster) == 2
    assert "absent.csv: cannot read" in roster.problems[0]


def test_the_hub_roster_comes_with_photos_from_the_store(cached_roster):
    roster = Roster.load(None, cached_roster)
    assert roster.find(UID_REVERSED_DECIMAL) == Staff("0500", "赵六", "", b"hub-photo")
    assert roster.by_staff_no("0371") == Staff("0371", "王晓燕（中心）", "主任", None)


def test_the_local_file_overrides_the_hub_for_the_same_card_and_staff_number(tmp_path, cached_roster):
    path = write_roster(tmp_path, f"{UID_DECIMAL},0377,现场调整,,\n{EM_DATA},0371,王晓燕,科员,\n")
    roster = Roster.load(path, cached_roster)
    assert roster.find(UID_HEX).staff_no == "0377"
    assert roster.find("0000000099").name == "王晓燕（中心）"  # the hub's card still works
    assert roster.by_staff_no("0371").name == "王晓燕"


def test_a_swipe_matching_two_members_is_nobody():
    # Two EM4100 data forms that denote one UID in each byte order; the 8-hex swipe means either.
    roster = Roster(
        [RosterEntry("0026DEFAE7", Staff("1", "甲")), RosterEntry("00E7FADE26", Staff("2", "乙"))]
    )
    assert roster.problems == []
    assert roster.find(UID_HEX) is None
    assert roster.find("0026DEFAE7").staff_no == "1"


def test_hub_rows_without_staff_number_are_reported():
    roster = Roster.load(None, [{"card": EM_DATA, "staff_no": "", "name": "x", "title": None, "photo": None}])
    assert len(roster) == 0 and roster.problems == ["hub roster entry 1: staff_no and name are required"]


@pytest.mark.parametrize("swipe", ["", "garbage", "12345"])
def test_text_that_is_no_card_finds_nobody(tmp_path, swipe):
    roster = Roster.load(write_roster(tmp_path, f"{EM_DATA},0371,王晓燕,,\n"))
    assert roster.find(swipe) is None


# --- the one rule of core.roster, shared with the hub's import -------------------------------------


def test_bytes_neither_utf8_nor_gb18030_are_refused_not_guessed(tmp_path, cached_roster):
    path = tmp_path / "roster.csv"
    path.write_bytes(f"card,staff_no,name\n{EM_DATA},0371,".encode() + b"\xfe\xff\n")
    roster = Roster.load(path, cached_roster)
    assert roster.find(EM_DATA) is None  # no name made of replacement characters
    assert roster.problems == [f"{path}: neither UTF-8 nor GB18030 text (byte 35)"]


def test_a_photo_too_large_or_not_an_image_is_left_out_and_named(tmp_path):
    from core.photo import MAX_PHOTO_BYTES

    (tmp_path / "big.png").write_bytes(b"\x89PNG" + bytes(MAX_PHOTO_BYTES))
    (tmp_path / "notes.txt").write_bytes(b"not a picture")
    body = f"{EM_DATA},0371,王晓燕,,big.png\n{UID_HEX},0372,李明,,notes.txt\n"
    roster = Roster.load(write_roster(tmp_path, body))
    assert roster.find(EM_DATA).photo is None and roster.find(UID_HEX).photo is None
    assert roster.problems == [
        f"roster.csv line 2: photo big.png is {MAX_PHOTO_BYTES + 4} bytes, at most {MAX_PHOTO_BYTES}",
        "roster.csv line 3: photo notes.txt is not an image",
    ]


def test_the_hub_import_refuses_what_the_kiosk_leaves_out(tmp_path):
    from hub.cli import UsageError, read_roster_csv

    body = f"{EM_DATA},0371,王晓燕,,\n{EM_DECIMAL},0374,重复,,\n"
    with pytest.raises(UsageError, match="line 3: card is already in the roster"):
        read_roster_csv(write_roster(tmp_path, body))
