"""The application font: a Chinese-capable font made Qt's default, or a loud log line when there is none."""

from __future__ import annotations

import logging

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from core.config import Config

from ..fonts import find_cjk_font

log = logging.getLogger(__name__)

_loaded_fonts: dict[str, str | None] = {}


def install_cjk_font(config: Config | None) -> str | None:
    """Make a Chinese-capable font the application's default; the family, or None (logged loudly)."""
    if config is not None and config.ui.font_path is not None and not config.ui.font_path.is_file():
        log.error("[ui] font_path %s does not exist; looking for a system font instead", config.ui.font_path)
    path = find_cjk_font(config)
    if path is None:
        log.error(
            "NO CHINESE FONT FOUND: the evaluator will show empty boxes instead of text. "
            "Install fonts-noto-cjk or set [ui] font_path in the configuration."
        )
        return None
    if path not in _loaded_fonts:
        families = QFontDatabase.applicationFontFamilies(QFontDatabase.addApplicationFont(path))
        # A collection holds several regional variants: prefer Simplified Chinese.
        preferred = [f for f in families if f.endswith(" SC")] or families
        _loaded_fonts[path] = preferred[0] if preferred else None
        if not families:
            log.error("cannot load font %s; text may not render", path)
    family = _loaded_fonts[path]
    if family:
        font = QFont(family)
        font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
        QApplication.setFont(font)
    return family
