"""The 好差评 code tables: satisfaction levels, 差评, channel codes and the bad-rating reason catalogue.

One internal satisfaction code (5 = 非常满意 … 1 = 非常不满意, the order operational interfaces use) and
explicit mappings to the national tables; see docs/protocol.md. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

# How far a device's clock may be from the hub's: the hub refuses a request signature older or newer
# than this (docs/protocol.md §2), a QR token issued this far in the verifier's future is still good, and
# `kiosk doctor` blames the clock for a refused signature beyond it.
CLOCK_SKEW_S = 300

# Internal satisfaction code -> the exact words of 第五条.
LEVELS: dict[int, str] = {
    5: "非常满意",
    4: "满意",
    3: "基本满意",
    2: "不满意",
    1: "非常不满意",
}
# Display order on screen: best first.
LEVEL_ORDER: tuple[int, ...] = (5, 4, 3, 2, 1)


def is_bad(satisfaction: int) -> bool:
    """不满意 and 非常不满意 are 差评 (第五条)."""
    check_satisfaction(satisfaction)
    return satisfaction <= 2


def check_satisfaction(satisfaction: int) -> int:
    if type(satisfaction) is not int or satisfaction not in LEVELS:
        raise ValueError(f"satisfaction must be an integer 1-5, got {satisfaction!r}")
    return satisfaction


def to_gbt39046(satisfaction: int) -> int:
    """GB/T 39046-2020 Table A.8 (满意度代码) numbers the other way: 1 非常满意 … 5 非常不满意."""
    return 6 - check_satisfaction(satisfaction)


def is_satisfied(satisfaction: int) -> bool:
    """满意率 counts 基本满意 or better."""
    return check_satisfaction(satisfaction) >= 3


# 评价渠道 (pf) as operational interfaces number them; 6 and 7 differ by province and are not used here.
PF_PC = 1
PF_MOBILE = 2
PF_QRCODE = 3
PF_HALL_EVALUATOR = 4  # the window evaluator: this product
PF_HALL_OTHER_TERMINAL = 5
CHANNELS: dict[int, str] = {
    PF_PC: "PC端",
    PF_MOBILE: "移动端",
    PF_QRCODE: "二维码",
    PF_HALL_EVALUATOR: "政务大厅平板电脑",
    PF_HALL_OTHER_TERMINAL: "政务大厅其他终端",
}


@dataclass(frozen=True)
class Reason:
    """One selectable reason for a 差评. ``code`` is what is stored; ``label`` what the citizen reads."""

    code: str
    label: str
    group: str


# The national label texts and codes are not public; this default catalogue has its own codes and can be
# replaced by `[[reasons]]` in the configuration.
DEFAULT_REASONS: tuple[Reason, ...] = (
    Reason("101", "态度生硬、不耐烦", "服务态度"),
    Reason("102", "推诿扯皮、不愿办理", "服务态度"),
    Reason("201", "等候时间长", "服务效率"),
    Reason("202", "多次跑动", "服务效率"),
    Reason("203", "一次性告知不到位", "服务效率"),
    Reason("301", "业务不熟练", "服务水平"),
    Reason("302", "办事指南不清晰", "服务水平"),
    Reason("401", "设备或系统故障", "设备/系统"),
    Reason("901", "其他", "其他"),
)

REASON_CODE_PATTERN = r"[A-Za-z0-9_]{1,16}"
