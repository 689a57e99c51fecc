"""The figures (docs/figures.md): statistics derived only from the record, materialised as daily cells and
kept honest by ``kiosk hub stats --verify``; rankings, the quarterly 回访 sample, the 通报 reports, window
posters and the hall's big screen.

``model`` is the pure core (no I/O); ``tables`` and ``store`` keep the cells in the hub's database;
``charts`` draws SVG; ``reports`` and ``posters`` make HTML, PDF and XLSX.
"""
