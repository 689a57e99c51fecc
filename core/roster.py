"""The staff roster CSV, read by one rule for the kiosk's local file and the hub's import.

Header ``card,staff_no,name,title,photo`` (docs/configuration.md, docs/hub.md): names are matched
without regard to case or surrounding spaces; ``title`` and ``photo`` are optional; ``photo`` is a path
relative to the CSV. The text is UTF-8 (an Excel BOM is fine), else GB18030 (what Excel on a Chinese
Windows saves, GBK included); bytes neither reads are refused, never guessed at. A row needs a card that
is a card number (core.cardnum: any printed form), a staff number and a name; a card may appear once
(in whatever form); a photo is an image (PNG, JPEG, GIF, WebP or BMP) within core.photo's limits (2 MB,
4096 pixels a side).

What cannot be used is described in ``problems``, by file and line and never by card number (the
messages are logged, and a staff card is a key to the premises). The kiosk uses the good rows and logs
the problems; the hub's import refuses a file with any problem, so the operator fixes it first.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .cardnum import card_keys
from .photo import MAX_PHOTO_BYTES, MAX_PHOTO_SIDE_PX
from .progress import advance

REQUIRED_COLUMNS = ("card", "staff_no", "name")
OPTIONAL_COLUMNS = ("title", "photo")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# Image formats the kiosk (Qt) and a browser both show.
SHOWN_FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP", "BMP"})


@dataclass(frozen=True)
class RosterRow:
    where: str  # "roster.csv line 4", for problem reports
    card: str  # as written
    staff_no: str
    name: str
    title: str
    photo: bytes | None
    photo_type: str | None  # media type of the photo


@dataclass
class RosterFile:
    rows: list[RosterRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def decode_csv_text(data: bytes) -> str:
    """UTF-8 (BOM or not), else GB18030; UnicodeDecodeError (of GB18030) when neither reads it."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def read_roster_csv(path: Path) -> RosterFile:
    """The usable rows of a roster CSV and what was wrong with the rest."""
    result = RosterFile()
    problems = result.problems
    try:
        data = path.read_bytes()
    except OSError as e:
        problems.append(f"{path}: cannot read: {e.strerror}")
        return result
    try:
        text = decode_csv_text(data)
    except UnicodeDecodeError as e:
        problems.append(f"{path}: neither UTF-8 nor GB18030 text (byte {e.start})")
        return result
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        problems.append(f"{path}: header lacks {', '.join(missing)} (expected {','.join(COLUMNS)})")
        return result
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        problems.append(f"{path}: ignoring unknown columns {', '.join(unknown)}")
    reader.fieldnames = header
    taken: dict[int, str] = {}  # each 32-bit key a card denotes -> the row that has it
    for row in reader:
        advance()  # a terminal's progress bar (kiosk hub roster import); nothing otherwise
        where = f"{path.name} line {reader.line_num}"
        if None in row:  # cells beyond the header
            problems.append(f"{where}: more cells than the header has columns")
            continue
        values = {c: (row.get(c) or "").strip() for c in COLUMNS}
        if any("\x00" in v for v in values.values()):  # no text column (PostgreSQL's included) holds it
            problems.append(f"{where}: a NUL character in the row")
            continue
        if not all(values[c] for c in REQUIRED_COLUMNS):
            problems.append(f"{where}: card, staff_no and name are required")
            continue
        keys = card_keys(values["card"])
        if not keys:
            problems.append(f"{where}: card is not a card number")
            continue
        earlier = sorted({taken[k] for k in keys if k in taken})
        if earlier:
            problems.append(f"{where}: card is already in the roster ({earlier[0]})")
            continue
        photo, photo_type = _read_photo(path.parent, values["photo"], where, problems)
        taken.update(dict.fromkeys(keys, where))
        result.rows.append(
            RosterRow(
                where, values["card"], values["staff_no"], values["name"], values["title"], photo, photo_type
            )
        )
    return result


def _read_photo(folder: Path, name: str, where: str, problems: list[str]) -> tuple[bytes | None, str | None]:
    """The photo's bytes and media type; (None, None) without one or, with a problem noted, when it
    cannot be used (the row itself is kept: a member without a photo is shown with a silhouette)."""
    if not name:
        return None, None
    path = folder / name
    try:
        size = path.stat().st_size
        if size > MAX_PHOTO_BYTES:
            problems.append(f"{where}: photo {name} is {size} bytes, at most {MAX_PHOTO_BYTES}")
            return None, None
        data = path.read_bytes()
    except OSError as e:
        problems.append(f"{where}: photo {name}: {e.strerror}")
        return None, None
    problem, media_type = _check_image(data)
    if problem:
        problems.append(f"{where}: photo {name} {problem}")
        return None, None
    return data, media_type


def _check_image(data: bytes) -> tuple[str | None, str | None]:
    """(what is wrong, None) or (None, media type). The size in pixels is checked from the header before
    anything is decoded: a small file can unpack into gigabytes (an attack on memory)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max(width, height) > MAX_PHOTO_SIDE_PX:
                return f"is {width}x{height} pixels, at most {MAX_PHOTO_SIDE_PX} a side", None
            image.verify()
            if image.format not in SHOWN_FORMATS:
                return f"is {image.format}, not one of {', '.join(sorted(SHOWN_FORMATS))}", None
            return None, Image.MIME.get(image.format, "application/octet-stream")
    except Image.DecompressionBombError:  # so many pixels that Pillow refuses to open it
        return f"has too many pixels, at most {MAX_PHOTO_SIDE_PX} a side", None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "is not an image", None
