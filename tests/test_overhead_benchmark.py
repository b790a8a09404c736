"""benchmarks/cascade_overhead.py stops before timing anything unless both sides would do the same work."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "cascade_overhead.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cascade_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recipe(table: dict):
    from workbench.recipes import parse_recipe

    return parse_recipe(table, name=table["name"])


@pytest.fixture
def whole_features(monkeypatch):
    """What main() sets: faster-whisper's whole-signal features at any length."""
    from workbench.backends import asr

    monkeypatch.setattr(asr, "LAZY_FEATURES_MIN_S", math.inf)


def test_its_recipe_and_the_direct_call_do_the_same_work(bench, whole_features):
    wb, direct = bench.workbench_settings(_recipe(bench.recipe_table(2))), bench.direct_settings(2)
    bench.assert_equal_work(wb, direct)  # returns: nothing differs
    assert wb["features"] == direct["features"] == "whole signal"


def test_the_window_at_a_time_features_would_not_be_the_same_work(bench):
    """The workbench's default past 300 s of speech: equal to faster-whisper's features only up to rounding."""
    with pytest.raises(SystemExit, match="features"):
        bench.assert_equal_work(bench.workbench_settings(_recipe(bench.recipe_table(2))), bench.direct_settings(2))


@pytest.mark.parametrize("change, named", [({"beam_size": 1}, "beam_size"), ({"cpu_threads": 1}, "cpu_threads"),
                                           ({"batch_size": 4}, "features")])  # batched: per-clip features
def test_a_difference_stops_it_and_names_the_setting(bench, whole_features, change, named):
    table = bench.recipe_table(2)
    table["asr"].update(change)
    with pytest.raises(SystemExit, match=named):
        bench.assert_equal_work(bench.workbench_settings(_recipe(table)), bench.direct_settings(2))


def test_differing_transcripts_are_compared_after_normalisation(bench):
    """Case and punctuation are not a difference in words; a changed word is."""
    assert "0 word edits" in bench.word_difference("Hello, world.", "hello world")
    assert "1 word edits apart after Whisper normalisation = 50.00 %" in bench.word_difference("Hello, world.", "hello word")
