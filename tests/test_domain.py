"""The code tables: levels, 差评, the GB/T 39046 mapping, channels and the reason catalogue."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain import (
    CHANNELS,
    DEFAULT_REASONS,
    LEVEL_ORDER,
    LEVELS,
    PF_HALL_EVALUATOR,
    REASON_CODE_PATTERN,
    is_bad,
    is_satisfied,
    to_gbt39046,
)


def test_the_five_levels_in_the_words_of_the_policy():
    assert [LEVELS[c] for c in LEVEL_ORDER] == ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]


def test_bad_and_satisfied():
    assert [c for c in LEVELS if is_bad(c)] == [2, 1]
    assert sorted(c for c in LEVELS if is_satisfied(c)) == [3, 4, 5]


def test_gbt39046_numbers_the_other_way():
    assert {LEVELS[c]: to_gbt39046(c) for c in LEVELS} == {
        "非常满意": 1,
        "满意": 2,
        "基本满意": 3,
        "不满意": 4,
        "非常不满意": 5,
    }


@given(st.one_of(st.integers().filter(lambda i: i not in LEVELS), st.booleans(), st.text(), st.none()))
def test_anything_else_is_not_a_level(value):
    for fn in (is_bad, is_satisfied, to_gbt39046):
        with pytest.raises(ValueError):
            fn(value)


def test_the_window_evaluator_channel():
    assert PF_HALL_EVALUATOR == 4 and CHANNELS[4] == "政务大厅平板电脑"


def test_default_reasons_cover_the_groups_with_unique_valid_codes():
    codes = [r.code for r in DEFAULT_REASONS]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(REASON_CODE_PATTERN, c) for c in codes)
    assert {r.group for r in DEFAULT_REASONS} == {"服务态度", "服务效率", "服务水平", "设备/系统", "其他"}
    labels = {r.label for r in DEFAULT_REASONS}
    assert {"等候时间长", "多次跑动", "一次性告知不到位", "业务不熟练", "办事指南不清晰"} <= labels
