"""The pictures in docs/screenshots/ are what `kiosk screenshot` renders today.

Every page of ``kiosk.screenshot.sample_views`` at every reference size, in both modes, is rendered with
docs/screenshots/kiosk.toml (the wall clock and the QR token fixed) and compared with the stored PNG
with a perceptual tolerance: both blurred a little, so anti-aliasing and hinting do not count, and at
most a small share of pixels may differ clearly. A failure writes the stored picture, the rendered one
and a difference image to a temporary folder and names it.

After an intended change to a page, refresh the pictures with one command and look at them:

    KIOSK_REFRESH_SCREENSHOTS=1 ./dev test tests/test_screenshots.py
"""

import os
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFilter

from kiosk.screenshot import SIZES, render, sample_views

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
CONFIG = SHOTS / "kiosk.toml"
REFRESH = os.environ.get("KIOSK_REFRESH_SCREENSHOTS") == "1"
REFRESH_COMMAND = "KIOSK_REFRESH_SCREENSHOTS=1 ./dev test tests/test_screenshots.py"

# A Saturday morning in the hall's time zone: the header's clock and date in every picture.
SHOWN_TIME = time.mktime((2026, 11, 28, 10, 15, 0, 0, 0, -1))
TOKEN_AT = 1_795_000_000  # the QR token's issue time; with a fixed nonce the QR code is always the same

BLUR_RADIUS = 1.0  # px: forgives sub-pixel differences in how a glyph or an edge is drawn
CLEAR_DIFFERENCE = 32  # of 255 grey levels, after the blur
MAX_CHANGED_SHARE = (
    0.0001  # of the pixels (61 at 1024x600): one changed character of the hall name is twice that
)


def changed_share(stored: Image.Image, rendered: Image.Image) -> tuple[float, Image.Image | None]:
    """The share of pixels that differ clearly (1.0 when the sizes differ) and a picture of where."""
    if stored.size != rendered.size:
        return 1.0, None
    blur = ImageFilter.GaussianBlur(BLUR_RADIUS)
    a = stored.convert("L").filter(blur)
    b = rendered.convert("L").filter(blur)
    mask = ImageChops.difference(a, b).point(lambda v: 255 if v > CLEAR_DIFFERENCE else 0)
    changed = mask.histogram()[255]
    # The rendered picture, faded, with what changed in red.
    faded = Image.blend(rendered.convert("RGB"), Image.new("RGB", rendered.size, "white"), 0.6)
    diff = Image.composite(Image.new("RGB", rendered.size, (220, 0, 0)), faded, mask)
    return changed / (stored.width * stored.height), diff


@pytest.fixture
def fixed_clock(monkeypatch):
    real_localtime = time.localtime
    monkeypatch.setattr(
        time, "localtime", lambda secs=None: real_localtime(SHOWN_TIME if secs is None else secs)
    )


def expected_names() -> list[str]:
    modes = ("", "-elderly")  # 长辈模式 too
    return sorted(f"{name}{mode}-{w}x{h}.png" for w, h in SIZES for name in sample_views(0) for mode in modes)


def test_every_stored_screenshot_is_one_the_renderer_makes():
    # console-*.png and phone-*.png are the web console's and the phone page's, taken by the browser
    # tests (tests/test_desk_console.py, tests/test_phone_browser.py); figures-*.png the hub's figures
    # pages, big screen and PDFs (tests/test_figures_*.py).
    browser_pictures = ("console-", "phone-", "figures-")
    stored = sorted(p.name for p in SHOTS.glob("*.png") if not p.name.startswith(browser_pictures))
    assert stored == expected_names(), f"docs/screenshots/ is out of date; refresh with: {REFRESH_COMMAND}"


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_docs_screenshots_are_what_kiosk_screenshot_renders(qapp, fixed_clock, tmp_path, size):
    if REFRESH:
        for old in SHOTS.glob(f"*-{size[0]}x{size[1]}.png"):
            old.unlink()
        render(CONFIG, SHOTS, sizes=(size,), token_at=TOKEN_AT)
        return
    rendered = render(CONFIG, tmp_path, sizes=(size,), token_at=TOKEN_AT)
    failures, out = [], None
    for path in rendered:
        stored_path = SHOTS / path.name
        if not stored_path.exists():
            failures.append(f"{path.name}: not in docs/screenshots/")
            continue
        with Image.open(stored_path) as stored, Image.open(path) as new:
            share, diff = changed_share(stored, new)
            if share <= MAX_CHANGED_SHARE:
                continue
            out = out or Path(tempfile.mkdtemp(prefix="kiosk-screenshots-"))
            stem = path.stem
            stored.save(out / f"{stem}.stored.png")
            new.save(out / f"{stem}.rendered.png")
            if diff is not None:
                diff.save(out / f"{stem}.diff.png")
        failures.append(f"{path.name}: {share:.2%} of the pixels differ")
    assert not failures, (
        "docs/screenshots/ differs from what `kiosk screenshot` renders:\n  "
        + "\n  ".join(failures)
        + (f"\nstored, rendered and diff pictures in {out}" if out else "")
        + f"\nif the change is intended, refresh with: {REFRESH_COMMAND}"
    )
