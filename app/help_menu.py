"""The Help menu: every keyboard shortcut and mouse gesture, every quantity's definition, and
what this build is. The shortcuts are read from the window's own actions, so the list cannot
drift from what the keys do."""

from __future__ import annotations

import html
import platform
from importlib import metadata

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from margin_explorer.core.metrics import ARRAY_METRICS, SCALAR_METRICS, SNAPSHOT_METRICS, TEST_METRICS

GESTURES = [
    ("Dataset", "left click", "add a +1 point"), ("Dataset", "right click or Shift+click", "add a -1 point"),
    ("Dataset", "drag a point", "move it"), ("Dataset", "drag on empty space", "select points"),
    ("Dataset", "Ctrl+click", "remove a point"), ("Dataset", "Delete", "remove the selection"),
    ("Dataset", "F", "flip the selection's labels"),
    ("Plots", "hover", "a crosshair and every shown run's values at its nearest record"),
    ("Plots", "wheel, drag", "zoom, pan (the plots' step axes move together)"),
    ("Plots", "A (bottom left of a plot)", "follow the data again after a zoom"),
    ("Plots", "drag a legend", "put it where you want; it stays there"),
    ("Plots", "right click", "pyqtgraph's menu: export one plot, axis options"),
]
# (who, what the app shows from it): THEORY.md's claims, by paper
PAPERS = [
    ("Soudry, Hoffer, Nacson, Gunasekar, Srebro 2018", "a linear model's direction goes to the l2 max-margin one"),
    ("Gunasekar, Lee, Soudry, Srebro 2018", "sign and coordinate descent find the l_inf and l1 max-margin directions"),
    ("Nacson, Gunasekar, Lee, Srebro, Soudry 2019", "ensembles of sub-networks of several depths"),
    ("Lyu and Li 2020", "homogeneous networks: the smoothed normalized margin rises, KKT points, the rates"),
    ("Ji and Telgarsky 2020", "alignment of theta with -grad L"),
    ("Kou, Chen and Gu 2023", "stable rank of a two-layer leaky-ReLU network on nearly orthogonal data"),
    ("Tsilivis, Vardi and Kempe 2024", "steepest descent and the margin of its own norm"),
    ("Cai, Wu, Mei, Lindsey, Bartlett 2024", "large steps on non-homogeneous two-layer networks"),
    ("Cai, Zhou, Wu, Mei, Lindsey, Bartlett 2025", "near-homogeneous networks: residual blocks, GELU, SiLU"),
    ("Schechtman and Schreuder 2025", "stochastic gradient descent late in training"),
]
PACKAGES = ["margin-explorer", "PySide6-Essentials", "pyqtgraph", "numpy", "scipy", "torch", "h5py"]


def shortcuts(window) -> list[tuple[str, str, str]]:
    """(menu, action, keys) of every menu action that has a shortcut, in menu order."""
    rows = []
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        stack = [(menu_action.text().replace("&", ""), menu)]
        while stack:
            title, current = stack.pop(0)
            for action in current.actions():
                if action.menu() is not None:
                    stack.append((f"{title} > {action.text().replace('&', '')}", action.menu()))
                elif action.shortcuts():
                    keys = ", ".join(s.toString(QKeySequence.NativeText) for s in action.shortcuts())
                    rows.append((title, action.text().replace("&", ""), keys))
    return rows


def _table(header, rows) -> str:
    head = "".join(f"<th align='left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table cellspacing='0' cellpadding='3'><tr>{head}</tr>{body}</table>"


def keys_html(window) -> str:
    return ("<h3>Keyboard</h3>" + _table(("Menu", "Action", "Keys"), shortcuts(window))
            + "<h3>Mouse</h3>" + _table(("Where", "Gesture", "Does"), GESTURES))


def quantities_html() -> str:
    parts = ["<p>Every plotted or saved number follows these definitions (THEORY.md). M is the network's "
             "(near-)homogeneity order; L the summed loss unless the run says mean.</p>"]
    for title, table in (("Recorded every step (then log-spaced)", SCALAR_METRICS),
                         ("Arrays, recorded with them", ARRAY_METRICS),
                         ("With them, for a run whose dataset has a test set", TEST_METRICS),
                         ("At snapshots", SNAPSHOT_METRICS)):
        parts.append(f"<h3>{title}</h3>" + _table(("Name", "Definition"), sorted(table.items())))
    return "".join(parts)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_html() -> str:
    from PySide6.QtCore import qVersion

    versions = [("Python", platform.python_version()), ("Qt", qVersion())]
    versions += [(p, _version(p)) for p in PACKAGES]
    return (f"<h2>Margin Explorer {html.escape(_version('margin-explorer'))}</h2>"
            "<p>Watch gradient descent maximize margins: draw a dataset, build a network, press Run.</p>"
            + _table(("Component", "Version"), versions)
            + "<h3>The claims it checks come from</h3>"
            + _table(("Paper", "What the app shows from it"), PAPERS)
            + "<p>Cite the papers for the science; name Margin Explorer and its version above for the figures.</p>")


class HelpDialog(QDialog):
    """A non-modal page of rich text (a run can go on behind it)."""

    def __init__(self, title: str, text: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName(f"help-{title.split()[0].lower()}")
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setHtml(text)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(640, 560)


def build(window, menu) -> dict:
    """Fill ``menu``; returns the actions by name (keys, quantities, about)."""
    dialogs: dict[str, HelpDialog] = {}  # made on first use, kept: the window owns them (tests read them)
    window.help_dialogs = dialogs

    def show(key, title, make_text):
        dialog = dialogs.get(key)
        if dialog is None:
            dialog = dialogs[key] = HelpDialog(title, "", window)
        dialog.browser.setHtml(make_text())  # the shortcuts as they are now
        dialog.show()
        dialog.raise_()

    return {
        "keys": window.add_action(menu, "Keyboard and mouse", lambda: show("keys", "Keyboard and mouse",
                                                                        lambda: keys_html(window)),
                               "F1", "Every shortcut and mouse gesture"),
        "quantities": window.add_action(menu, "Quantities", lambda: show("quantities", "Quantities", quantities_html),
                                     tip="The definition of every number the app shows"),
        "about": window.add_action(menu, "About Margin Explorer", lambda: show("about", "About Margin Explorer",
                                                                           about_html),
                                tip="Version, components and the papers behind the claims"),
    }
