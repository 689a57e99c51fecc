"""The quarterly 回访 sample (第十七条): each quarter a random share of all the quarter's cases is phoned
and asked whether the citizen was satisfied.

The population is every case number opened in the quarter (``case_opened`` with a 办件编号; a walk-in
without one cannot be traced to a citizen) across the bureau; each section calls its own cases. The sample is drawn with a
random 64-bit seed that is recorded with the population's size and digest, so anyone can draw it again
(``model.draw_sample``) and get the same cases. The call sheet is kept as drawn; each call's outcome
(reached, satisfied, comment) is appended, never changed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from ..config import FiguresConfig
from ..schema import events, phone_ratings, ratings
from . import model as m
from .store import FigureStore, read_labels, read_sections
from .tables import sample_calls, sample_cases, samples

MAX_COMMENT_CHARS = 500


class SampleError(Exception):
    """A request the sample cannot take: ``status`` 404, 409 or 422, and why."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Case:
    case_no: str
    device_id: str
    day: str
    item_code: str | None
    item_name: str | None


def quarter_cases(figures: FigureStore, quarter: str, scope: str) -> list[Case]:
    """The distinct case numbers opened in ``quarter`` (the first opening of each), in section ``scope``
    ("" for the bureau)."""
    first, last = m.quarter_range(quarter)
    found: dict[str, Case] = {}
    with figures.engine.connect() as conn:
        history, _ = read_sections(conn)
        sections = m.Sections(history)
        rows: Any = conn.execute(
            select(events.c.device_id, events.c.at, events.c.payload)
            .where(
                (events.c.type == "case_opened") & (events.c.at >= first) & (events.c.at < _day_after(last))
            )
            .order_by(events.c.at)
        )
        for device_id, at, payload in rows:
            p = json.loads(payload)
            case_no = p.get("case_no") if isinstance(p, dict) else None
            if not isinstance(case_no, str) or not case_no or case_no in found:
                continue
            day = at[:10]
            if scope and sections.of(device_id, day) != scope:
                continue
            found[case_no] = Case(case_no, device_id, day, p.get("item_code"), p.get("item_name"))
    return [found[k] for k in sorted(found)]


def _day_after(day: str) -> str:
    return day + "~"  # sorts after every time of that day ("~" follows the digits and "T")


def draw(
    figures: FigureStore, config: FiguresConfig, quarter: str, by_user: str, scope: str = ""
) -> dict[str, Any]:
    """Draw the quarter's sample once (409 if it was drawn), record the seed, keep the call sheet."""
    m.quarter_range(quarter)
    figures.refresh()  # the windows' numbers come from the ratings folded so far
    population = quarter_cases(figures, quarter, scope)
    keys = [c.case_no for c in population]
    size = m.sample_size(len(keys), config.sample_share, config.sample_min, config.sample_max)
    seed = secrets.randbits(64)
    chosen = set(m.draw_sample(keys, seed, size))
    by_case = {c.case_no: c for c in population}
    with figures.engine.begin() as conn:
        names = read_labels(conn)
        history, _ = read_sections(conn)
        sections = m.Sections(history)
        try:
            sample_id = conn.execute(  # type: ignore[index]
                insert(samples).values(
                    quarter=quarter,
                    scope=scope,
                    seed=str(seed),
                    share=repr(config.sample_share),
                    size=len(chosen),
                    population=len(keys),
                    population_digest=m.population_digest(keys),
                    drawn_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    drawn_by=by_user,
                )
            ).inserted_primary_key[0]
        except IntegrityError:
            raise SampleError(409, f"the sample of {quarter} was drawn already") from None
        rows = []
        for case_no in sorted(chosen):
            c = by_case[case_no]
            staff, satisfaction = _rating_of(conn, c)
            rows.append(
                {
                    "sample_id": sample_id,
                    "case_no": case_no,
                    "device_id": c.device_id,
                    "day": c.day,
                    "window": m.window_of(names, c.device_id),
                    "dept": sections.of(c.device_id, c.day),
                    "staff_no": staff,
                    "item_code": c.item_code,
                    "item_name": c.item_name,
                    "satisfaction": satisfaction,
                }
            )
        if rows:
            conn.execute(insert(sample_cases), rows)
    return sample(figures, quarter, scope=scope)


def _rating_of(conn, case: Case) -> tuple[str | None, int | None]:
    """Who served the case and the rating it got (at the window, else by phone), if any."""
    for table in (ratings, phone_ratings):
        row = conn.execute(
            select(table.c.staff_no, table.c.satisfaction)
            .where((table.c.device_id == case.device_id) & (table.c.case_no == case.case_no))
            .limit(1)
        ).first()
        if row is not None:
            return row.staff_no, row.satisfaction
    return None, None


def sample(
    figures: FigureStore, quarter: str, only_dept: str | None = None, scope: str = ""
) -> dict[str, Any]:
    """The quarter's sample with its call sheet (the cases of section ``only_dept``, or all) and each
    case's calls; SampleError 404 if not drawn."""
    with figures.engine.connect() as conn:
        _, section_names = read_sections(conn)
        head = conn.execute(
            select(samples).where((samples.c.quarter == quarter) & (samples.c.scope == scope))
        ).first()
        if head is None:
            raise SampleError(404, f"no sample of {quarter} was drawn")
        calls: dict[str, list[dict[str, Any]]] = {}
        for r in conn.execute(
            select(sample_calls).where(sample_calls.c.sample_id == head.id).order_by(sample_calls.c.id)
        ):
            calls.setdefault(r.case_no, []).append(
                {
                    "at": r.at,
                    "user": r.by_user,
                    "reached": bool(r.reached),
                    "satisfied": None if r.satisfied is None else bool(r.satisfied),
                    "comment": r.comment,
                }
            )
        cases = [
            {
                "caseNo": r.case_no,
                "deviceId": r.device_id,
                "day": r.day,
                "window": r.window,
                "dept": r.dept,
                "deptName": section_names.get(r.dept or "", r.dept),
                "staffNo": r.staff_no,
                "taskCode": r.item_code,
                "taskName": r.item_name,
                "satisfaction": r.satisfaction,
                "calls": calls.get(r.case_no, []),
            }
            for r in conn.execute(
                select(sample_cases)
                .where(sample_cases.c.sample_id == head.id)
                .order_by(sample_cases.c.case_no)
            )
            if only_dept is None or r.dept == only_dept
        ]
    reached = [c for c in cases if c["calls"] and c["calls"][-1]["reached"]]
    satisfied = [c for c in reached if c["calls"][-1]["satisfied"]]
    return {
        "id": head.id,
        "quarter": head.quarter,
        "scope": head.scope,
        "seed": head.seed,
        "share": float(head.share),
        "size": head.size,
        "population": head.population,
        "populationDigest": head.population_digest,
        "drawnAt": head.drawn_at,
        "drawnBy": head.drawn_by,
        "called": sum(1 for c in cases if c["calls"]),
        "reached": len(reached),
        "satisfied": len(satisfied),
        "satisfiedRate": m.ratio(len(satisfied), len(reached)),
        "cases": cases,
    }


def record_call(
    figures: FigureStore,
    quarter: str,
    only_dept: str | None,
    case_no: str,
    by_user: str,
    reached: Any,
    satisfied: Any,
    comment: Any,
) -> dict[str, Any]:
    """Append one call's outcome; 404 for a case not in the sample, 422 for bad input."""
    if not isinstance(reached, bool):
        raise SampleError(422, "reached must be true or false")
    if reached and not isinstance(satisfied, bool):
        raise SampleError(422, "satisfied must be true or false when the citizen was reached")
    if not reached and satisfied is not None:
        raise SampleError(422, "satisfied is only asked of a citizen who was reached")
    comment = "" if comment is None else comment
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS or "\x00" in comment:
        raise SampleError(422, f"comment: text of at most {MAX_COMMENT_CHARS} characters")
    with figures.engine.begin() as conn:
        head = conn.execute(
            select(samples.c.id).where((samples.c.quarter == quarter) & (samples.c.scope == ""))
        ).scalar()
        if head is None:
            raise SampleError(404, f"no sample of {quarter} was drawn")
        dept = conn.execute(
            select(sample_cases.c.dept).where(
                (sample_cases.c.sample_id == head) & (sample_cases.c.case_no == case_no)
            )
        ).first()
        if dept is None or (only_dept is not None and dept[0] != only_dept):
            raise SampleError(404, f"case {case_no} is not in the sample of {quarter}")
        conn.execute(
            insert(sample_calls).values(
                sample_id=head,
                case_no=case_no,
                at=datetime.now(UTC).isoformat(timespec="seconds"),
                by_user=by_user,
                reached=int(reached),
                satisfied=None if satisfied is None else int(satisfied),
                comment=comment.strip(),
            )
        )
    return sample(figures, quarter, only_dept)


def check_samples(figures: FigureStore) -> tuple[list[str], list[str]]:
    """Each recorded sample drawn again from its seed: (problems, notes). A sample its seed does not draw
    again is a problem; a population that changed since the draw (late uploads) is a note."""
    problems, notes = [], []
    with figures.engine.connect() as conn:
        heads = conn.execute(select(samples)).all()
    for head in heads:
        population = [c.case_no for c in quarter_cases(figures, head.quarter, head.scope)]
        if m.population_digest(population) != head.population_digest:
            notes.append(
                f"sample {head.quarter}{'/' + head.scope if head.scope else ''}: the population changed since "
                f"the draw ({head.population} → {len(population)} cases); the sample stands as drawn"
            )
            continue
        again = m.draw_sample(population, int(head.seed), head.size)
        with figures.engine.connect() as conn:
            kept: list[str] = sorted(
                conn.execute(
                    select(sample_cases.c.case_no).where(sample_cases.c.sample_id == head.id)
                ).scalars()
            )
        if again != kept:
            problems.append(f"sample {head.quarter}: the cases kept are not the ones its seed draws")
    return problems, notes
