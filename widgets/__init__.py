"""Reusable Qt and pyqtgraph widgets: they know nothing of app/."""
