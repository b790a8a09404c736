"""The comparison charts: one Vega-Lite specification per chart (workbench.charts) that the dashboard shows and the
HTML report renders to static SVG; unmeasured figures named, never drawn as 0; labels stay text."""

from __future__ import annotations

import re

import pytest

from tests.test_report import ROWS, row
from workbench import charts, report
from workbench.report import figures, to_html

EVIL_RECIPE = "<script>alert(1)</script>"


def evil_rows() -> list[dict]:
    failed = dict(row(EVIL_RECIPE, "rec0", 0, 0, 0, 10), error="boom", cost_usd_per_audio_hour=None,
                  processing_s=None, rtfx=None)
    return [*ROWS, failed]


def test_the_report_and_the_dashboard_draw_the_same_chart_specifications(monkeypatch):
    views = pytest.importorskip("workbench.dashboard.views")
    figs = figures(ROWS)
    shown, rendered = [], []
    monkeypatch.setattr(views.st, "vega_lite_chart", lambda data=None, spec=None, **kw: shown.append(spec or data))
    monkeypatch.setattr(views.st, "caption", lambda *a, **kw: None)
    monkeypatch.setattr(report, "to_svg", lambda spec: rendered.append(spec) or "<svg></svg>")
    views.charts(figs, key="k")
    to_html(ROWS, "r")
    assert shown == rendered == charts.specs(figs)
    assert len(shown) == 2  # the headline figures and the latency per stage


def test_unmeasured_figures_are_named_not_drawn_as_zero():
    figs = figures(evil_rows())
    records = {(r["recipe"], r["metric"]): r for r in charts.chart_records(figs)}
    rtfx = records[(EVIL_RECIPE, "RTFx (higher is faster)")]
    assert rtfx["value"] is None and rtfx["shown"] == charts.NOT_MEASURED
    spec = charts.figures_spec(figs)
    bars = spec["spec"]["layer"][0]
    assert bars["mark"]["type"] == "bar" and bars["transform"] == [{"filter": "isValid(datum.value)"}]
    assert any(EVIL_RECIPE in line for line in charts.not_measured(figs))


def test_the_report_charts_are_static_svg_with_escaped_labels_and_nothing_fetched():
    pytest.importorskip("vl_convert")
    page = to_html(evil_rows(), "r")
    svgs = re.findall(r"<figure class=chart>(.*?)</figure>", page, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert "<script" not in svg.lower() and "<foreignobject" not in svg.lower() and "<image" not in svg.lower()
        assert not re.search(r"\b(href|src)\s*=|url\(|@import|@font-face", svg)  # no external reference, no font
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svgs[0]  # the recipe name, as text
    assert charts.NOT_MEASURED in svgs[0]
    assert svgs[0].count("<path") > 4  # bars drawn
