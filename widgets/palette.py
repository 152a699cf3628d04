"""Colours: the Okabe-Ito colorblind-safe palette, used for every curve and class."""

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
POSITIVE = "#0072B2"  # class +1
NEGATIVE = "#D55E00"  # class -1


CLASS_SYMBOLS = ["o", "s", "t", "d", "star", "p", "h", "t1", "x"]  # class k's marker, beside its class_color(k)
# the classes 0..C-1: Okabe-Ito without its black (the boundaries between classes are drawn black),
# then three of Paul Tol's muted colours, so the ten digit classes differ by colour
CLASS_COLOURS = OKABE_ITO[:7] + ["#882255", "#44AA99", "#999933"]


def color(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def class_color(k: int) -> str:
    return CLASS_COLOURS[k % len(CLASS_COLOURS)]


# Text and guide colours that read on the theme's background: the window's theme (app/theme.py)
# sets which, and widgets take them when they draw, and again in their ``restyle`` on a change.
INK = {
    "light": {"text": "#222222", "muted": "#555555", "pending": "#6b6b6b", "good": "#1b7f3b", "bad": "#b00020",
              "guide": "#888888", "legend": (255, 255, 255, 190),
              "banner_error": "background: #fdecea; color: #7a0012;", "banner_info": "background: #fff4e0; color: #5a3b00;"},
    "dark": {"text": "#dddddd", "muted": "#aaaaaa", "pending": "#9a9a9a", "good": "#5cc17a", "bad": "#ff6b6b",
             "guide": "#999999", "legend": (17, 17, 17, 190),
             "banner_error": "background: #4a1d24; color: #ffd9de;", "banner_info": "background: #3b3220; color: #f3e2bf;"},
}
_theme = {"name": "light"}


def set_ink(theme: str) -> None:
    if theme not in INK:
        raise KeyError(theme)
    _theme["name"] = theme


def ink(role: str):
    """The current theme's colour for ``role`` (a name, or an RGBA tuple for "legend")."""
    return INK[_theme["name"]][role]


def ink_theme() -> str:
    """The theme whose ink ``ink`` gives now ("light" or "dark")."""
    return _theme["name"]
