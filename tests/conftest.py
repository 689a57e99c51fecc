"""Shared fixtures. Qt runs offscreen in every test; each test gets its own folder for files it makes."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
