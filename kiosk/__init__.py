"""The evaluator terminal: configuration, domain rules, the durable event log, and the UI.

Everything here except the UI modules (``app``, ``ui*``, ``screenshot``) is plain Python and must not
import Qt, so that ``drivers``, ``sync`` and ``hub`` can use the configuration, the domain tables
and the event log without pulling in a GUI toolkit.
"""

__version__ = "0.1.0"
