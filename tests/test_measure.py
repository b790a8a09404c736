"""StageClock: stages in order, details kept, hook called at start and end; peak RSS helpers."""

from __future__ import annotations

import sys

import pytest

from workbench.datamodel import StageTiming
from workbench.hooks import Hooks, null_hook
from workbench.measure import StageClock, peak_rss_mb, reset_peak_rss


def busy(n: int = 20_000) -> int:
    return sum(i * i for i in range(n))


def test_records_stages_in_order_with_details():
    clock = StageClock()
    with clock.stage("load") as detail:
        detail["model"] = "tiny"
        busy()
    with clock.stage("vad"):
        busy()
    with clock.stage("asr", total=3.0) as detail:
        detail["segments"] = 2
        busy()
    assert [t.stage for t in clock.timings] == ["load", "vad", "asr"]
    assert {k: v for k, v in clock.timings[0].detail.items() if k != "peak_rss_mb"} == {"model": "tiny"}
    assert {k: v for k, v in clock.timings[1].detail.items() if k != "peak_rss_mb"} == {}
    assert {k: v for k, v in clock.timings[2].detail.items() if k != "peak_rss_mb"} == {"segments": 2}
    for t in clock.timings:
        assert isinstance(t, StageTiming)
        assert t.wall_s > 0
        assert t.cpu_s is not None and t.cpu_s >= 0


def test_wall_covers_sleep_cpu_does_not_grow_much():
    import time

    clock = StageClock()
    with clock.stage("sleep"):
        time.sleep(0.02)
    (t,) = clock.timings
    assert t.wall_s > 0
    assert t.wall_s >= t.cpu_s  # sleeping uses wall time, hardly any CPU


def test_failed_stage_is_still_timed_and_error_propagates():
    clock = StageClock()
    with pytest.raises(RuntimeError, match="boom"):
        with clock.stage("asr") as detail:
            detail["partial"] = True
            raise RuntimeError("boom")
    assert [t.stage for t in clock.timings] == ["asr"]
    assert {k: v for k, v in clock.timings[0].detail.items() if k != "peak_rss_mb"} == {"partial": True}


def test_hook_called_at_start_and_end():
    calls = []

    def hook(step_name, artifact=None, *, total=None, completed=None):
        calls.append((step_name, artifact, total, completed))

    clock = StageClock(hook)
    with clock.stage("asr", total=12.5):
        assert calls == [("asr", None, 12.5, 0)]  # announced before the work
    assert len(calls) == 2
    name, artifact, total, completed = calls[1]
    assert name == "asr"
    assert isinstance(artifact, StageTiming)
    assert artifact is clock.timings[-1]
    assert total == 12.5 and completed == 12.5


def test_hook_without_total():
    calls = []
    clock = StageClock(lambda step, artifact=None, *, total=None, completed=None: calls.append((step, total, completed)))
    with clock.stage("load"):
        pass
    assert calls == [("load", None, 0), ("load", None, None)]


def test_hook_end_called_on_failure():
    ends = []
    clock = StageClock(lambda step, artifact=None, **kw: ends.append(artifact) if artifact is not None else None)
    with pytest.raises(ValueError):
        with clock.stage("vad"):
            raise ValueError("x")
    assert len(ends) == 1 and ends[0].stage == "vad"


def test_hooks_fan_out_and_null_hook():
    a, b = [], []
    hooks = Hooks(lambda s, art=None, **kw: a.append(s), None, lambda s, art=None, **kw: b.append(s))
    clock = StageClock(hooks)
    with clock.stage("x"):
        pass
    assert a == b == ["x", "x"]
    assert null_hook("anything", None, total=1, completed=1) is None


def test_default_clock_uses_null_hook():
    clock = StageClock()
    assert clock.hook is null_hook
    other = StageClock()
    with clock.stage("a"):
        pass
    assert other.timings == []  # timings are not shared between clocks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_peak_rss_positive_on_linux():
    peak = peak_rss_mb()
    assert isinstance(peak, float)
    assert peak > 0


def test_reset_peak_rss_returns_bool():
    result = reset_peak_rss()
    assert isinstance(result, bool)
    peak = peak_rss_mb()
    assert peak is None or peak > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-stage peaks need /proc/self/clear_refs")
def test_each_stage_records_its_own_peak_and_the_run_peak_still_covers_all():
    import numpy as np

    reset_peak_rss()
    clock = StageClock()
    with clock.stage("big"):
        block = np.ones(300 * 1024 * 1024 // 8)  # 300 MiB touched
        del block
    with clock.stage("small"):
        busy()
    big, small = (t.detail["peak_rss_mb"] for t in clock.timings)
    assert big - small > 200  # the small stage's peak does not include the big one's 300 MiB
    assert peak_rss_mb() >= big - 0.1  # (big is rounded to 0.1) the recording's / recipe's peak still covers every stage
