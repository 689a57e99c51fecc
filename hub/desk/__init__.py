"""The bureau's 差评 desk: the 台账 of bad ratings with working-day deadlines, 回访, 整改, 复核, contact
reveals, alerts, and the rules behind them.

Pure rules (no I/O): ``calendar`` (working days, deadlines), ``workflow`` (the item's state machine),
``roles`` (who may see and do what). The storage, the alerts and the console build on them elsewhere in
``hub``. Like all of ``hub``, this must not import Qt, ``kiosk``, ``drivers`` or ``sync``.
"""
