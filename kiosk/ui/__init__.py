"""The evaluator's Qt window: pages, widgets, drawing, the admin panel. Qt lives here and only here.

Only PySide6 QtCore, QtGui and QtWidgets. Nothing here decides anything: the pages render a
``kiosk.flow.View`` and report what the citizen touched; ``kiosk.controller`` wires them to the flow, the
event log and the serial devices. Must not import drivers, sync or hub.
"""
