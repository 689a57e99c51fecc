"""Serial drivers for the devices wired to a terminal: staff card reader, ticket/case feed, rating keypad.

A port layer that keeps a serial line open through unplugs and garbage (``port``), pure protocol parsers
that turn bytes into device events (``card``, ``ticket``, ``keypad`` over ``framing``), the ``Devices`` facade the kiosk uses (``devices``) and a pseudo-terminal
simulator of all three devices (``sim``, also ``kiosk sim``).

Must not import Qt, ``kiosk``, ``sync``, ``hub`` or ``commands``: readers run on plain threads and hand
events to a callback. It stands on ``core`` alone (``core.config`` for ``SerialConfig``, ``core.cardnum``).
"""
