"""Hallucination probes without models: the generated clips (deterministic, at their stated levels and
spectra), real folders, pad specs, splicing silence into a recording (the reference shifted to match),
and the probe summary and its Markdown. Fast: no models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import PYANNOTE_STM, write_wav
from workbench.audio import Audio
from workbench.datamodel import Recording, Segment, Transcript, Usage
from workbench.errors import AudioError, BadInputError
from workbench.hallucination.padding import Pad, insertion_point, pad_recording, parse_pads
from workbench.hallucination.probes import NO_SPEECH, SAMPLE_RATE, SEED, Probe, folder_probes, generated_probes
from workbench.hallucination.suite import padding_delta, probe_markdown, run_probes, summarize_probes
from workbench.pipelines import PIPELINES, PipelineOutput
from workbench.recipes import Recipe
from workbench.references import load_reference
from workbench.result import RunResult
from workbench.runner import Item, MemoryWriter, ResultWriter
from workbench.scoring import score

SR = SAMPLE_RATE


@pytest.fixture(scope="module")
def probes() -> dict[str, Probe]:
    return {p.id: p for p in generated_probes()}


def dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# --- generated probes --------------------------------------------------------------------------


def test_generated_probes_are_the_documented_set(probes):
    assert list(probes) == [
        "silence-5s", "silence-15s", "silence-30s",
        "white-noise-60dBFS", "white-noise-45dBFS", "white-noise-30dBFS",
        "pink-noise-60dBFS", "pink-noise-45dBFS", "pink-noise-30dBFS",
        "hum-50Hz-40dBFS", "clicks-2Hz",
    ]
    for p in probes.values():
        assert p.samples.dtype == np.float32 and p.samples.ndim == 1
        assert p.source == "generated"
        assert np.all(np.isfinite(p.samples)) and np.max(np.abs(p.samples)) <= 1.0


def test_ids_are_unique():
    ids = [p.id for p in generated_probes()]
    assert len(ids) == len(set(ids))


def test_same_seed_gives_identical_samples():
    a, b = generated_probes(), generated_probes(SEED)
    assert [p.id for p in a] == [p.id for p in b]
    for x, y in zip(a, b):
        assert np.array_equal(x.samples, y.samples), x.id


def test_another_seed_gives_other_noise_and_the_same_deterministic_clips():
    a = {p.id: p.samples for p in generated_probes(1)}
    b = {p.id: p.samples for p in generated_probes(2)}
    for clip in a:
        if "noise" in clip:
            assert not np.array_equal(a[clip], b[clip]), clip
            assert dbfs(a[clip]) == pytest.approx(dbfs(b[clip]), abs=0.01)  # same level, other noise
        else:  # silence, hum and clicks involve no randomness
            assert np.array_equal(a[clip], b[clip]), clip


def test_digital_silence_is_exactly_zero(probes):
    for seconds in (5, 15, 30):
        p = probes[f"silence-{seconds}s"]
        assert p.kind == "digital-silence" and p.level_dbfs is None
        assert len(p.samples) == seconds * SR
        assert not np.any(p.samples)


@pytest.mark.parametrize("kind", ["white-noise", "pink-noise"])
@pytest.mark.parametrize("level", [-60, -45, -30])
def test_noise_rms_is_within_a_tenth_of_a_db_of_its_level(probes, kind, level):
    p = probes[f"{kind}{level}dBFS"]
    assert p.kind == kind and p.level_dbfs == level
    assert len(p.samples) == 10 * SR
    assert dbfs(p.samples) == pytest.approx(level, abs=0.1)


def octave_psd_slope(x: np.ndarray, low: float = 125.0, octaves: int = 6) -> tuple[float, list[float]]:
    """dB per octave of the mean power spectral density over octave bands low·2^k … low·2^(k+1),
    and the energy in each band (dB)."""
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    mean_db, band_db = [], []
    for k in range(octaves):
        band = (freqs >= low * 2**k) & (freqs < low * 2 ** (k + 1))
        mean_db.append(10 * np.log10(power[band].mean()))
        band_db.append(10 * np.log10(power[band].sum()))
    slope = float(np.polyfit(np.arange(octaves), mean_db, 1)[0])
    return slope, band_db


def test_pink_noise_falls_3_db_per_octave_and_white_noise_is_flat(probes):
    for level in (-60, -45, -30):
        slope, bands = octave_psd_slope(probes[f"pink-noise{level}dBFS"].samples)
        assert slope == pytest.approx(-3.0, abs=0.5)  # 1/f power: −3 dB per octave of density …
        assert max(bands) - min(bands) < 1.5  # … hence about equal energy in every octave
        white_slope, white_bands = octave_psd_slope(probes[f"white-noise{level}dBFS"].samples)
        assert white_slope == pytest.approx(0.0, abs=0.5)
        assert white_bands[-1] - white_bands[0] == pytest.approx(10 * np.log10(2**5), abs=1.0)  # +3 dB per octave


def test_pink_noise_has_nothing_below_20_hz(probes):
    x = probes["pink-noise-45dBFS"].samples.astype(np.float64)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    assert power[freqs < 19].sum() < 1e-6 * power.sum()


def test_hum_is_50_hz_with_harmonics_at_its_level(probes):
    p = probes["hum-50Hz-40dBFS"]
    assert p.kind == "hum" and p.level_dbfs == -40
    assert dbfs(p.samples) == pytest.approx(-40, abs=0.1)
    power = np.abs(np.fft.rfft(p.samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(p.samples), 1 / SR)
    at = {f: power[np.argmin(np.abs(freqs - f))] for f in (50, 100, 150, 200)}
    assert freqs[np.argmax(power)] == pytest.approx(50.0)
    assert at[50] / power.sum() > 0.6  # amplitudes 1, 1/2, 1/3, 1/4: 50 Hz carries 70% of the power
    assert at[50] > at[100] > at[150] > at[200] > 1e-3 * at[50]
    assert sum(at.values()) / power.sum() > 0.99  # nothing else in it


def test_clicks_are_1_ms_impulses_twice_a_second(probes):
    p = probes["clicks-2Hz"]
    assert p.kind == "clicks" and len(p.samples) == 10 * SR
    starts = np.flatnonzero(p.samples == 0.5)
    assert list(starts) == list(range(0, 10 * SR, SR // 2))  # 20 clicks, every 0.5 s
    nonzero = np.flatnonzero(p.samples)
    assert len(nonzero) == 20 * 16  # each lasts 16 samples = 1 ms
    assert np.all(np.diff(p.samples[:16]) < 0)  # decaying
    assert np.all(p.samples[16 : SR // 2] == 0)


def test_probe_audio_is_a_recording_of_the_right_duration(probes):
    for clip, seconds in (("silence-5s", 5.0), ("silence-30s", 30.0), ("pink-noise-45dBFS", 10.0)):
        audio = probes[clip].audio()
        assert isinstance(audio.recording, Recording)
        assert audio.recording.id == clip
        assert audio.recording.path == f"probe:{clip}"
        assert audio.recording.duration_s == seconds
        assert audio.duration_s == seconds
        assert (audio.recording.sample_rate, audio.recording.channels) == (SR, 1)
        assert audio.samples is probes[clip].samples


# --- real folders ------------------------------------------------------------------------------


def test_folder_probes_reads_every_audio_file_and_ignores_the_rest(tmp_path):
    write_wav(tmp_path / "b-fan.wav", np.full(2 * SR, 0.01, np.float32))
    write_wav(tmp_path / "a-street.wav", np.zeros(SR, np.float32))
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "sub").mkdir()
    write_wav(tmp_path / "sub" / "deeper.wav", np.zeros(SR, np.float32))  # not recursive
    found = folder_probes(tmp_path)
    assert [p.id for p in found] == ["real-a-street", "real-b-fan"]
    assert [p.kind for p in found] == ["real", "real"]
    assert [p.source for p in found] == [str(tmp_path / "a-street.wav"), str(tmp_path / "b-fan.wav")]
    assert [len(p.samples) for p in found] == [SR, 2 * SR]
    audio = found[1].audio()
    assert audio.recording.path == str(tmp_path / "b-fan.wav")
    assert audio.recording.duration_s == 2.0


def test_folder_probes_errors(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        folder_probes(tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(BadInputError, match="no audio files"):
        folder_probes(tmp_path)
    write_wav(tmp_path / "good.wav", np.zeros(SR, np.float32))
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40)
    with pytest.raises(AudioError) as info:
        folder_probes(tmp_path)
    assert "broken.wav" in str(info.value)


# --- pad specs ---------------------------------------------------------------------------------


def test_parse_pads():
    assert parse_pads("30@start,10@end,5@middle,2.5@12.0") == [
        Pad(30.0, "start"), Pad(10.0, "end"), Pad(5.0, "middle"), Pad(2.5, "12.0")]
    assert parse_pads(" 30@start , 30@end ") == [Pad(30.0, "start"), Pad(30.0, "end")]
    assert [str(p) for p in parse_pads("30@start,2.5@12.0")] == ["30@start", "2.5@12.0"]


@pytest.mark.parametrize("spec", ["abc", "-3@start", "0@start", "3@nowhere", "", " , ", "x@end"])
def test_bad_pad_specs_say_how_to_write_one(spec):
    with pytest.raises(BadInputError) as info:
        parse_pads(spec)
    message = str(info.value)
    assert "e.g." in message and "30@start" in message


# --- splicing silence into a recording ---------------------------------------------------------


@pytest.fixture(scope="module")
def stm():
    return load_reference(PYANNOTE_STM)


@pytest.fixture(scope="module")
def ramp() -> np.ndarray:
    """30 s (the pyannote sample's length) of distinct non-zero values, so every sample can be traced."""
    return np.linspace(0.1, 0.9, 30 * SR, dtype=np.float32)


def test_pad_at_start_shifts_everything(stm, ramp):
    samples, ref, points = pad_recording(ramp, stm, [Pad(30.0, "start")])
    assert points == [0.0]
    assert len(samples) == len(ramp) + 30 * SR
    assert not np.any(samples[: 30 * SR]) and np.array_equal(samples[30 * SR :], ramp)
    assert len(ref.segments) == len(stm.segments)
    for b, a in zip(stm.segments, ref.segments):
        assert a.start == pytest.approx(b.start + 30, abs=1e-9) and a.end == pytest.approx(b.end + 30, abs=1e-9)
        assert (a.text, a.speaker) == (b.text, b.speaker)


def test_pad_at_end_shifts_nothing(stm, ramp):
    samples, ref, points = pad_recording(ramp, stm, [Pad(10.0, "end")])
    assert points == [30.0]
    assert len(samples) == len(ramp) + 10 * SR
    assert np.array_equal(samples[: len(ramp)], ramp) and not np.any(samples[len(ramp) :])
    assert ref.segments == stm.segments


def test_pad_at_a_time_shifts_only_what_comes_after(stm, ramp):
    t = 21.7  # in the gap 21.475–21.935
    samples, ref, points = pad_recording(ramp, stm, [Pad(2.5, str(t))])
    assert points == [t]
    cut = int(t * SR)
    assert len(samples) == len(ramp) + int(2.5 * SR)
    assert np.array_equal(samples[:cut], ramp[:cut])
    assert not np.any(samples[cut : cut + int(2.5 * SR)])
    assert np.array_equal(samples[cut + int(2.5 * SR) :], ramp[cut:])
    for b, a in zip(stm.segments, ref.segments):
        shift = 2.5 if b.start > t else 0.0
        assert a.start == pytest.approx(b.start + shift, abs=1e-9), b
        assert a.end == pytest.approx(b.end + shift, abs=1e-9), b
    assert sum(1 for b in stm.segments if b.start > t) == 3


def test_several_pads_add_up(stm, ramp):
    pads = parse_pads("30@start,10@end,5@middle,2.5@21.7")
    samples, ref, points = pad_recording(ramp, stm, pads)
    assert len(samples) == len(ramp) + int(47.5 * SR)
    assert points == sorted(points) and points[0] == 0.0 and points[-1] == 30.0
    middle = points[1]
    for b, a in zip(stm.segments, ref.segments):
        expected = 30 + (5 if b.start > middle else 0) + (2.5 if b.start > 21.7 else 0)
        assert a.start == pytest.approx(b.start + expected, abs=1e-9), b
        assert a.end - a.start == pytest.approx(b.end - b.start, abs=1e-9)
    # the padded reference's non-speech now includes every pad
    gaps = ref.nonspeech_regions(len(samples) / SR)
    assert any(g.start <= 0 and g.end >= 30 for g in gaps)
    assert any(g.start <= len(samples) / SR - 10 and g.end >= len(samples) / SR for g in gaps)


def test_middle_lands_in_a_non_speech_gap(stm):
    t = insertion_point(Pad(5.0, "middle"), stm, 30.0)
    assert not any(s.start < t < s.end for s in stm.speech_spans())
    gap = next(g for g in stm.nonspeech_regions(30.0) if g.start <= t <= g.end)
    assert t == pytest.approx((gap.start + gap.end) / 2, abs=1e-3)
    assert t == pytest.approx(14.314, abs=1e-3)  # the gap 14.184–14.444 is the one nearest 15 s


def test_a_time_inside_speech_or_outside_the_recording_is_bad_input(stm, ramp):
    for where in ("16.0", "6.9", "31", "-1"):
        with pytest.raises(BadInputError, match="inside reference speech"):
            pad_recording(ramp, stm, [Pad(1.0, where)])
    assert insertion_point(Pad(1.0, "3.0"), stm, 30.0) == 3.0  # in the leading gap: fine


def test_an_untimed_reference_allows_only_start_and_end(tmp_path, ramp):
    txt = tmp_path / "sample.txt"
    txt.write_text("Hello? Hello? Oh, hello.")
    ref = load_reference(txt)
    assert not ref.timed
    samples, padded, points = pad_recording(ramp, ref, parse_pads("30@start,30@end"))
    assert points == [0.0, 30.0] and len(samples) == len(ramp) + 60 * SR
    assert padded.text == ref.text and [s.start for s in padded.segments] == [s.start for s in ref.segments]
    for where in ("middle", "3.0"):
        with pytest.raises(BadInputError, match="only start and end"):
            pad_recording(ramp, ref, [Pad(1.0, where)])


# --- the probe summary -------------------------------------------------------------------------


def probe_result(recipe: str, clip: str, seconds: float, text: str | None, error: str | None = None) -> RunResult:
    recording = Recording(clip, f"probe:{clip}", seconds, SR, 1, "generated")
    transcript = None if text is None else Transcript(segments=(Segment(0.0, seconds, text),) if text else ())
    scores = score((NO_SPEECH,), transcript, seconds, failed=error is not None)
    return RunResult(run_id="run-1", recipe=recipe, recipe_hash="h", pipeline="cascade", recording=recording,
                     transcript=transcript, scores=scores, error=error)


@pytest.fixture
def probe_results() -> list[RunResult]:
    return [
        # repeat 1
        probe_result("raw", "silence-5s", 5.0, "You"),
        probe_result("raw", "noise-10s", 10.0, "I'm sorry, I'm sorry."),
        probe_result("gated", "silence-5s", 5.0, ""),
        probe_result("gated", "noise-10s", 10.0, ""),
        probe_result("broken", "silence-5s", 5.0, None, error="RuntimeError: boom"),
        # repeat 2: raw says nothing on the noise this time
        probe_result("raw", "silence-5s", 5.0, "You"),
        probe_result("raw", "noise-10s", 10.0, ""),
        probe_result("gated", "silence-5s", 5.0, ""),
        probe_result("gated", "noise-10s", 10.0, ""),
    ]


def test_summarize_probes(probe_results):
    by = {s.recipe: s for s in summarize_probes(probe_results)}
    assert list(by) == ["raw", "gated", "broken"]

    raw = by["raw"]
    assert (raw.clips, raw.clips_with_output, raw.failed) == (2, 2, 0)
    assert raw.share_with_output == 1.0
    assert raw.words == 1 + 6 + 1 + 0  # "you" twice, "i am sorry i am sorry" once
    assert raw.minutes == pytest.approx(30 / 60)  # 15 s of clips, twice
    assert raw.words_per_minute == pytest.approx(8 / 0.5)
    assert raw.outputs == {"silence-5s": ("You",), "noise-10s": ("I'm sorry, I'm sorry.", "")}
    assert raw.repeatable is False
    assert raw.words_per_minute_spread == pytest.approx((1 / 0.25, 7 / 0.25))  # per repeat: 1 and 7 words in 15 s
    assert raw.stock_phrases == {"you": 2, "i-am-sorry-loop": 1}

    gated = by["gated"]
    assert (gated.clips, gated.clips_with_output, gated.words, gated.failed) == (2, 0, 0, 0)
    assert gated.share_with_output == 0.0 and gated.words_per_minute == 0.0
    assert gated.outputs == {"silence-5s": ("",), "noise-10s": ("",)}
    assert gated.repeatable is True
    assert gated.words_per_minute_spread == (0.0, 0.0)
    assert gated.stock_phrases == {}

    broken = by["broken"]
    assert (broken.clips, broken.clips_with_output, broken.failed) == (1, 0, 1)
    assert broken.words_per_minute is None and broken.minutes == 0
    assert broken.words_per_minute_spread is None


def test_one_repeat_has_no_spread(probe_results):
    [raw] = [s for s in summarize_probes(probe_results[:2]) if s.recipe == "raw"]
    assert raw.repeatable is True
    assert raw.words_per_minute_spread is None
    assert raw.words_per_minute == pytest.approx(7 / 0.25)


def test_probe_markdown(probe_results):
    md = probe_markdown(probe_results, "Hallucination probes test")
    assert md.startswith("# Hallucination probes test\n")
    assert "| raw | 2/2 (100%) | 16.0 (range 4.0–28.0) | i-am-sorry-loop ×1, you ×2 | no | 0 |" in md
    assert "| gated | 0/2 (0%) | 0.0 (range 0.0–0.0) | none | yes | 0 |" in md
    assert "| broken | 0/1 (0%) | — | none | yes | 1 |" in md
    assert "- `noise-10s`: “I'm sorry, I'm sorry.”" in md
    assert md.count("*(nothing)*") == 2  # gated's two clips; broken has no outputs at all


def test_probe_markdown_escapes_model_output():
    md = probe_markdown([probe_result("r|x", "silence-5s", 5.0, "<script>alert(1)</script> | `x`")], "t")
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "| r\\|x |" in md
    assert "\\| 'x'" in md  # a pipe cannot break the table, a backtick cannot open code


# --- running probes and pads (wiring, with a fake pipeline) ------------------------------------

FAKE = "test-fake-probe"
LOADS: list[str] = []


class FakePipeline:
    """Fake, for wiring tests only: writes the reference text of the pyannote sample, plus "thank you"
    when the audio is longer than 30 s (as if it invented words in padding), and "you" on short clips."""

    name = FAKE

    def __init__(self, recipe: Recipe):
        self.recipe = recipe

    @classmethod
    def stage_registries(cls) -> dict:
        return {}

    def load(self) -> None:
        LOADS.append(self.recipe.name)

    def run(self, samples, clock, *, num_speakers=None) -> PipelineOutput:
        seconds = len(samples) / SR
        with clock.stage("asr"):
            text = "you" if seconds < 30 else load_reference(PYANNOTE_STM).text + (" thank you" if seconds > 30 else "")
        return PipelineOutput(Transcript((Segment(0.0, seconds, text),), "en"), Usage(audio_s=seconds, calls=1))

    def unload(self) -> None:
        pass

    def describe(self) -> dict:
        return {"asr": {"backend": "fake"}}

    def versions(self) -> dict[str, str]:
        return {}


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(PIPELINES._items, FAKE, FakePipeline)
    LOADS.clear()
    yield lambda name: Recipe(name, FAKE, stages=(), description="fake", path=f"/fake/{name}.toml")
    LOADS.clear()


def test_run_probes_loads_each_recipe_once_for_all_repeats(fake, probes, tmp_path):
    clips = [probes["silence-5s"], probes["clicks-2Hz"]]
    writer = ResultWriter(tmp_path)
    results = run_probes([fake("a"), fake("b")], clips, writer=writer, run_id="r", repeats=3)
    assert LOADS == ["a", "b"]
    assert [(r.recipe, r.recording.id) for r in results] == [("a", c.id) for c in clips] * 3 + [("b", c.id) for c in clips] * 3
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 12
    for s in summarize_probes(results):
        assert (s.clips, s.clips_with_output, s.repeatable, s.stock_phrases) == (2, 2, True, {"you": 6})
        assert s.words_per_minute_spread == (pytest.approx(2 / 0.25), pytest.approx(2 / 0.25))


def test_padding_delta_writes_the_original_then_the_padded_row_per_recipe(fake, stm, tmp_path):
    item = Item(Audio(Recording("sample", "sample.wav", 30.0, SR, 1), np.zeros(30 * SR, np.float32)), (stm,))
    writer = ResultWriter(tmp_path)
    rows = padding_delta([fake("a"), fake("b")], item, parse_pads("5@start,5@middle"), writer=writer, run_id="r")
    assert LOADS == ["a", "b"]  # one load serves the original and the padded recording
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(x["recipe"], x["recording"]["id"]) for x in lines] == [
        ("a", "sample"), ("a", "sample+pad"), ("b", "sample"), ("b", "sample+pad")]
    assert [r.recording.id for r in writer.results] == ["sample", "sample"]  # padded rows are written as JSON only
    for original, padded in (lines[0:2], lines[2:4]):
        assert "padding" not in original["metrics"]["hallucination"]
        assert padded["recording"]["duration_s"] == 40.0
        assert padded["metrics"]["hallucination"]["padding"] == {
            "pads": ["5@start", "5@middle"], "inserted_at_s": [0.0, 14.314],
            "insertions_original": 0, "insertions_padded": 2, "delta": 2}
        assert padded["metrics"]["hallucination"]["stock_phrases"] == ["thank-you"]
    assert [(r["recipe"], r["delta"], r["stock_phrases"]) for r in rows] == [("a", 2, ["thank-you"]), ("b", 2, ["thank-you"])]


def test_padding_delta_with_a_bad_pad_runs_nothing(fake, stm, tmp_path):
    item = Item(Audio(Recording("sample", "sample.wav", 30.0, SR, 1), np.zeros(30 * SR, np.float32)), (stm,))
    with pytest.raises(BadInputError, match="inside reference speech"):
        padding_delta([fake("a")], item, [Pad(1.0, "16")], writer=MemoryWriter(), run_id="r")
    assert LOADS == []
