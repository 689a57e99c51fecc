"""The shared core: what the terminal, the sync agent and the hub agree on.

Owns the code tables and levels (``domain``), the event format and hash chain (``events``), request
signing (``signing``), the QR token (``qrtoken``), sealing of rater contact data (``contact``), card
numbers (``cardnum``), the terminal's configuration file (``config``), the local event log (``store``),
the systemd notify protocol (``systemd``) and progress bars on a terminal (``progress``). Each rule is
written once, here.

Must not import ``drivers``, ``kiosk``, ``sync``, ``hub`` or ``commands``, nor Qt, FastAPI or
SQLAlchemy (tests/test_architecture.py enforces it). ``store`` is the one module that needs a terminal
package (sqlite-utils); the hub never imports it.
"""

__version__ = "0.2.0"
