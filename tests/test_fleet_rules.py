"""The fleet's plain rules: the remote settings table against the configuration file's own checks, the
precedence of kiosk.toml, and the hub's online and alarm rules (hypothesis)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import ConfigError, parse_config
from core.settings import SETTINGS, SettingError, apply_settings, check_settings, settings_version
from hub import health

BASE = '[device]\nid = "X"\nwindow = "01"\n[hub]\nurl = "http://h"\n'


def config_with(toml: str = ""):
    return parse_config(tomllib.loads(BASE + toml), Path("/etc/kiosk/kiosk.toml"))


def as_toml(key: str, value) -> str:
    section, _, name = key.rpartition(".")
    return f"[{section}]\n{name} = {_toml_value(value)}\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


SCALAR_KEYS = sorted(k for k in SETTINGS if "." in k)


@given(
    st.sampled_from(SCALAR_KEYS),
    st.one_of(st.integers(-10, 100_000), st.booleans(), st.text(alphabet="ab1 ", max_size=3)),
)
def test_a_remote_value_is_good_exactly_when_the_file_would_take_it(key, value):
    try:
        config_with(as_toml(key, value))
        by_file = True
    except ConfigError:
        by_file = False
    try:
        check_settings({key: value})
        remote = True
    except SettingError:
        remote = False
    assert remote == by_file


@given(
    st.lists(
        st.fixed_dictionaries(
            {"code": st.sampled_from(["1", "A_2", "x y", ""]), "label": st.sampled_from(["甲", " "])}
        ),
        max_size=3,
    )
)
def test_a_remote_catalogue_is_good_exactly_when_the_file_would_take_it(reasons):
    toml = "".join(f'[[reasons]]\ncode = "{r["code"]}"\nlabel = "{r["label"]}"\n' for r in reasons)
    try:
        by_file = bool(config_with(toml).reasons) and bool(reasons)
    except ConfigError:
        by_file = False
    try:
        check_settings({"reasons": reasons})
        remote = True
    except SettingError:
        remote = False
    assert remote == by_file


def test_a_key_written_in_the_file_wins_and_the_others_take_the_hub_value():
    config = config_with("[ui]\nthanks_s = 3\n")
    applied = apply_settings(config, {"ui.thanks_s": 9, "ui.rating_timeout_s": 45, "ui.walkin": True})
    assert applied.local == ("ui.thanks_s",)
    assert applied.taken == ("ui.rating_timeout_s", "ui.walkin")
    ui = applied.config.ui
    assert (ui.thanks_s, ui.rating_timeout_s, ui.walkin) == (3, 45, True)
    # Every set starts from the file: a key the hub no longer sets goes back to the file's value.
    assert apply_settings(applied.config, {}).config.ui.rating_timeout_s == 45  # (caller passes the file's)
    assert apply_settings(config, {}).config.ui.rating_timeout_s == 60


def test_a_bad_set_applies_nothing_and_names_the_key():
    config = config_with()
    with pytest.raises(SettingError, match=r"ui.thanks_s: expected 1 to 60, got 0"):
        apply_settings(config, {"ui.rating_timeout_s": 30, "ui.thanks_s": 0})
    with pytest.raises(SettingError, match="ui.voice: unknown setting"):
        check_settings({"ui.voice": True})
    with pytest.raises(SettingError, match="reason codes must be unique"):
        check_settings({"reasons": [{"code": "1", "label": "a"}, {"code": "1", "label": "b"}]})


def test_the_version_follows_the_content_only():
    assert settings_version({"a": 1, "b": 2}) == settings_version({"b": 2, "a": 1})
    assert settings_version({"a": 1}) != settings_version({"a": 2})


# --- the hub's rules ---------------------------------------------------------------------------------

PERIODS = st.one_of(st.integers(5, 3600), st.none(), st.text(max_size=2), st.integers(-5, 4))


@given(PERIODS, st.floats(0, 20_000, allow_nan=False))
def test_online_means_heard_from_within_three_periods(period, silence):
    report = {"heartbeat_s": period}
    expected_period = (
        period if isinstance(period, int) and not isinstance(period, bool) and period >= 5 else 60
    )
    assert health.is_online(1000.0, report, 1000.0 + silence) == (silence <= 3 * expected_period)
    assert not health.is_online(None, report, 1000.0)


REPORTS = st.fixed_dictionaries(
    {},
    optional={
        "heartbeat_s": PERIODS,
        "sent_at": st.sampled_from(["2026-11-29T10:00:00+08:00", "garbage", None]),
        "oldest_pending_at": st.sampled_from(["2026-11-29T08:00:00+08:00", "2026-11-29T09:59:00+08:00", 5]),
        "pending": st.integers(0, 10),
        "clock_offset_s": st.one_of(st.floats(allow_nan=True), st.integers(-500, 500), st.text(max_size=1)),
        "serial": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.just("card"), "state": st.sampled_from(["connected", "error"])}
                )
            ),
            st.text(max_size=2),
        ),
        "disk_free_bytes": st.one_of(st.integers(0, 2**40), st.none()),
        "disk_total_bytes": st.one_of(st.integers(0, 2**40), st.just(0)),
    },
)


@given(REPORTS, st.floats(0, 1000), st.dictionaries(st.sampled_from(health.ALARM_KINDS), st.just("old")))
def test_alarms_raise_once_and_clear_once(report, silence, raised):
    judged = health.conditions(report, 0.0, silence)
    changes = health.transitions(raised, judged)
    after = dict(raised)
    for change in changes:
        assert (change.state == "raised") == (change.kind not in raised)
        if change.state == "raised":
            after[change.kind] = change.detail
        else:
            del after[change.kind]
    assert health.transitions(after, judged) == []  # judged again: nothing more to say
    if not health.is_online(0.0, report, silence):
        assert set(judged) == {health.OFFLINE}  # a stale report raises and clears nothing else


def test_each_alarm_condition():
    report = {
        "heartbeat_s": 60,
        "sent_at": "2026-11-29T10:00:00+08:00",
        "oldest_pending_at": "2026-11-29T08:30:00+08:00",
        "pending": 12,
        "clock_offset_s": -75.2,
        "serial": [
            {"name": "card", "state": "error", "detail": "unplugged"},
            {"name": "keypad", "state": "connected"},
        ],
        "disk_free_bytes": 50 * 2**20,
        "disk_total_bytes": 16 * 2**30,
    }
    judged = health.conditions(report, 0.0, 10.0)
    assert judged == {
        health.OFFLINE: None,
        health.BACKLOG: "12 events pending, the oldest for 90 min",
        health.CLOCK: "clock -75 s against the hub's",
        health.SERIAL_ERROR: "serial device in error: card (unplugged)",
        health.DISK_FULL: "50 MB free of 16.0 GB",
    }
    assert health.conditions(report, 0.0, 181.0) == {health.OFFLINE: "no heartbeat for 181 s (period 60 s)"}
