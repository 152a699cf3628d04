"""Colours: the Okabe-Ito colorblind-safe palette, used for every curve and class."""

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
POSITIVE = "#0072B2"  # class +1
NEGATIVE = "#D55E00"  # class -1


def color(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]
