"""Shared fixtures. Qt runs offscreen in every test; each test gets its own folder for files it makes."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Examples are timed by the machine, not by the rule under test: a loaded CI machine or a shared
# developer machine must not turn a slow example into a failure. Example counts stay as each test sets.
settings.register_profile("kiosk", deadline=None)
settings.load_profile("kiosk")


@pytest.fixture(scope="module")
def chromium_browser():
    """One headless Debian chromium per test module (tests/browser.py): Playwright's sync API allows
    one running instance at a time, so a module that starts its own never overlaps this one. Skipped,
    saying why, only where chromium is truly absent; under CI (which installs it) its absence fails."""
    from browser import chromium_missing, launched_chromium

    missing = chromium_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def browser_page(chromium_browser):
    """A factory of fresh pages, each in its own browser context (no shared cookies or cache):
    ``browser_page(width=390, height=844, javascript=True, **context_options)``. Closed after the test."""
    contexts = []

    def open_page(width: int = 390, height: int = 844, *, javascript: bool = True, **options):
        context = chromium_browser.new_context(
            viewport={"width": width, "height": height},
            java_script_enabled=javascript,
            locale="zh-CN",
            **options,
        )
        context.set_default_timeout(15_000)  # a page that never comes fails the test, not the run
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
