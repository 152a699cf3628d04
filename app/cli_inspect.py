"""`info`, `check`, `presets` and `render`: read run files and presets, headless."""

from __future__ import annotations

import json
import math

from margin_explorer.core.metrics import TEST_QUANTILES
from margin_explorer.core.run_status import RunStatus

from .cli_progress import format_number

CLAIM_FAILS = 1  # `check`: a claim does not hold
NOT_JUDGED = 3  # `check`: no claim fails, but some cannot be judged (the run is too short, or lacks the data)

SHOWN_LIMIT = 300  # characters of one name or reason from a file that `info` prints


def shown(text, limit: int = SHOWN_LIMIT) -> str:
    """Text from a file, safe to print: control characters (escape sequences) become spaces or
    go, and a long text is cut, saying so."""
    import unicodedata

    text = "".join(" " if ch in "\t\n\r" else ch for ch in str(text)
                   if ch in "\t\n\r" or unicodedata.category(ch) not in ("Cc", "Cf"))
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def _finite_or_null(value):
    """JSON has no NaN or infinity: write null (json.dumps would write the non-JSON NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


def cmd_info(args) -> int:
    from margin_explorer.core.runfile import RunReader

    with RunReader(args.run) as run:
        if args.json:
            print(json.dumps(_finite_or_null({
                "config": run.config.to_dict(), "status": run.status, "status_reason": run.status_reason,
                "homogeneity": run.homogeneity, "final_metrics": run.final_metrics(), "records": run.n_records,
                "snapshots": run.n_snapshots, "events": run.events}), indent=2, allow_nan=False))
            return 0
        config = run.config
        n, d = run.dataset_shape
        print(f"run:        {shown(args.run)}")
        if config.name:
            print(f"name:       {shown(config.name)}")
        print(f"status:     {shown(run.status)}"
              + (f" ({shown(run.status_reason)})" if run.status_reason and run.status != RunStatus.FINISHED else ""))
        print(f"network:    {shown(run.homogeneity.get('explanation', '?'))}")
        classes = f", {run.classes} classes (labels 0..{run.classes - 1})" if run.classes > 2 else ""
        print(f"dataset:    {shown(run.dataset_name)}, n = {n}, d = {d}{classes}")
        opt = config.optimizer
        print(f"training:   {config.loss.kind} loss ({config.loss.reduction}), {opt.kind}, lr {opt.lr:g}, "
              f"{opt.step_rule} step, {config.run.dtype} on {shown(run.attrs.get('device', '?'))}, seed {config.run.seed}")
        print(f"records:    {run.n_records}, snapshots: {run.n_snapshots}")
        _print_test_set(run)
        _print_margin_distribution(run)
        _print_events(run.events)
        print("final metrics:")
        for name, value in run.final_metrics().items():
            print(f"  {shown(name, 60):24s} {format_number(value)}")
        print("config:")
        print(json.dumps(config.to_dict(), indent=2)[:4000])
    return 0


def _print_test_set(run) -> None:
    """The final record's test metrics (core/metrics.py TEST_METRICS), for a run with a test set."""
    if run.test_size is None:
        print("test set:   none")
        return
    final = run.final_metrics()
    if "test_accuracy" not in final:
        print(f"test set:   {run.test_size} points, no test metrics recorded")
        return
    quantiles = run.metrics_named(["test_margin_quantiles"]).get("test_margin_quantiles")
    spread = ""
    if quantiles is not None and len(quantiles):
        levels = ", ".join(f"{q:.0%} {format_number(v)}" for q, v in zip(TEST_QUANTILES, quantiles[-1]))
        spread = f"; quantiles {levels}"
    print(f"test set:   {run.test_size} points: accuracy {format_number(final['test_accuracy'])}, "
          f"log loss {format_number(final['test_log_loss'])}, normalized margin min "
          f"{format_number(final['test_margin_min'])}{spread}; {final['test_margin_below_zero']:.1%} below zero")


def _print_margin_distribution(run) -> None:
    """The final record's quantiles of the training samples' normalized margins (the window's
    Margin distribution plot; core/margin_distribution.py)."""
    from margin_explorer.core.margin_distribution import DISTRIBUTION_NAMES, margin_quantiles

    row = run.final_row("sample_margins")
    if row is None or row.ndim != 1 or not row.size:
        return
    levels = ", ".join(f"{name} {format_number(v)}" for name, v in zip(DISTRIBUTION_NAMES, margin_quantiles(row[None, :])[0]))
    print(f"margins:    q_i / ||theta||^M over the {row.size} training samples at the last record: {levels}")


def _print_events(events) -> None:
    """The run's health events (core/health.py): where it collapsed or got stuck."""
    print(f"events:     {len(events) or 'none'}")
    for event in events:
        print(f"  {shown(event['message'])}")


def cmd_check(args) -> int:
    """Print each claim's verdict for a saved run (the checks its preset names, or --claims)."""
    from margin_explorer.core.claims import RunData, judge
    from margin_explorer.core.presets import load_preset
    from margin_explorer.core.runfile import RunReader

    with RunReader(args.run) as reader:
        config = reader.config
        claims = config.claim_specs()
        if args.preset:
            claims = load_preset(args.preset).claim_specs()
        if not claims:
            print(f"{args.run}: its config names no claims; use --preset NAME to judge it by a preset's claims")
            return 0
        verdicts = judge(RunData.from_reader(reader), claims)
        events = reader.events
    count = f"{len(verdicts)} claim" + ("" if len(verdicts) == 1 else "s")
    print(f"{shown(args.run)}: {shown(config.name or 'run')} ({count})")
    for event in events:
        print(f"  [{shown(event['kind'], 20)}] {shown(event['message'])}")
    for verdict in verdicts:
        print("  " + verdict.line())
    if any(v.supported is False for v in verdicts):
        return CLAIM_FAILS
    return NOT_JUDGED if any(v.supported is None for v in verdicts) else 0


def cmd_presets(args) -> int:
    from margin_explorer.core.presets import load_preset, preset_names

    for name in preset_names():
        config = load_preset(name)
        print(f"{name:28s} {config.name}")
    return 0


def cmd_render(args) -> int:
    from margin_explorer.app.export import render

    render(args.runs, [p.strip() for p in args.plots.split(",") if p.strip()], args.out, width=args.width,
           scale=args.scale, columns=args.columns, log_x=args.log_x)  # render checks the sizes and names
    print(args.out)
    return 0
