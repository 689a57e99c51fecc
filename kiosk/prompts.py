"""What the evaluator says, and shows as text: one caption per spoken prompt.

Each prompt is a WAV file of this name in the voice folder (``assets/voice/`` or ``[voice] dir``) and a
caption the page shows, so a citizen who cannot hear reads what the others hear. No Qt, no I/O.
"""

from __future__ import annotations

WELCOME_CAPTION = "您好，很高兴为您服务"
RATE_CAPTION = "您好，请您对本次服务进行评价"
REASONS_CAPTION = "很抱歉给您带来不好的体验，请选择原因"
REASONS_QR_CAPTION = "很抱歉给您带来不好的体验，请扫码告诉我们原因"
CORRECT_CAPTION = "请重新选择您的评价"
THANKS_CAPTION = "感谢您的评价"

# Prompt name (its file is <name>.wav) -> the words, spoken and shown.
PROMPTS: dict[str, str] = {
    "welcome": WELCOME_CAPTION,
    "rate": RATE_CAPTION,
    "reasons": REASONS_CAPTION,
    "reasons_qr": REASONS_QR_CAPTION,
    "correct": CORRECT_CAPTION,
    "thanks": THANKS_CAPTION,
}


def prompt_for(page: str, *, touch_screen: bool, signed_in_now: bool, welcome: bool) -> str | None:
    """The prompt a page change calls for (None: silence, and whatever was playing stops)."""
    if page == "rate":
        return "rate"
    if page == "reasons":
        return "reasons" if touch_screen else "reasons_qr"
    if page == "correct":
        return "correct"
    if page == "thanks":
        return "thanks"
    if page == "ready" and signed_in_now and welcome:
        return "welcome"
    return None
