"""The ``kiosk`` command line and the commands that span several parts: ``doctor`` (checks a terminal:
configuration, serial ports, the log, the sync agent's cursor, the hub), ``demo`` (hub, simulated
devices, agent and kiosk together) and ``logtools`` (``kiosk export``, ``kiosk store verify``).

The top layer: it may import every other package, and no other package may import it. It must not
import a subcommand's module before that subcommand runs: ``cli`` imports each one on demand, so
``kiosk hub`` works where only the hub's packages are installed and ``kiosk run`` where only the
terminal's are.
"""
