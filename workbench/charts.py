"""The comparison charts, specified once as Vega-Lite (plain dicts, data inline) for every face: the dashboard
shows them with ``st.vega_lite_chart``, the HTML report embeds them as static SVG rendered by vl-convert
(:func:`to_svg`; no script, no network, no font fetched: text is drawn in the generic ``sans-serif``).

Unmeasured figures are named on the chart ("not measured"), never drawn as 0. Recipe names and other labels are
data, not markup: Vega's SVG renderer escapes them (tests/test_charts.py holds it to that).
"""

from __future__ import annotations

from collections.abc import Sequence

from workbench.aggregate import RecipeSummary

__all__ = ["NOT_MEASURED", "chart_records", "stage_records", "figures_spec", "stages_spec", "specs", "to_svg"]

NOT_MEASURED = "not measured"

#: (metric title, figure of a RecipeSummary, how its value is written on the bar)
FIGURES = (
    ("WER % (lower is better)", lambda f: None if f.wer is None else 100 * f.wer, lambda v: f"{v:.1f}%"),
    ("RTFx (higher is faster)", lambda f: f.rtfx, lambda v: f"{v:.1f}"),
    ("cost $/audio hour (lower is better)", lambda f: f.cost_usd_per_audio_hour, lambda v: f"${v:.4f}"),
    ("words in non-speech per hour (lower is better)", lambda f: f.nonspeech_words_per_hour, lambda v: f"{v:.1f}"),
)


def _finite(v) -> float | None:
    return None if v is None or v != v or v in (float("inf"), float("-inf")) else float(v)


def chart_records(figs: Sequence[RecipeSummary]) -> list[dict]:
    """Long-form records (recipe, metric, value, shown) for the comparison charts; value None where not measured
    (every figure of a recipe that did not run), shown the value as written on the bar, or "not measured"."""
    out = []
    for f in figs:
        for metric, figure, fmt in FIGURES:
            value = _finite(figure(f))
            out.append({"recipe": f.shown, "metric": metric, "value": value,
                        "shown": NOT_MEASURED if value is None else fmt(value)})
    return out


def stage_records(figs: Sequence[RecipeSummary]) -> list[dict]:
    """(recipe, stage, seconds) for the stacked latency chart, stages in pipeline order."""
    return [{"recipe": f.shown, "stage": stage, "seconds": s} for f in figs if f.ran for stage, s in f.stage_s.items()
            if _finite(s) is not None]


def figures_spec(figs: Sequence[RecipeSummary]) -> dict | None:
    """One faceted bar chart of the headline figures, each metric with its own scale; a figure not measured is
    written as "not measured" at the start of its row, with no bar. None when there are no recipes."""
    records = chart_records(figs)
    if not records:
        return None
    y = {"field": "recipe", "type": "nominal", "title": None, "sort": list(dict.fromkeys(r["recipe"] for r in records))}
    return {
        "data": {"values": records},
        "facet": {"field": "metric", "type": "nominal", "title": None,
                  "sort": list(dict.fromkeys(r["metric"] for r in records))},
        "columns": 2,
        "spec": {
            "width": 300, "height": {"step": 24},
            "transform": [{"calculate": "isValid(datum.value) ? datum.value : 0", "as": "at"}],
            "layer": [
                {"transform": [{"filter": "isValid(datum.value)"}], "mark": {"type": "bar", "color": "#4a78b5"},
                 "encoding": {"x": {"field": "value", "type": "quantitative", "title": None}, "y": y,
                              "tooltip": [{"field": "recipe"}, {"field": "metric"}, {"field": "shown", "title": "value"}]}},
                {"mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
                 "encoding": {"x": {"field": "at", "type": "quantitative"}, "y": y, "text": {"field": "shown"},
                              "color": {"condition": {"test": "isValid(datum.value)", "value": "#222"}, "value": "#999"}}},
            ],
        },
        "resolve": {"scale": {"x": "independent"}},
    }


def stages_spec(figs: Sequence[RecipeSummary]) -> dict | None:
    """Latency per stage, stacked per recipe in pipeline order (seconds over all recordings, model load excluded).
    None when no recipe timed a stage."""
    records = stage_records(figs)
    if not records:
        return None
    return {
        "title": "Latency per stage (seconds, load excluded)",
        "data": {"values": records},
        "transform": [{"window": [{"op": "row_number", "as": "stage_order"}], "groupby": ["recipe"]}],
        "mark": "bar",
        "height": {"step": 26},
        "encoding": {
            "x": {"aggregate": "sum", "field": "seconds", "type": "quantitative", "title": "seconds"},
            "y": {"field": "recipe", "type": "nominal", "title": None, "sort": None},
            "color": {"field": "stage", "type": "nominal", "sort": None},
            "order": {"field": "stage_order", "type": "quantitative"},
            "tooltip": [{"field": "recipe"}, {"field": "stage"},
                        {"field": "seconds", "type": "quantitative", "format": ".2f"}],
        },
    }


def specs(figs: Sequence[RecipeSummary]) -> list[dict]:
    """Every comparison chart of these corpus figures, in the order the faces show them."""
    return [s for s in (figures_spec(figs), stages_spec(figs)) if s is not None]


def not_measured(figs: Sequence[RecipeSummary]) -> list[str]:
    """One line per metric some recipe has no figure for: "metric: recipe, recipe"."""
    by_metric: dict[str, list[str]] = {}
    for r in chart_records(figs):
        if r["value"] is None:
            by_metric.setdefault(r["metric"], []).append(r["recipe"])
    return [f"{m}: {', '.join(rs)}" for m, rs in by_metric.items()]


def to_svg(spec: dict) -> str:
    """The chart as a static SVG document (vl-convert: Vega's own renderer in an embedded engine, no browser).
    The first call in a process starts the engine (about 1 s); later ones take about 0.1 s."""
    import vl_convert

    # the data is inline: no base URL is allowed, so nothing could be fetched even from a crafted spec
    return vl_convert.vegalite_to_svg(spec, allowed_base_urls=[])

