"""The Compare page on the real bundled models (AppTest): two comparisons with the same recipes load the models
once — the second reuses them — and give the same words and numbers."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from workbench.dashboard import APP
from workbench.store import ResultStore

pytestmark = pytest.mark.integration


def test_a_second_comparison_reuses_the_loaded_models(tmp_path, monkeypatch):
    from workbench.dashboard.resources import pipeline_pool, recipe_choices

    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("WORKBENCH_OUT", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    pipeline_pool.clear()
    recipe_choices.clear()
    try:
        at = AppTest.from_file(str(APP), default_timeout=600)
        at.run()
        at.multiselect(key="recipes").set_value(["cascade-fast", "whisper-raw"])
        for _ in range(2):
            at.button(key="run-sample").click().run()
            assert not at.exception and not at.error
        pool = pipeline_pool()
        assert pool.loads == 2 and len(pool) == 2
        with ResultStore(tmp_path / "store.sqlite") as store:
            first, second = (store.rows(run_id=r["run_id"]) for r in store.runs())
        assert [r["recipe"] for r in second] == ["cascade-fast", "whisper-raw"]
        assert all(r["stage_details"]["load"].get("reused") for r in second)
        assert not any(r["stage_details"]["load"].get("reused") for r in first)
        for a, b in zip(first, second):
            assert a["transcript"]["text"] == b["transcript"]["text"] and a["metrics"]["wer"] == b["metrics"]["wer"]
            assert a["metrics"]["wer"] is not None and a["metrics"]["wer"] < 0.5
        assert "(reused)" in "".join(h.value for h in at.get("html"))
    finally:
        pipeline_pool().clear()
        pipeline_pool.clear()
