"""The phone rating page behind the kiosk's QR code (``/q/TOKEN``): its HTML and its form.

Small, self-contained pages in Chinese for a phone browser: inline CSS, no scripts, no external assets,
large touch targets. The reasons block is shown by CSS alone when 不满意 or 非常不满意 is chosen; the
server checks everything again, so a browser without CSS still cannot store a 差评 without a reason.
``parse_form`` reads the ``application/x-www-form-urlencoded`` body strictly. No I/O here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import parse_qsl

from core.contact import mask_case_no, valid_phone
from core.domain import DEFAULT_REASONS, LEVEL_ORDER, LEVELS, is_bad

MAX_FORM_BYTES = 4096  # the largest honest form (a level, every reason, a phone) is under 300 bytes
MAX_PHONE_CHARS = 32
_FIELDS = ("satisfaction", "reason", "phone")
_REASON_CODES = tuple(r.code for r in DEFAULT_REASONS)
# Response headers of every page: the token is in the URL, so it must not leak or be cached.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


# The form as an OpenAPI request body, so the schema fuzzer reaches past the token check too.
FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "satisfaction": {"type": "string"},
        "reason": {"type": "array", "items": {"type": "string"}},
        "phone": {"type": "string"},
    },
}


class PageError(Exception):
    """An answer other than the form or the thank-you page: a status and a short Chinese message."""

    def __init__(self, status: int, title: str, text: str):
        super().__init__(title)
        self.status, self.title, self.text = status, title, text


class FormError(ValueError):
    """A form that cannot be stored. ``hostile`` forms no page of ours sends; the others are shown again."""

    def __init__(self, message: str, *, hostile: bool):
        super().__init__(message)
        self.hostile = hostile


@dataclass(frozen=True)
class RatingForm:
    satisfaction: int | None  # None until a level is chosen
    reasons: tuple[str, ...]  # codes of DEFAULT_REASONS
    phone: str | None


@dataclass(frozen=True)
class CompleteRating:
    """A form with everything a rating needs: a level, and reasons for a 差评."""

    satisfaction: int
    reasons: tuple[str, ...]
    phone: str | None


@dataclass(frozen=True)
class CaseView:
    """What the page shows of the case being rated."""

    item: str | None  # item name, else item code
    case_no: str | None
    window: str


def already_rated() -> PageError:
    return PageError(409, "该办件已评价", "每个办件只能评价一次（一次一评），感谢您的参与。")


def invalid_form(status: int = 400) -> PageError:
    """A body no page of ours sends: wrong fields, an unknown reason, too large, not a form."""
    return PageError(status, "提交的内容无效", "请返回评价页面重新选择后提交。")


def parse_form(body: bytes) -> RatingForm:
    """What a form body says; FormError (hostile) for a body that no page of ours sends."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=len(_FIELDS) + len(_REASON_CODES),
        )
    except (UnicodeDecodeError, ValueError):
        raise FormError("not a form", hostile=True) from None
    fields: dict[str, list[str]] = {name: [] for name in _FIELDS}
    for name, value in pairs:
        if name not in fields:
            raise FormError(f"unknown field {name[:32]!r}", hostile=True)
        fields[name].append(value)
    if len(fields["satisfaction"]) > 1 or len(fields["phone"]) > 1:
        raise FormError("a field given twice", hostile=True)
    reasons = fields["reason"]
    if any(code not in _REASON_CODES for code in reasons) or len(set(reasons)) != len(reasons):
        raise FormError("unknown or repeated reason code", hostile=True)
    level = fields["satisfaction"][0] if fields["satisfaction"] else None
    if level is not None and level not in {str(s) for s in LEVELS}:
        raise FormError("satisfaction outside 1-5", hostile=True)
    phone = fields["phone"][0].strip() if fields["phone"] else ""
    if len(phone) > MAX_PHONE_CHARS:
        raise FormError("phone field too long", hostile=True)
    return RatingForm(int(level) if level else None, tuple(reasons), phone or None)


def complete_rating(form: RatingForm) -> CompleteRating:
    """The rating to store; FormError with a message for the citizen while something is missing."""
    if form.satisfaction is None:
        raise FormError("请选择您的评价。", hostile=False)
    if form.phone is not None and not valid_phone(form.phone):
        raise FormError("手机号码格式不正确，请输入 11 位手机号码，或留空。", hostile=False)
    if not is_bad(form.satisfaction):
        # Reasons ticked and then hidden by choosing a good level are not part of a good rating.
        return CompleteRating(form.satisfaction, (), form.phone)
    if not form.reasons:
        raise FormError("请至少选择一项不满意的原因。", hostile=False)
    return CompleteRating(form.satisfaction, form.reasons, form.phone)


_STYLE = """
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
background:#f3f5f8;color:#1d2733;font-size:18px;line-height:1.5}
main{max-width:32rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.5rem 0 1rem;color:#0b4f9c}
.case{background:#fff;border-radius:.75rem;padding:.75rem 1rem;margin-bottom:1rem}
.case p{margin:.2rem 0}.case b{color:#55616e;font-weight:normal;margin-right:.5rem}
.error{background:#fdecea;color:#a4161a;border-radius:.75rem;padding:.75rem 1rem;margin-bottom:1rem}
input[type=radio],input[type=checkbox]{position:absolute;opacity:0;pointer-events:none}
.levels{display:grid;gap:.6rem}
.levels label,.reasons label{display:block;background:#fff;border:2px solid #c9d3de;border-radius:.75rem;
padding:1rem;font-size:1.3rem;text-align:center;cursor:pointer}
.reasons{display:none;margin-top:1rem}
.reasons label{font-size:1.1rem;padding:.8rem;margin:.5rem 0;text-align:left}
#s5:checked~.levels label[for=s5],#s4:checked~.levels label[for=s4],#s3:checked~.levels label[for=s3]
{border-color:#0b7a3e;background:#e5f5ec}
#s2:checked~.levels label[for=s2],#s1:checked~.levels label[for=s1]{border-color:#b3261e;background:#fdecea}
#s2:checked~.reasons,#s1:checked~.reasons{display:block}
input[type=checkbox]:checked+label{border-color:#b3261e;background:#fdecea}
.contact{margin-top:1rem}
.contact input{width:100%;font-size:1.3rem;padding:.8rem;border:2px solid #c9d3de;border-radius:.75rem}
button{width:100%;margin-top:1.2rem;padding:1rem;font-size:1.4rem;border:0;border-radius:.75rem;
background:#0b4f9c;color:#fff}
.note{color:#55616e;font-size:.95rem}
"""


def _page(title: str, content: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{content}</main></body></html>\n"
    )


def message_page(title: str, text: str) -> str:
    """An error, 该办件已评价, or the thank-you page."""
    return _page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>")


def thanks_page() -> str:
    return message_page("评价成功", "感谢您的评价！您的意见将帮助我们改进服务。")


def form_page(case: CaseView, error: str | None = None, chosen: RatingForm | None = None) -> str:
    """The rating form; after a refused post, ``error`` says why and ``chosen`` keeps the choices."""
    e = html.escape
    facts = [
        ("办理事项", case.item or "—"),
        ("办件编号", mask_case_no(case.case_no) if case.case_no else "—"),
    ]
    facts.append(("窗口", case.window))
    parts = ["<h1>请对本次服务进行评价</h1>", '<div class="case">']
    parts += [f"<p><b>{e(label)}</b>{e(value)}</p>" for label, value in facts]
    parts.append("</div>")
    if error:
        parts.append(f'<p class="error" role="alert">{e(error)}</p>')
    parts.append('<form method="post">')
    for s in LEVEL_ORDER:
        checked = " checked" if chosen and chosen.satisfaction == s else ""
        parts.append(f'<input type="radio" name="satisfaction" value="{s}" id="s{s}" required{checked}>')
    parts.append('<div class="levels">')
    parts += [f'<label for="s{s}">{e(LEVELS[s])}</label>' for s in LEVEL_ORDER]
    parts.append('</div><div class="reasons"><p>请选择不满意的原因（至少一项）：</p>')
    for r in DEFAULT_REASONS:
        checked = " checked" if chosen and r.code in chosen.reasons else ""
        parts.append(
            f'<input type="checkbox" name="reason" value="{e(r.code)}" id="r{e(r.code)}"{checked}>'
            f'<label for="r{e(r.code)}">{e(r.label)}</label>'
        )
    phone = e(chosen.phone) if chosen and chosen.phone else ""
    parts.append(
        '</div><div class="contact"><label for="phone">手机号码（选填，便于回访）</label>'
        f'<input type="tel" name="phone" id="phone" inputmode="numeric" maxlength="11" '
        f'pattern="1[3-9][0-9]{{9}}" autocomplete="tel" value="{phone}">'
        '<p class="note">号码加密保存，仅用于核实和回访。</p></div>'
        '<button type="submit">提交评价</button></form>'
    )
    return _page("服务评价", "".join(parts))
