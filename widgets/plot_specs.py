"""What each trajectory plot shows: its curves, axis labels, log or linear y, the notes and
tooltips that say what a curve is (PLOTS), and the series a reader needs to draw them."""

from __future__ import annotations

from dataclasses import dataclass, field

from margin_explorer.core.margin_distribution import DISTRIBUTION_DEFINITION, DISTRIBUTION_NAMES, DISTRIBUTION_SERIES
from margin_explorer.core.metrics import DEFINITIONS


@dataclass
class PlotSpec:
    key: str
    title: str
    curves: list  # (series name, legend label)
    log_y: bool = False
    kind: str = "records"  # records | samples | columns | snapshots
    reference: str | None = None  # an info key drawn as a dashed horizontal line
    columns: str | None = None
    extra: dict = field(default_factory=dict)
# KKT eps is relative to ||theta~||: below this it is 0 to float64 precision (a linear model at its
# SVM direction), and a log axis would drop it; it is drawn on this labeled floor instead
ZERO_FLOOR = 1e-15
DEFINED = {**DEFINITIONS, DISTRIBUTION_SERIES: DISTRIBUTION_DEFINITION}  # the recorded series and the derived one
PLOTS = [
    # a loss_based run (Lyu and Li's adaptive rate) draws its alpha on the right-hand axis
    PlotSpec("loss", "log L", [("log_loss", "log L")],
             extra={"y_label": "log L", "companion": ("step_alpha", "α (loss-based rate)")}),
    PlotSpec("margin", "Normalized margin", [("normalized_margin", "γ = q_min / ‖θ‖^M"),
                                             ("smoothed_margin", "γ̃ = ℓ⁻¹(L) / ‖θ‖^M")],
             reference="reference_margin",
             # steepest descent in l_inf (sign) or l1 (coordinate) maximizes the margin in its own
             # norm: those runs also show both, the matching one with its max-margin line
             extra={"separated_range": True, "y_label": "normalized margin", "y_short": "margin",
                    "steepest": {"sign": [("normalized_margin_linf", "γ∞ = q_min / ‖θ‖∞^M"),
                                          ("normalized_margin_l1", "γ₁ = q_min / ‖θ‖₁^M")],
                                 "coordinate": [("normalized_margin_l1", "γ₁ = q_min / ‖θ‖₁^M"),
                                                ("normalized_margin_linf", "γ∞ = q_min / ‖θ‖∞^M")]}}),
    # Lyu and Li's figures' normalization (their code's norm_prod): optional (OPTIONAL_PLOTS), beside
    # the margin plot, whose gamma it is at least L^(L/2) times for L balanced layers
    PlotSpec("margin_layers", "Normalized margin, by layer norms",
             [("normalized_margin_layers", "q_min / ∏ ‖W_l‖_F")],
             extra={"separated_range": True, "y_label": "q_min / ∏ ‖W_l‖_F", "y_short": "margin / ∏"}),
    PlotSpec("norm", "Parameter norm ‖θ‖", [("param_norm", "‖θ‖₂")], log_y=True, extra={"y_label": "‖θ‖₂"}),
    # direction change is recorded per record; records thin out (log-spaced after the every-step
    # phase, a shorter last interval): drawn per step, so neither shows as a jump or a dip
    PlotSpec("angles", "Angles", [("alignment_gap", "1 − cos(θ, −∇L)"),
                                  ("direction_change", "direction change / step"),
                                  ("angle_to_reference", "angle to max-margin")], log_y=True,
             extra={"y_label": "angle (rad), 1 − cos", "y_short": "angle (rad)", "per_step": ("direction_change",),
                    "round_off": ("direction_change",)}),
    PlotSpec("samples", "Sample normalized margins", [("sample_margins", "q_i / ‖θ‖^M")], kind="samples",
             extra={"y_label": "q_i / ‖θ‖^M"}),
    # Ji and Telgarsky 2020: the margin distribution converges; its quantiles are derived from the
    # recorded sample margins (core/margin_distribution.py), never recorded twice. Log y: a settled
    # shape (fixed ratios between the quantiles) shows as parallel lines, whatever the scale does
    PlotSpec("distribution", "Margin distribution",
             [(DISTRIBUTION_SERIES, "quantiles of q_i / ‖θ‖^M over the training set")], kind="columns", log_y=True,
             extra={"column_names": DISTRIBUTION_NAMES, "derived_from": "sample_margins",
                    "y_label": "q_i / ‖θ‖^M quantiles", "y_short": "quantiles"}),
    # the test set's (issue 20): drawn only for a run whose dataset has one (the series are absent otherwise)
    PlotSpec("accuracy", "Accuracy", [("accuracy", "train accuracy"), ("test_accuracy", "test accuracy")],
             extra={"y_label": "accuracy"}),
    PlotSpec("test_samples", "Test sample normalized margins",
             [("test_margin_quantiles", "quantiles of q_i / ‖θ‖^M over the test set"),
              ("test_margin_min", "test min q_i / ‖θ‖^M")], kind="columns",
             extra={"column_names": ["test 10%", "test 25%", "test median", "test 75%", "test 90%"],
                    "empty": "the run's dataset has no test set", "y_label": "test q_i / ‖θ‖^M",
                    "y_short": "test margin"}),
    PlotSpec("stable_rank", "Stable rank", [("stable_rank", "‖W‖_F² / ‖W‖₂²")], kind="columns",
             extra={"y_label": "stable rank"}),
    PlotSpec("ensemble", "Ensemble members' output share", [("ensemble_share", "share")], kind="columns",
             extra={"column_label": "member", "empty": "the network has no ensemble", "y_label": "output share",
                    "y_short": "share"}),
    # delta is negative where q_min(theta~) < 1, which only a non-homogeneous network allows (a GELU
    # network's late snapshots): a log axis draws |delta|, the readout keeps the sign
    PlotSpec("kkt", "KKT residual and Euler defect", [("kkt_eps", "KKT ε"), ("kkt_delta", "|KKT δ|"),
                                                      ("euler_defect", "Euler defect")],
             log_y=True, kind="snapshots", extra={"absolute": {"kkt_delta": "KKT δ"}, "y_label": "residual",
                                                  "floor": {"kkt_eps": ZERO_FLOOR}, "round_off": ("euler_defect",)}),
]
PLOT_KEYS = [p.key for p in PLOTS]
# in the View menu but off until chosen, or until a preset's view (config "view": {"plots": [...]})
# names it: a ninth plot in the default grid left every plot too low to read at 1280 x 720
OPTIONAL_PLOTS = ("margin_layers", "distribution")
TEST_PLOTS = ("accuracy", "test_samples")  # in the grid only while a shown run has a test set
# presentation mode shows these, large (2 x 2 at 1280 x 720), unless the presenter chose others:
# eight plots gave each about 61 px of height, too little to read from a room
PRESENTATION_PLOTS = ["loss", "margin", "norm", "angles"]
PRESENTATION_SETTING = "presentation_plots"  # where the presenter's choice is remembered
# what the shared horizontal axis shows: runs with different step sizes compare best at equal loss
X_AXES = {"step": "step", "wall_time": "wall time (s)", "neg_log_loss": "−log L"}
# the record series each x axis is drawn from (TrajectoryPlots._x_of)
X_SERIES = {"step": "step", "wall_time": "wall_time", "neg_log_loss": "log_loss"}


def series_needed(keys) -> tuple[set[str], bool]:
    """What the plots ``keys`` draw of a run: (the record series, whether its snapshots), with
    the series of every x axis; a reader loads only these (`main.py render`)."""
    specs = [p for p in PLOTS if p.key in keys]
    names = set(X_SERIES.values())
    for spec in specs:
        names.update(name for name, _label in spec.curves if spec.kind != "snapshots")
        if spec.extra.get("derived_from"):
            names.add(spec.extra["derived_from"])
        if spec.extra.get("companion"):
            names.add(spec.extra["companion"][0])
        if spec.extra.get("separated_range"):  # the y range follows the records where gamma~ > 0 (plot_follow)
            names.add("smoothed_margin")
        for curves in spec.extra.get("steepest", {}).values():
            names.update(name for name, _label in curves)
    return names, any(spec.kind == "snapshots" for spec in specs)
# direction change and the Euler defect are normalized (radians; a defect relative to ||theta||^M):
# below this they are float64 round-off (~1e-16 at the start of a run, ~1e-17 for a homogeneous
# network), and on a log axis they stretched the range to 1e-20, flattening the curves that matter
ROUND_OFF = 1e-13
ROUND_OFF_NOTE = f"< {ROUND_OFF:.0e}: round-off, not drawn"
SHORT_LABELS = {"test_accuracy": "test", "accuracy": "train", "test_margin_min": "test min", "alignment_gap": "1 − cos", "direction_change": "turn / step", "angle_to_reference": "∠ w*",
                "kkt_eps": "ε", "kkt_delta": "|δ|", "euler_defect": "Euler"}


def short_label(name, label: str) -> str:
    """A curve's label in a compact legend: its symbol, without the definition."""
    return SHORT_LABELS.get(name, label.split(" = ")[0])


def tooltip(spec: PlotSpec) -> str:
    lines = [f"<b>{spec.title}</b>"]
    styles = ["solid", "dashed", "dotted", "dash-dot"]
    for i, (name, label) in enumerate(spec.curves):
        style = f" ({styles[i % 4]} when several runs are shown)" if len(spec.curves) > 1 else ""
        lines.append(f"{label}{style}: {DEFINED.get(name, '')}")
    if spec.extra.get("derived_from"):
        lines.append("A line per quantile, from the minimum (the normalized margin γ) to the maximum: when θ converges in "
                     "direction (Ji and Telgarsky 2020) the lines flatten, decade after decade of steps; on the log axis "
                     "parallel lines are a settled shape (fixed ratios) while the scale still moves. Computed from the "
                     "recorded sample margins (the Sample normalized margins plot); the hover readout gives the min and max")
    elif spec.extra.get("column_names"):
        lines.append("A line per quantile of the test samples' normalized margins (the training samples': the "
                     "Sample normalized margins plot), and their minimum; shown for a run with a test set only")
    elif spec.kind == "columns":
        lines.append("A line per layer (ensemble member), named in the legend; several runs: a colour per run, "
                     "and solid, dashed, dotted, dash-dot for its layers in order")
    if spec.reference:
        lines.append("dashed (linear models): the normalized margin of the max-margin direction the optimizer tends "
                     "to (l2 SVM for gradient descent, l_inf for sign descent, l1 for coordinate descent), through "
                     "the origin for a model without bias: at most the Dataset panel's SVM margin, which allows a bias")
    if spec.extra.get("separated_range"):
        lines.append("The y range follows the records past the loss threshold L < l(0) (where γ̃ > 0); "
                     "zoom to see the start, press A (bottom left) to follow again.")
    if spec.log_y:
        floors = spec.extra.get("floor", {})
        zero = (f" ({', '.join(label for name, label in spec.curves if name in floors)} at 0 to float precision "
                f"is drawn on the dotted floor line)") if floors else ""
        lines.append(f"Log axis: values <= 0 are not drawn{zero}.")
    if spec.extra.get("per_step"):
        lines.append("Direction change is recorded between records; drawn divided by the steps between them "
                     "(records are log-spaced later in a run), an angle per step.")
    if spec.extra.get("round_off"):
        lines.append(f"Values below {ROUND_OFF:.0e} are float64 round-off and are not drawn (they would stretch "
                     "a log axis to 1e-20).")
    if spec.extra.get("companion"):
        lines.append("A run with the loss_based step rule (Lyu and Li's adaptive rate): its α, the step on "
                     "log L, dashed on the right-hand log axis; it drops where a step was undone.")
    lines.append("Right-click: log or linear y axis. Ctrl+0: every plot's zoom back to the data.")
    for name, signed in spec.extra.get("absolute", {}).items():
        lines.append(f"{signed} is drawn as its absolute value: it is negative where the rescaled point is not "
                     f"feasible (q_min(θ~) < 1, a network that is not homogeneous); the readout gives its sign.")
    return "<br>".join(lines)
