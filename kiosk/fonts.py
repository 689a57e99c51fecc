"""Finding a font with Chinese glyphs, without Qt: the kiosk uses it at start, ``kiosk doctor`` checks it.

Order: ``[ui] font_path`` when that file exists, then fontconfig (``fc-list :lang=zh``), preferring a
Simplified Chinese sans-serif face (Noto Sans CJK SC, Source Han Sans SC, WenQuanYi) over serif and
other regional variants. Returns a file path; the caller loads it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.config import Config

# Substrings of family names, best first; anything else fontconfig lists for zh comes after these.
PREFERRED_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK",
    "Droid Sans Fallback",
)
FC_LIST_TIMEOUT_S = 10


def find_cjk_font(config: Config | None) -> str | None:
    """The font file to use for Chinese text, or None when this machine has none."""
    configured = config.ui.font_path if config is not None else None
    if configured is not None and configured.is_file():
        return str(configured)
    return _best_system_font(_fc_list_zh())


def _fc_list_zh() -> list[tuple[str, str, str]]:
    """(file, family, style) for every installed font fontconfig says covers Chinese."""
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file", "family", "style"],
            capture_output=True,
            text=True,
            timeout=FC_LIST_TIMEOUT_S,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    fonts = []
    for line in out.splitlines():
        # "/usr/share/fonts/…/NotoSansCJK-Regular.ttc: Noto Sans CJK SC,Noto Sans CJK SC Regular:style=Regular"
        file, _, rest = line.partition(": ")
        family, _, style = rest.partition(":style=")
        if file:
            fonts.append((file, family, style))
    return fonts


def _best_system_font(fonts: list[tuple[str, str, str]]) -> str | None:
    def rank(font: tuple[str, str, str]) -> tuple[int, int]:
        _file, family, style = font
        family_rank = next(
            (i for i, name in enumerate(PREFERRED_FAMILIES) if name in family), len(PREFERRED_FAMILIES)
        )
        regular = 0 if any(s in style for s in ("Regular", "Book", "Normal")) else 1
        return family_rank, regular

    existing = [f for f in fonts if Path(f[0]).is_file()]
    return min(existing, key=rank)[0] if existing else None
