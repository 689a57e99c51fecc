"""The quarterly 回访 sample: drawn once with a recorded seed, drawn again from it by anyone, the call
outcomes appended; ``stats --verify`` draws every sample again."""

from __future__ import annotations

import figures_data as data
import pytest
from sqlalchemy import update

from commands.cli import main
from hub.config import FiguresConfig
from hub.figures import model as m
from hub.figures.sampling import SampleError, check_samples, draw, quarter_cases, record_call, sample
from hub.figures.store import FigureStore
from hub.figures.tables import sample_cases
from hub.storage import HubStore, database_url

CONFIG = FiguresConfig(sample_share=0.5, sample_min=2, sample_max=100)


@pytest.fixture
def figures(tmp_path):
    store = HubStore(database_url(tmp_path / "hub", None))
    store.add_phone_rating(dict(data.PHONE_C2))
    for device, events in ((data.W03, data.EVENTS_W03), (data.W05, data.EVENTS_W05)):
        store.ingest(device, events[0]["log_id"], events)
    yield FigureStore(store.engine)
    store.close()


def test_the_population_is_the_quarters_case_numbers(figures):
    assert [c.case_no for c in quarter_cases(figures, "2026Q4", "")] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert quarter_cases(figures, "2026Q3", "") == []


def test_drawn_once_with_its_seed_recorded_and_drawn_again_from_it(figures, tmp_path, capsys):
    s = draw(figures, CONFIG, "2026Q4", "督查甲")
    assert s["population"] == 6 and s["size"] == 3 and len(s["cases"]) == 3
    population = [c.case_no for c in quarter_cases(figures, "2026Q4", "")]
    assert [c["caseNo"] for c in s["cases"]] == m.draw_sample(population, int(s["seed"]), 3)
    assert s["populationDigest"] == m.population_digest(population)
    with pytest.raises(SampleError) as e:
        draw(figures, CONFIG, "2026Q4", "督查甲")
    assert e.value.status == 409
    c2 = next((c for c in s["cases"] if c["caseNo"] == "C2"), None)
    if c2 is not None:  # the sheet shows the rating the case got (here by phone)
        assert c2["satisfaction"] == 2 and c2["window"] == "03"
    assert check_samples(figures) == ([], [])
    assert main(["hub", "stats", "--verify", "--data", str(tmp_path / "hub")]) == 0


def test_call_outcomes_are_appended(figures):
    s = draw(figures, CONFIG, "2026Q4", "督查甲")
    case_no = s["cases"][0]["caseNo"]
    record_call(figures, "2026Q4", None, case_no, "科员乙", False, None, "无人接听")
    after = record_call(figures, "2026Q4", None, case_no, "科员乙", True, True, "满意，建议增加停车位")
    calls = next(c for c in after["cases"] if c["caseNo"] == case_no)["calls"]
    assert [(c["reached"], c["satisfied"]) for c in calls] == [(False, None), (True, True)]
    assert after["called"] == 1 and after["reached"] == 1 and after["satisfiedRate"] == 1.0
    for bad in [("x", None, ""), (True, None, ""), (False, True, ""), (True, True, "x" * 501)]:
        with pytest.raises(SampleError) as e:
            record_call(figures, "2026Q4", None, case_no, "u", *bad)
        assert e.value.status == 422
    with pytest.raises(SampleError) as e:
        record_call(figures, "2026Q4", None, "NOT-SAMPLED", "u", True, True, "")
    assert e.value.status == 404
    with pytest.raises(SampleError):
        sample(figures, "2026Q1")


def test_a_sample_changed_after_the_draw_is_caught(figures, tmp_path, capsys):
    s = draw(figures, CONFIG, "2026Q4", "督查甲")
    outside = sorted({"C1", "C2", "C3", "C4", "C5", "C6"} - {c["caseNo"] for c in s["cases"]})[0]
    with figures.engine.begin() as conn:  # swap a sampled case for a convenient one
        conn.execute(
            update(sample_cases)
            .where(sample_cases.c.case_no == s["cases"][0]["caseNo"])
            .values(case_no=outside)
        )
    problems, _ = check_samples(figures)
    assert problems and "not the ones its seed draws" in problems[0]
    assert main(["hub", "stats", "--verify", "--data", str(tmp_path / "hub")]) == 1
