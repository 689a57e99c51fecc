"""The evaluator terminal: configuration, domain rules, the durable event log, the flow, and the UI.

Only the UI modules (``app``, ``controller``, ``ui``, ``screenshot``, and ``demo``, which imports Qt
only when it opens the window) may import Qt; ``voice`` plays prompts through ``aplay``, without Qt. Everything else here is plain Python, so that ``drivers``, ``sync`` and
``hub`` can use the configuration, the domain tables and the event log without a GUI toolkit.
"""
