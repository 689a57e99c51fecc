"""The evaluator terminal (``kiosk run``): the evaluation flow (``flow``, plain Python), the Qt window and
its pages (``app``, ``ui``), the local roster, the window's figures, the admin PIN and ``kiosk screenshot``.

It stands on ``drivers`` (the serial devices) and ``core`` (configuration, event log, domain tables).
Must not import ``sync``, ``hub`` or ``commands``, nor any web server or SQL toolkit; only the UI modules
(``app``, ``controller``, ``ui``, ``screenshot``) import Qt, so the flow is tested without a GUI
toolkit; ``voice`` plays the prompts through ``aplay``, without Qt.
"""
