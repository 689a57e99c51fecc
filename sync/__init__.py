"""The sync agent (``kiosk sync``): forwards the kiosk's event log to the hub exactly once, in order,
caches the hub's roster and remote settings for the kiosk, and reports the device's health.

A separate process from the UI that opens the same SQLite log. ``client`` signs and posts over any
``requests.Session``; ``upload``, ``roster``, ``secret``, ``heartbeat`` and ``settings`` are one job
each; ``agent`` is the loop on top. Must not import Qt, ``kiosk``, ``drivers``, ``hub`` or
``commands``: it stands on ``core`` alone, and meets the hub only over HTTP (docs/protocol.md).
"""
