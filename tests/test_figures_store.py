"""The figures over a real hub database: folded lazily from what the hub stored, the same whatever the
batches, and ``kiosk hub stats --verify`` catching an edited rollup."""

from __future__ import annotations

import json

import figures_data as data
import pytest
from sqlalchemy import update

from commands.cli import main
from hub.figures import model as m
from hub.figures.store import FigureStore
from hub.figures.tables import cells, device_days
from hub.figures.views import stats_json
from hub.storage import HubStore, database_url

KEEP_OF = {"dept": (), "window": (), "day": ("day",), "month": ("month",)}


@pytest.fixture
def store(tmp_path):
    s = HubStore(database_url(tmp_path / "hub", None))
    yield s
    s.close()


def load_all(store: HubStore, cut: int | None = None) -> None:
    store.add_phone_rating(dict(data.PHONE_C2))
    for device, events in ((data.W03, data.EVENTS_W03), (data.W05, data.EVENTS_W05)):
        log_id = events[0]["log_id"]
        if cut is None:
            assert store.ingest(device, log_id, events).acked_seq == len(events)
        else:
            for lo in range(0, len(events), cut):
                store.ingest(device, log_id, events[lo : lo + cut])


def by(figures: FigureStore, dimension: str, **filters) -> dict:
    keep = {"staff": ("staff_no",), "item": ("item_code",), "day": ("day",), "month": ("month",)}.get(
        dimension, ()
    )
    body = stats_json(figures.snapshot(None, None, keep=keep), dimension, None, None, m.Filters(**filters))
    return body


def test_the_hand_computed_record_as_served(store):
    load_all(store)
    figures = FigureStore(store.engine)
    body = by(figures, "window")
    rows = {r["key"]: r for r in body["rows"]}
    assert {
        k: (r["services"], r["rated"], r["phone"], r["good"], r["bad"], r["skipped"], r["walkin"])
        for k, r in rows.items()
    } == {
        "03": (5, 4, 1, 2, 2, 2, 1),
        "05": (2, 2, 0, 1, 1, 0, 0),
    }
    assert rows["03"]["label"] == "03号窗口"
    assert rows["03"]["participationRate"] == pytest.approx(4 / 5)
    assert body["total"]["services"] == 7 and body["total"]["rated"] == 6
    got = {r["key"]: (r["services"], r["rated"], r["good"], r["bad"]) for r in by(figures, "staff")["rows"]}
    assert got == {k: v[:4] for k, v in data.EXPECTED_BY_STAFF.items()}
    got = {r["key"]: (r["services"], r["rated"], r["good"], r["bad"]) for r in by(figures, "item")["rows"]}
    assert got == {k: v[:4] for k, v in data.EXPECTED_BY_ITEM.items()}
    got = {r["key"]: r["label"] for r in by(figures, "staff")["rows"]}
    assert got == {"0371": "王晓燕", "0402": "李强", "": "未签到"}


def test_every_row_carries_the_head_of_the_record_it_was_computed_from(store):
    figures = FigureStore(store.engine)
    empty = by(figures, "day")
    assert empty["rows"] == [] and empty["total"]["satisfactionRate"] is None
    load_all(store)
    body = by(figures, "day")
    head = body["record"]
    assert head["logs"] == 2 and head["events"] == len(data.EVENTS_W03) + len(data.EVENTS_W05)
    assert head["phoneRatings"] == 1
    assert all(r["head"] == head["head"] for r in body["rows"]) and head["head"] != empty["record"]["head"]


@pytest.mark.parametrize("cut", [1, 2, 5])
def test_folding_batch_by_batch_gives_what_one_fold_gives(tmp_path, store, cut):
    figures = FigureStore(store.engine)
    store.add_phone_rating(dict(data.PHONE_C2))
    for device, events in ((data.W03, data.EVENTS_W03), (data.W05, data.EVENTS_W05)):
        for lo in range(0, len(events), cut):
            store.ingest(device, events[0]["log_id"], events[lo : lo + cut])
            figures.refresh()  # a query between every batch
    other = HubStore(database_url(tmp_path / "other", None))
    load_all(other)
    want = by(FigureStore(other.engine), "staff")
    got = by(figures, "staff")
    strip = lambda b: [{k: v for k, v in r.items() if k != "head"} for r in b["rows"]]  # noqa: E731
    assert strip(got) == strip(want)
    assert figures.verify() == []
    other.close()


def test_verify_catches_an_edited_rollup(store, tmp_path, capsys):
    load_all(store)
    figures = FigureStore(store.engine)
    assert figures.verify() == []
    data_dir = str(tmp_path / "hub")
    assert main(["hub", "stats", "--verify", "--data", data_dir]) == 0
    assert "agree with the record" in capsys.readouterr().out
    with store.engine.begin() as conn:  # someone makes window 03 look better
        conn.execute(
            update(cells)
            .where(
                (cells.c.device_id == data.W03) & (cells.c.item_code == "I1") & (cells.c.staff_no == "0371")
            )
            .values(good=cells.c.good + 1, bad=cells.c.bad - 1, s1=0, s5=cells.c.s5 + 1)
        )
    problems = figures.verify()
    assert len(problems) == 1 and "good served 2 but the record says 1" in problems[0]
    assert main(["hub", "stats", "--verify", "--data", data_dir, "--period", "2026-11"]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENCE 2026-11-02 device XHA-W03 staff 0371 事项 I1" in out
    # Outside the edited period the check passes.
    assert main(["hub", "stats", "--verify", "--data", data_dir, "--period", "2026-10"]) == 0
    capsys.readouterr()
    # --json: the same verdict for a monitoring script, and the same exit code.
    assert main(["hub", "stats", "--verify", "--json", "--data", data_dir, "--period", "2026-11"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["ok"] is False and verdict["first"] == "2026-11-01" and verdict["last"] == "2026-11-30"
    assert len(verdict["differences"]) == 1 and verdict["differences"][0].startswith("2026-11-02 device")
    assert main(["hub", "stats", "--verify", "--json", "--data", data_dir, "--period", "2026-10"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_the_cells_per_day_and_device_are_the_cells_summed_and_verified(store):
    """fig_device_days (what a figure by section, window, day or month reads) is folded with the cells,
    serves the same figures, and ``stats --verify`` catches an edited, deleted or invented row."""
    load_all(store)
    figures = FigureStore(store.engine)
    assert figures.verify() == []
    for by in ("dept", "window", "day", "month"):
        whole = figures.snapshot("2026-11-01", "2026-11-30", keep=KEEP_OF[by], refresh=False)
        cut = figures.snapshot("2026-11-01", "2026-11-30", keep=KEEP_OF[by] + ("staff_no",), refresh=False)
        a, total = m.group(whole.cells.items(), by, whole.sections, whole.labels)
        b, _ = m.group(cut.cells.items(), by, cut.sections, cut.labels)  # read from the cells
        assert {k: v.as_dict() for k, v in a.items()} == {k: v.as_dict() for k, v in b.items()}, by
        assert total.rated > 0
    with store.engine.begin() as conn:
        conn.execute(update(device_days).where(device_days.c.device_id == data.W03).values(good=0))
        conn.execute(device_days.delete().where(device_days.c.device_id == data.W05))
        conn.execute(
            device_days.insert().values(
                day="2026-11-04", device_id="GHOST", **{f: 1 for f in m.ROLLUP_FIELDS}
            )
        )
    problems = figures.verify()
    for device in (data.W03, data.W05, "GHOST"):
        assert any(device in p and "all staff and 事项" in p for p in problems), device


def test_verify_catches_a_deleted_cell_and_an_invented_one(store):
    load_all(store)
    figures = FigureStore(store.engine)
    figures.refresh()
    with store.engine.begin() as conn:
        conn.execute(cells.delete().where(cells.c.device_id == data.W05))
        conn.execute(
            cells.insert().values(
                day="2026-11-04",
                device_id="GHOST",
                staff_no="",
                item_code="",
                **{f: 1 for f in m.ROLLUP_FIELDS},
            )
        )
    problems = figures.verify()
    assert any("XHA-W05" in p for p in problems) and any("GHOST" in p for p in problems)


def test_stats_command_prints_a_table_and_json(store, tmp_path, capsys):
    load_all(store)
    data_dir = str(tmp_path / "hub")
    assert main(["hub", "stats", "--data", data_dir, "--by", "window", "--period", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert "03号窗口" in out and "80.0%" in out and "record head" in out
    assert (
        main(
            [
                "hub",
                "stats",
                "--data",
                data_dir,
                "--by",
                "day",
                "--json",
                "--from",
                "2026-11-03",
                "--to",
                "2026-11-03",
            ]
        )
        == 0
    )
    body = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in body["rows"]] == ["2026-11-03"] and body["total"]["services"] == 2
    assert main(["hub", "stats", "--data", data_dir, "--period", "2026-13"]) == 2
    assert "--period" in capsys.readouterr().err


def test_two_processes_folding_at_once_fold_each_event_once(store, tmp_path):
    """The hub and `kiosk hub stats --verify` may fold at the same moment: each on its own connection
    (as two processes), neither counts an event twice nor fails."""
    import threading

    from sqlalchemy import create_engine

    url = database_url(tmp_path / "hub", None)
    engines = [create_engine(url, connect_args={"timeout": 30}) for _ in range(4)]
    folders = [FigureStore(e) for e in engines]
    errors = []

    def fold_all_at_once():
        barrier = threading.Barrier(len(folders))

        def fold(f):
            barrier.wait()
            try:
                f.refresh()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=fold, args=(f,)) for f in folders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    store.add_phone_rating(dict(data.PHONE_C2))
    for device, events in ((data.W03, data.EVENTS_W03), (data.W05, data.EVENTS_W05)):
        store.ingest(device, events[0]["log_id"], events[:3])
    fold_all_at_once()  # the first fold of each log
    for device, events in ((data.W03, data.EVENTS_W03), (data.W05, data.EVENTS_W05)):
        store.ingest(device, events[0]["log_id"], events[3:])
    fold_all_at_once()  # folds that go on from a cursor
    assert errors == []
    body = by(FigureStore(store.engine), "day")
    assert body["total"]["services"] == 7 and body["total"]["rated"] == 6
    assert FigureStore(store.engine).verify() == []
    for e in engines:
        e.dispose()
