"""The phone rating page behind the kiosk's QR code (``/q/TOKEN``): its HTML and its form.

Small, self-contained pages in Chinese for a phone browser: inline CSS, one small inline script
(allowed by its hash, never needed), no external assets, large touch targets, sizes in rem so a larger
browser font and 200% zoom work. The reasons block is shown by CSS alone when 不满意 or 非常不满意 is
chosen; the server checks everything again, so a browser without CSS or script still cannot store a
差评 without a reason. The form is ``novalidate``: the hub's own Chinese message shows beside the field
it concerns, never the browser's generic one. ``parse_form`` reads the
``application/x-www-form-urlencoded`` body strictly. No I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from core.contact import mask_case_no, valid_phone
from core.domain import DEFAULT_REASONS, LEVEL_ORDER, LEVELS, is_bad

MAX_FORM_BYTES = 4096  # the largest honest form (a level, every reason, a phone) is under 300 bytes
MAX_PHONE_CHARS = 32
_FIELDS = ("satisfaction", "reason", "phone")
_REASON_CODES = tuple(r.code for r in DEFAULT_REASONS)
# Where the browser scrolls after a refused post: the form's action ends in this fragment and the page
# that answers puts it on the first problem, so the message is in view without any script.
PROBLEM_ANCHOR = "problem"

# The only script: shows that the form is sending and ignores a second tap meanwhile; after 10 s
# (a lost connection) the button works again. The hub answers a repeated post of one token with the
# same result page, so the page is safe without it.
_SCRIPT = (
    "(function(){var f=document.getElementById('rate');if(!f)return;"
    "var b=f.querySelector('button'),s=document.getElementById('sending'),t=b.textContent,w=0;"
    "function reset(){w=0;b.disabled=false;b.textContent=t;f.removeAttribute('aria-busy');s.textContent='';}"
    "f.addEventListener('submit',function(e){if(w){e.preventDefault();return;}w=1;"
    "b.textContent='正在提交…';f.setAttribute('aria-busy','true');s.textContent='正在提交，请稍候';"
    "setTimeout(function(){b.disabled=true;},0);setTimeout(reset,10000);});"
    "window.addEventListener('pageshow',function(e){if(e.persisted)reset();});"
    "var r=document.getElementById('reasons');"
    "f.addEventListener('change',function(e){var v=e.target;if(v.name!=='satisfaction'||v.value>2)return;"
    "if(r.getBoundingClientRect().top>innerHeight*0.6){document.querySelector('label[for='+v.id+']')"
    ".scrollIntoView({block:'start'});}});})();"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")

# Response headers of every page: the token is in the URL, so it must not leak or be cached.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'; "
        "img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
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
    """An answer other than the form or the result page: a status and a short Chinese message."""

    def __init__(self, status: int, title: str, text: str):
        super().__init__(title)
        self.status, self.title, self.text = status, title, text


class FormError(ValueError):
    """A form that cannot be stored. ``hostile`` forms no page of ours sends; the others are shown
    again with ``problems``: the message for each field that needs the citizen's attention."""

    def __init__(self, message: str, *, hostile: bool, problems: dict[str, str] | None = None):
        super().__init__(message)
        self.hostile = hostile
        self.problems = problems or {}


@dataclass(frozen=True)
class RatingForm:
    satisfaction: int | None  # None until a level is chosen
    reasons: tuple[str, ...]  # codes of DEFAULT_REASONS
    phone: str | None  # as typed (stripped); complete_rating gives the 11 ASCII digits


@dataclass(frozen=True)
class CompleteRating:
    """A form with everything a rating needs: a level, and reasons for a 差评."""

    satisfaction: int
    reasons: tuple[str, ...]
    phone: str | None


@dataclass(frozen=True)
class CaseView:
    """What the page shows of the case being rated, and who is asking."""

    item: str | None  # the item's name; never its code, which means nothing to a citizen
    case_no: str | None
    window: str
    place: tuple[str, ...] = field(default=())  # hall, section: whatever the hub knows, in that order


# Statuses and texts of the pages that are not the form.
NOT_FOUND = PageError(404, "页面不存在", "请用手机扫描评价器屏幕上显示的二维码进入评价页面。")
METHOD_NOT_ALLOWED = PageError(405, "无法处理此请求", "请返回评价页面，点击“提交评价”按钮提交。")
SERVER_ERROR = PageError(
    500,
    "暂时无法提交",
    "服务器出现问题，您的评价可能没有保存。请稍后重新扫描二维码再试，给您带来不便，敬请谅解。",
)
EXPIRED_WHILE_OPEN = (
    "二维码已过期，这次评价没有提交。您的选择仍显示在下面，并已为您保留："
    "如果评价器屏幕上还显示着二维码，请重新扫描后再提交；如果已不显示，可请窗口工作人员重新出示评价二维码，"
    "扫描后您的选择会自动带入。"
)
KEPT_NOTE = "已带入您上次的选择，请确认后提交。"


def already_rated() -> PageError:
    """The case was rated with another code or at the window (一次一评)."""
    return PageError(
        409,
        "该办件已评价",
        "这个办件已经在窗口评价器上或用另一个二维码评价过了，每个办件只能评价一次（一次一评）。"
        "如果是您本人刚刚评价的，无需再次评价。感谢您的参与。",
    )


def invalid_form(status: int = 400) -> PageError:
    """A body no page of ours sends: wrong fields, an unknown reason, too large, not a form."""
    return PageError(status, "提交的内容无效", "请返回评价页面重新选择后提交。")


def spoken_case_no(case_no: str) -> str:
    """What a screen reader says for the masked number: 尾号0012, not a row of stars."""
    tail = mask_case_no(case_no).rsplit("*", 1)[-1]  # what the mask shows after its stars
    return f"尾号{tail}" if tail else "已隐去"


_PHONE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−]")
_COUNTRY_PREFIX = re.compile(r"^(?:\+86|0086)")


def normalize_phone(typed: str) -> str:
    """The number as digits: full-width digits and signs made ASCII, spaces, dashes and a leading
    +86 (or 0086) removed. The result is only a candidate; ``valid_phone`` decides."""
    text = unicodedata.normalize("NFKC", typed)
    return _COUNTRY_PREFIX.sub("", _PHONE_SEPARATORS.sub("", text))


# The choices of a form whose code expired, kept on the citizen's phone for the next code of the same
# case (the window staff show the case again): level and reasons only, never the phone number, bound
# to the device and case by a hash so the cookie names neither.
KEPT_CHOICE_COOKIE = "q_kept"
KEPT_CHOICE_MAX_AGE_S = 1800
_KEPT_CHOICE = re.compile(r"v1\.([0-9a-f]{16})\.([1-5])\.((?:[0-9]{3})(?:-[0-9]{3})*)?")


def _case_key(device_id: str, case_no: str) -> str:
    return hashlib.sha256(f"{device_id}\n{case_no}".encode()).hexdigest()[:16]


def kept_choice_cookie(device_id: str, case_no: str, form: RatingForm) -> str | None:
    """The cookie value that keeps ``form``'s level and reasons for the case; None if nothing to keep."""
    if form.satisfaction is None:
        return None
    return f"v1.{_case_key(device_id, case_no)}.{form.satisfaction}.{'-'.join(form.reasons)}"


def kept_choice(value: str | None, device_id: str, case_no: str | None) -> RatingForm | None:
    """The choices a cookie kept for this very case, or None (no cookie, another case, not ours)."""
    found = _KEPT_CHOICE.fullmatch(value or "")
    if not found or case_no is None or found.group(1) != _case_key(device_id, case_no):
        return None
    reasons = tuple(found.group(3).split("-")) if found.group(3) else ()
    if any(code not in _REASON_CODES for code in reasons) or len(set(reasons)) != len(reasons):
        return None
    return RatingForm(int(found.group(2)), reasons, None)


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
    """The rating to store, its phone as 11 ASCII digits; FormError with a message for each field
    the citizen still has to fix."""
    problems: dict[str, str] = {}
    phone = normalize_phone(form.phone) if form.phone else None
    if form.satisfaction is None:
        problems["satisfaction"] = "请选择您的评价。"
    elif is_bad(form.satisfaction) and not form.reasons:
        problems["reason"] = "请至少选择一项不满意的原因。"
    if phone is not None and not valid_phone(phone):
        problems["phone"] = "手机号码格式不正确：请输入 11 位手机号码（如 138 1234 5678），或留空。"
    if problems:
        raise FormError(next(iter(problems.values())), hostile=False, problems=problems)
    assert form.satisfaction is not None
    # Reasons ticked and then hidden by choosing a good level are not part of a good rating.
    reasons = form.reasons if is_bad(form.satisfaction) else ()
    return CompleteRating(form.satisfaction, reasons, phone or None)


# Colours: text 4.5:1 or more on its background, borders and marks 3:1 or more on white and on the
# page's grey (tests/test_phone_browser.py measures them). Sizes in rem, so the browser's font
# setting scales everything; long values wrap instead of widening the page.
_STYLE = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;font-family:system-ui,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
background:#f3f5f8;color:#1d2733;font-size:1.125rem;line-height:1.5}
main{max-width:32rem;margin:0 auto;padding:.75rem 1rem 2rem}
.place{margin:0;color:#4a5664;font-size:1rem;overflow-wrap:anywhere}
h1{font-size:1.4rem;line-height:1.3;margin:.2rem 0 .6rem;color:#0b4f9c}
.case{display:grid;grid-template-columns:auto 1fr;gap:0 .75rem;background:#fff;border:1px solid #8895a3;
border-radius:.75rem;padding:.5rem 1rem;margin:0 0 .75rem}
.case dt{color:#4a5664}.case dd{margin:0;min-width:0;overflow-wrap:anywhere;word-break:break-all}
#problem{scroll-margin-top:.75rem}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
fieldset{border:0;margin:0;padding:0;min-width:0}
legend{padding:0;font-weight:bold;font-size:1.15rem}
.error{background:#fdecea;color:#8c1116;border-left:.3rem solid #b3261e;border-radius:.4rem;
padding:.5rem .75rem;margin:.5rem 0;font-weight:bold}
.notice{background:#fff4d6;color:#5c3b00;border-left:.3rem solid #8a5a00;border-radius:.4rem;
padding:.6rem .75rem;margin:.5rem 0 .75rem}
input[type=radio],input[type=checkbox]{position:absolute;opacity:0;width:1px;height:1px;margin:0}
.levels label,.reasons label{display:flex;align-items:center;gap:.75rem;background:#fff;
border:2px solid #66717d;cursor:pointer;overflow-wrap:anywhere}
.levels label{min-height:3.2rem;margin-top:.5rem;padding:.45rem 1rem;border-radius:.75rem;font-size:1.3rem}
.levels label::before,.reasons label::before{content:"";flex:none;width:1.5rem;height:1.5rem;
border:2px solid #4a5664;background:#fff;color:#fff;font-size:1rem;line-height:1.25rem;text-align:center}
.levels label::before{border-radius:50%}
.reasons{display:none;margin-top:1rem;padding:.75rem;border:2px dashed #a4161a;border-radius:.75rem;background:#fff}
.reasons label{min-height:2.9rem;margin-top:.4rem;padding:.35rem .75rem;border-radius:.4rem;font-size:1.1rem}
.reasons label::before{border-radius:.25rem}
#s2:checked~.reasons,#s1:checked~.reasons{display:block}
.reasons legend{float:left;width:100%;margin-bottom:.1rem}.reasons>*{clear:both}
input:checked+label{border-width:3px;font-weight:bold}
.good:checked+label{border-color:#0b6b37;background:#e3f4ea;color:#0b5a2e}
.bad:checked+label{border-color:#a4161a;background:#fdecea;color:#8c1116}
input:checked+label::before{content:"✓";content:"✓"/"";color:#fff}
input:checked+label::after{content:"已选";content:"已选"/"";margin-left:auto;padding:0 .4rem;
border-radius:.3rem;font-size:.95rem;color:#fff}
.good:checked+label::before,.good:checked+label::after{background:#0b6b37;border-color:#0b6b37}
.bad:checked+label::before,.bad:checked+label::after{background:#a4161a;border-color:#a4161a}
input:focus-visible+label{outline:.2rem solid #0b4f9c;outline-offset:.15rem}
.contact{margin-top:1rem}
.contact label{font-weight:bold}
.contact input{display:block;width:100%;margin-top:.3rem;font-size:1.3rem;padding:.6rem .8rem;
border:2px solid #66717d;border-radius:.75rem;background:#fff;color:#1d2733}
.contact input:focus{outline:.2rem solid #0b4f9c;outline-offset:.15rem}
.contact input[aria-invalid=true]{border-color:#b3261e}
.note{color:#4a5664;font-size:.95rem;margin:.3rem 0 0}
button{display:block;width:100%;margin-top:1.2rem;padding:.9rem;font:inherit;font-size:1.4rem;
border:2px solid #0b4f9c;border-radius:.75rem;background:#0b4f9c;color:#fff;cursor:pointer}
button:focus-visible{outline:.2rem solid #1d2733;outline-offset:.15rem}
button:disabled,form[aria-busy=true] button{background:#4a5664;border-color:#4a5664}
.status{min-height:1.5em;margin:.4rem 0 0;color:#4a5664;text-align:center}
.result{background:#fff;border:1px solid #8895a3;border-radius:.75rem;padding:1rem;margin-top:.5rem}.result p{margin:0}
.mark{display:inline-block;width:2.2rem;height:2.2rem;line-height:2.2rem;border-radius:50%;text-align:center;
color:#fff;background:#0b6b37;font-weight:bold;margin-right:.5rem}
.mark.bad{background:#a4161a}
@media (max-width:22rem){main{padding:.5rem .5rem 1.5rem}.reasons{padding:.4rem}.case{display:block}
.levels label,.reasons label{padding-left:.5rem;padding-right:.5rem;gap:.5rem}}
"""


def _page(title: str, content: str, *, script: bool = False) -> str:
    tail = f"<script>{_SCRIPT}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request: the page stays one request
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{content}</main>{tail}</body></html>\n"
    )


def message_page(title: str, text: str, *, ok: bool = False) -> str:
    """A refusal (bad code, 该办件已评价, 404 …), or with ``ok`` the result page after a rating."""
    e = html.escape
    mark = '<span class="mark" aria-hidden="true">✓</span>' if ok else ""
    return _page(title, f'<h1>{mark}{e(title)}</h1><div class="result"><p>{e(text)}</p></div>')


def done_page() -> str:
    """What GET /q/TOKEN shows once this token's rating is stored: the answer to a refresh, Back,
    or a second tap, as much as to the first post."""
    return message_page("评价成功", "您已完成评价，感谢您的参与！您的意见将帮助我们改进服务。", ok=True)


def _place_line(case: CaseView) -> str:
    parts = [*case.place, f"{case.window} 号窗口"]
    return f'<p class="place">{html.escape(" · ".join(p for p in parts if p))}</p>'


def _case_facts(case: CaseView) -> str:
    e = html.escape
    rows = []
    if case.item:
        rows.append(("办理事项", e(case.item)))
    if case.case_no:
        masked = e(mask_case_no(case.case_no))
        spoken = e(spoken_case_no(case.case_no))
        rows.append(("办件编号", f'<span class="sr">{spoken}</span><span aria-hidden="true">{masked}</span>'))
    if not rows:
        return ""
    return (
        '<dl class="case">' + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows) + "</dl>"
    )


def form_page(
    case: CaseView,
    error: str | None = None,
    chosen: RatingForm | None = None,
    *,
    problems: dict[str, str] | None = None,
    expired: bool = False,
    kept: bool = False,
) -> str:
    """The rating form. After a refused post, ``problems`` says what each field still needs (shown
    beside it; ``error`` alone is shown at the top) and ``chosen`` keeps the choices; ``expired``:
    the code ran out while the form was open, so the choices are kept and no submit is offered;
    ``kept``: ``chosen`` came from an earlier code of the case that expired, which the page says."""
    e = html.escape
    problems = dict(problems or {})
    anchor_taken = False

    def anchor() -> str:
        nonlocal anchor_taken
        if anchor_taken:
            return ""
        anchor_taken = True
        return f' id="{PROBLEM_ANCHOR}"'

    def problem(name: str) -> str:
        text = problems.get(name)
        return f'<p class="error" id="err-{name}">{e(text)}</p>' if text else ""

    def described_by(name: str) -> str:
        return f' aria-describedby="err-{name}"' if name in problems else ""

    parts = [_place_line(case), "<h1>请对本次服务进行评价</h1>", _case_facts(case)]
    if expired:
        parts.append(f'<p class="notice" role="alert"{anchor()}>{e(EXPIRED_WHILE_OPEN)}</p>')
    elif kept:
        parts.append(f'<p class="notice">{e(KEPT_NOTE)}</p>')
    elif error and not problems:
        parts.append(f'<p class="error" role="alert"{anchor()}>{e(error)}</p>')
    parts.append(f'<form id="rate" method="post" action="#{PROBLEM_ANCHOR}" novalidate>')
    levels_anchor = anchor() if "satisfaction" in problems else ""
    parts.append(
        f'<fieldset class="levels"{levels_anchor}{described_by("satisfaction")}>'
        f"<legend>您对本次服务满意吗？</legend>{problem('satisfaction')}"
    )
    for s in LEVEL_ORDER:
        checked = " checked" if chosen and chosen.satisfaction == s else ""
        parts.append(
            f'<input type="radio" class="{"bad" if is_bad(s) else "good"}" name="satisfaction" '
            f'value="{s}" id="s{s}"{checked}>'
            f'<label for="s{s}">{e(LEVELS[s])}</label>'
        )
    reasons_anchor = anchor() if "reason" in problems else ""
    parts.append(
        f'<fieldset class="reasons" id="reasons"{reasons_anchor}{described_by("reason")}>'
        f"<legend>请选择不满意的原因（可多选，至少一项）</legend>{problem('reason')}"
    )
    for r in DEFAULT_REASONS:
        checked = " checked" if chosen and r.code in chosen.reasons else ""
        parts.append(
            f'<input type="checkbox" class="bad" name="reason" value="{e(r.code)}" id="r{e(r.code)}"{checked}>'
            f'<label for="r{e(r.code)}">{e(r.label)}</label>'
        )
    parts.append("</fieldset></fieldset>")
    phone = e(chosen.phone) if chosen and chosen.phone else ""
    phone_anchor = anchor() if "phone" in problems else ""
    described = "phone-note err-phone" if "phone" in problems else "phone-note"
    phone_invalid = ' aria-invalid="true"' if "phone" in problems else ""
    parts.append(
        f'<div class="contact"{phone_anchor}><label for="phone">手机号码（选填，便于回访）</label>'
        f"{problem('phone')}"
        f'<input type="tel" name="phone" id="phone" autocomplete="tel" value="{phone}"'
        f' aria-describedby="{described}"{phone_invalid}>'
        '<p class="note" id="phone-note">号码加密保存，仅用于核实和回访。</p></div>'
    )
    if expired:
        parts.append(f'<p class="notice">{e(EXPIRED_WHILE_OPEN)}</p></form>')
    else:
        parts.append(
            '<button type="submit">提交评价</button>'
            '<p class="status" id="sending" role="status" aria-live="polite"></p></form>'
        )
    return _page("服务评价", "".join(parts), script=not expired)
