"""The comparison charts, specified once as Vega-Lite (plain dicts, data inline) for every face: the dashboard
shows them with ``st.vega_lite_chart``, the HTML report embeds them as static SVG rendered by vl-convert
(:func:`to_svg`; no script, no network, no font fetched: text is drawn in the generic ``sans-serif``).

Unmeasured figures are named on the chart ("not measured"), never drawn as 0. Recipe names and other labels are
data, not markup: Vega's SVG renderer escapes them (tests/test_charts.py holds it to that).
"""

from __future__ import annotations

from collections.abc import Sequence

from typing import TYPE_CHECKING

from workbench.aggregate import RecipeSummary

if TYPE_CHECKING:
    from workbench.tasks.summary import QuestionFigures

__all__ = ["NOT_MEASURED", "accuracy_records", "accuracy_spec", "chart_records", "stage_records", "figures_spec",
           "stages_spec", "specs", "to_svg"]

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


def accuracy_records(asked: QuestionFigures | None) -> list[dict]:
    """(recipe, category, accuracy %, interval %, shown) per recipe and category of the questions' figures
    (:func:`workbench.tasks.summary.question_figures`), the ``all`` rows included; accuracy None where no answer
    was scored (shown "not judged")."""
    if asked is None:
        return []
    out = []
    for a in asked.accuracy:
        value = None if a.accuracy is None else 100 * a.accuracy
        out.append({"recipe": a.recipe, "category": a.category, "accuracy": value,
                    "low": 100 * a.ci[0] if a.ci else None, "high": 100 * a.ci[1] if a.ci else None,
                    "shown": "not judged" if value is None else f"{value:.0f}% ({a.correct}/{a.questions})"})
    return out


def accuracy_spec(asked: QuestionFigures | None) -> dict | None:
    """Accuracy per category per recipe: one bar per recipe within each category, its 95% bootstrap interval over
    the questions as a line where there is one; a category no answer of a recipe was scored in is written
    "not judged", with no bar. None when no question was asked."""
    records = accuracy_records(asked)
    if not records:
        return None
    from workbench.tasks.summary import ALL

    categories = [c for c in dict.fromkeys(r["category"] for r in records) if c != ALL] + [ALL]
    y = {"field": "category", "type": "nominal", "title": None, "sort": categories}
    offset = {"field": "recipe", "type": "nominal", "sort": list(dict.fromkeys(r["recipe"] for r in records))}
    color = {**offset, "title": "recipe"}
    return {
        "title": "Accuracy per category (%, higher is better)",
        "data": {"values": records},
        "width": 400, "height": {"step": 18},
        "transform": [{"calculate": "max(isValid(datum.accuracy) ? datum.accuracy : 0, "
                                    "isValid(datum.high) ? datum.high : 0)", "as": "at"}],  # the label: past the line
        "layer": [
            {"transform": [{"filter": "isValid(datum.accuracy)"}], "mark": "bar",
             "encoding": {"x": {"field": "accuracy", "type": "quantitative", "title": "accuracy %",
                                "scale": {"domain": [0, 100]}},
                          "y": y, "yOffset": offset, "color": color,
                          "tooltip": [{"field": "recipe"}, {"field": "category"}, {"field": "shown", "title": "accuracy"}]}},
            {"transform": [{"filter": "isValid(datum.low)"}], "mark": {"type": "rule", "color": "#222"},
             "encoding": {"x": {"field": "low", "type": "quantitative"}, "x2": {"field": "high"}, "y": y,
                          "yOffset": offset}},
            {"mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 10},
             "encoding": {"x": {"field": "at", "type": "quantitative"}, "y": y, "yOffset": offset,
                          "text": {"field": "shown"},
                          "color": {"condition": {"test": "isValid(datum.accuracy)", "value": "#222"}, "value": "#999"}}},
        ],
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

