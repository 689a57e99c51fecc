"""Who may sign in at this window: the staff roster, found by card.

Two sources: the local CSV a technician keeps beside the config (read by core.roster, the rule the hub's
import uses too: header ``card,staff_no,name,title,photo``, photo a path relative to the CSV) and the
roster the hub provides,
cached in the event log's store. The local file wins where both know a card: it is the technician's
override on site. A card in the roster may be written in any form a reader prints (core.cardnum).
Bad rows are reported in ``problems`` (by file and line, never by card number: the messages are logged)
and left out; they never stop the others from working.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.cardnum import card_keys
from core.roster import read_roster_csv

from .flow import Staff


@dataclass(frozen=True)
class RosterEntry:
    card: str  # as written in the roster
    staff: Staff
    origin: str = ""  # where it was written, for problem reports ("roster.csv line 4")


class _CardIndex:
    """One source's cards: each 32-bit key a card text may denote -> the entry holding it."""

    def __init__(self, entries: Iterable[RosterEntry], problems: list[str]):
        self.entries: list[RosterEntry] = []
        self._by_key: dict[int, RosterEntry] = {}
        for entry in entries:
            keys = card_keys(entry.card)
            taken = sorted({self._by_key[k].origin for k in keys if k in self._by_key})
            # Problems name the row, never the card number: a staff card is a key to the premises.
            if not keys:
                problems.append(f"{entry.origin}: card is not a card number")
            elif taken:
                problems.append(f"{entry.origin}: card is already in the roster ({taken[0]})")
            else:
                self.entries.append(entry)
                self._by_key.update(dict.fromkeys(keys, entry))

    def find(self, keys: frozenset[int]) -> set[Staff]:
        return {self._by_key[k].staff for k in keys if k in self._by_key}


class Roster:
    """Staff by card, local entries first. Immutable once loaded: reload to pick up changes."""

    def __init__(self, local: Iterable[RosterEntry] = (), hub: Iterable[RosterEntry] = ()):
        self.problems: list[str] = []
        self._sources = (_CardIndex(local, self.problems), _CardIndex(hub, self.problems))
        self._by_staff_no: dict[str, Staff] = {}
        for source in reversed(self._sources):  # local last, so it wins
            self._by_staff_no.update((e.staff.staff_no, e.staff) for e in source.entries)

    @classmethod
    def load(cls, csv_path: Path | None, cached: Iterable[Mapping[str, Any]] = ()) -> Roster:
        """The roster from the local CSV (None when not configured) and the store's cached hub roster."""
        problems: list[str] = []
        local = read_csv(csv_path, problems) if csv_path is not None else []
        roster = cls(local, read_cached(cached, problems))
        roster.problems[:0] = problems
        return roster

    def __len__(self) -> int:
        return sum(len(source.entries) for source in self._sources)

    def find(self, card: str) -> Staff | None:
        """The member whose card ``card`` is, or None: unknown, or matching two members (never a guess)."""
        keys = card_keys(card)
        for source in self._sources:
            found = source.find(keys)
            if found:
                return found.pop() if len(found) == 1 else None
        return None

    def by_staff_no(self, staff_no: str) -> Staff | None:
        return self._by_staff_no.get(staff_no)


def read_cached(rows: Iterable[Mapping[str, Any]], problems: list[str]) -> list[RosterEntry]:
    """The entries of the hub roster as ``EventLog.roster()`` returns it (photo as bytes)."""
    entries: list[RosterEntry] = []
    for number, row in enumerate(rows, start=1):
        where = f"hub roster entry {number}"
        entry = _entry(
            where, row.get("card"), row.get("staff_no"), row.get("name"), row.get("title"), row.get("photo")
        )
        if entry is None:
            problems.append(f"{where}: staff_no and name are required")
        else:
            entries.append(entry)
    return entries


def read_csv(path: Path, problems: list[str]) -> list[RosterEntry]:
    """The entries of a roster CSV (core.roster's rule); what cannot be used is described in ``problems``."""
    roster_file = read_roster_csv(path)
    problems += roster_file.problems
    return [
        RosterEntry(
            card=row.card, staff=Staff(row.staff_no, row.name, row.title, row.photo), origin=row.where
        )
        for row in roster_file.rows
    ]


def _entry(
    where: str, card: Any, staff_no: Any, name: Any, title: Any, photo: bytes | None
) -> RosterEntry | None:
    staff_no, name = str(staff_no or "").strip(), str(name or "").strip()
    if not staff_no or not name:
        return None
    staff = Staff(staff_no=staff_no, name=name, title=str(title or "").strip(), photo=photo or None)
    return RosterEntry(card=str(card or "").strip(), staff=staff, origin=where)
