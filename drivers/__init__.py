"""Serial drivers for the devices wired to a terminal: staff card reader, ticket/case feed, rating keypad.

A port layer that keeps a serial line open through unplugs and garbage (``port``), pure protocol parsers
that turn bytes into device events (``card``, ``ticket``, ``keypad`` over ``framing``), one card-number
normaliser (``cardnum``), the ``Devices`` facade the kiosk uses (``devices``) and a pseudo-terminal
simulator of all three devices (``sim``, also ``kiosk sim``).

Must not import Qt or the kiosk UI modules: readers run on plain threads and hand events to a callback.
It may import ``core.config`` (for ``SerialConfig`` and ``ConfigError``) and nothing else of the kiosk.
"""
