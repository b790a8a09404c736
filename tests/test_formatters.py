"""Formatter stage: the deterministic plain formatter, the LLM formatters' chunking and prompting, and
their option checks. The LLM here is a test subclass whose ``complete()`` records what it is asked (a fake
for the wiring only; the real models are exercised in the integration tests)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workbench.backends.formatter import (
    DEFAULT_SUMMARY,
    DEFAULT_SYSTEM,
    FORMATTER_BACKENDS,
    LlamaCppFormatter,
    LlamaCppOptions,
    LLMFormatter,
    LLMOptions,
    PlainFormatter,
    PlainOptions,
    resolve_gguf,
    speaker_paragraphs,
)
from workbench.datamodel import Reference, Segment, Transcript, Turn, Word
from workbench.errors import BackendUnavailable, RecipeError
from workbench.recipes import parse_recipe
from workbench.scoring import score


def seg(start, end, text, speaker=None):
    toks = text.split()
    step = (end - start) / max(1, len(toks))
    words = tuple(Word(start + i * step, start + (i + 1) * step, w, speaker=speaker) for i, w in enumerate(toks))
    return Segment(start, end, text, speaker, words)


CONVERSATION = Transcript(
    segments=(
        seg(0.0, 1.0, "hello there", "SPEAKER_00"),
        seg(1.0, 2.0, "how are you", "SPEAKER_00"),
        seg(2.0, 3.0, "fine thanks", "SPEAKER_01"),
        seg(3.0, 3.5, "   ", "SPEAKER_00"),  # blank: skipped, does not break SPEAKER_01's paragraph
        seg(3.5, 4.0, "and you", "SPEAKER_01"),
        seg(4.0, 5.0, "good", "SPEAKER_00"),
    ),
    turns=(Turn(0.0, 2.0, "SPEAKER_00"), Turn(2.0, 4.0, "SPEAKER_01"), Turn(4.0, 5.0, "SPEAKER_00")),
    speaker_count_estimated=False,
)


# --- plain ---------------------------------------------------------------------------------------------


def test_plain_formatter_groups_consecutive_segments_of_a_speaker():
    out = PlainFormatter(PlainOptions()).format(CONVERSATION)
    assert out.text == "SPEAKER_00: hello there how are you\n\nSPEAKER_01: fine thanks and you\n\nSPEAKER_00: good"
    assert out.summary is None and out.calls == 0
    assert PlainFormatter(PlainOptions()).format(CONVERSATION) == out  # deterministic


def test_plain_formatter_without_speakers_writes_no_labels():
    t = Transcript(segments=(Segment(0.0, 1.0, "just words"), Segment(1.0, 2.0, "more words")))
    assert PlainFormatter(PlainOptions()).format(t).text == "just words more words"


def test_unlabelled_segments_among_labelled_ones_get_a_generic_label():
    t = Transcript(segments=(Segment(0.0, 1.0, "a b", "SPEAKER_00"), Segment(1.0, 2.0, "c d")))
    assert speaker_paragraphs(t) == ["SPEAKER_00: a b", "SPEAKER: c d"]


def test_plain_formatter_of_nothing():
    assert PlainFormatter(PlainOptions()).format(Transcript()).text == ""


def test_plain_formatter_drifts_zero_words_from_the_asr_text():
    formatted = PlainFormatter(PlainOptions()).format(CONVERSATION).text
    t = replace(CONVERSATION, formatted=formatted)
    reference = Reference(segments=(Segment(None, None, CONVERSATION.text),), has_text=True, source="r.txt", format="text")
    s = score((reference,), t, 5.0)
    assert s.drift.errors == 0 and s.drift.reference_length == 10
    assert s.words == s.asr_words


def test_formatter_registry_names():
    assert {"none", "plain", "llama-cpp", "openai-compatible"} <= set(FORMATTER_BACKENDS.names())


# --- LLM chunking and prompting ---------------------------------------------------------------------


class RecordingOptions(LLMOptions):
    pass


class RecordingLLM(LLMFormatter):
    """Echoes the transcript part of each formatting prompt; records every call."""

    Options = RecordingOptions

    def __init__(self, options, usage=(10, 5)):
        super().__init__(options)
        self.calls: list[tuple[str, str, int]] = []
        self.usage = usage

    def complete(self, system, user, max_tokens):
        self.calls.append((system, user, max_tokens))
        if user.startswith("<<"):
            return user[2:user.index(">>")], *self.usage
        return f"summary #{len(self.calls)}", *self.usage


class WordTokens(RecordingLLM):
    """A whitespace tokenizer: token counts add up exactly, so budgets can be checked exactly."""

    def count_tokens(self, text):
        return max(1, len(text.split()))


def long_transcript(n_segments=40, words_per_segment=9) -> Transcript:
    segments = []
    for i in range(n_segments):
        speaker = f"SPEAKER_{(i // 3) % 2:02d}"  # runs of three segments per speaker
        text = " ".join(f"w{i}x{j}" for j in range(words_per_segment))
        segments.append(seg(float(i), i + 1.0, text, speaker))
    segments.append(seg(40.0, 60.0, " ".join(f"long{j}" for j in range(150)), "SPEAKER_01"))  # longer than a chunk
    return Transcript(segments=tuple(segments))


def options(**kw):
    base = dict(user_prompt="<<{transcript}>>", summary_prompt="", chunk_tokens=32)
    return RecordingOptions(**{**base, **kw})


@pytest.mark.parametrize("llm_class", [RecordingLLM, WordTokens])
def test_every_word_lands_in_exactly_one_chunk_in_order(llm_class):
    t = long_transcript()
    llm = llm_class(options())
    out = llm.format(t)
    chunks = [user[2:user.index(">>")] for _, user, _ in llm.calls]
    assert len(chunks) > 5
    expected = " ".join(speaker_paragraphs(t)).split()
    assert " ".join(chunks).split() == expected  # each word once, in order
    assert out.text.split() == expected  # the echo formatter's output keeps them all


@pytest.mark.parametrize("llm_class", [RecordingLLM, WordTokens])
def test_chunks_respect_the_token_budget(llm_class):
    # RecordingLLM counts with the built-in estimate (4 characters a token): a chunk, joins included,
    # must fit the budget by that same estimate (it overran it by ~70% before the estimate rounded up)
    t = long_transcript()
    llm = llm_class(options(chunk_tokens=40))
    llm.format(t)
    chunks = [user[2:user.index(">>")] for _, user, _ in llm.calls]
    assert all(llm.count_tokens(c) <= 40 for c in chunks)
    assert sum(llm.count_tokens(c) for c in chunks) > 40 * (len(chunks) - 1) / 2  # packed, not one word each
    # a paragraph that fits is never cut: each whole paragraph appears inside one chunk
    for para in speaker_paragraphs(t):
        if llm.count_tokens(para) <= 40:
            assert sum(para in c for c in chunks) == 1, para


def test_a_short_transcript_is_one_call_with_the_prompts_substituted():
    llm = RecordingLLM(options(system_prompt="SYS", user_prompt="<<{transcript}>> please", chunk_tokens=768))
    llm.format(CONVERSATION)
    [(system, user, _)] = llm.calls
    assert system == "SYS"
    assert user == "<<" + "\n\n".join(speaker_paragraphs(CONVERSATION)) + ">> please"
    assert "{transcript}" not in user


def test_no_summary_prompt_means_no_summary_call():
    llm = RecordingLLM(options(chunk_tokens=768))
    out = llm.format(CONVERSATION)
    assert len(llm.calls) == 1 and out.calls == 1
    assert out.summary is None


def test_summary_prompt_is_substituted_and_called_after_formatting():
    llm = RecordingLLM(options(chunk_tokens=768, summary_prompt="Sum up: {transcript}", summary_max_tokens=77))
    out = llm.format(CONVERSATION)
    assert len(llm.calls) == 2 and out.calls == 2
    _, user, max_tokens = llm.calls[1]
    assert user == "Sum up: " + out.text
    assert max_tokens == 77
    assert out.summary == "summary #2"


def test_a_long_transcript_is_summarised_per_chunk_then_once_more():
    # the summary's input is bounded by the context (not by the formatting chunks): a small context makes it chunk
    llm = RecordingLLM(options(summary_prompt="S: {transcript}", context_tokens=256, summary_max_tokens=64))
    out = llm.format(long_transcript())
    formatting = sum(1 for _, u, _ in llm.calls if u.startswith("<<"))
    summaries = [u for _, u, _ in llm.calls if u.startswith("S: ")]
    assert formatting > 1 and len(summaries) > 2
    assert out.calls == len(llm.calls) == formatting + len(summaries)
    assert out.summary == f"summary #{len(llm.calls)}"  # the summary of the summaries
    assert all(f"summary #{i}" in summaries[-1] for i in range(formatting + 1, len(llm.calls)))


def test_default_summary_prompt_has_the_placeholder():
    assert "{transcript}" in DEFAULT_SUMMARY
    assert LLMOptions().summary_prompt == DEFAULT_SUMMARY


def test_usage_sums_over_calls():
    llm = RecordingLLM(options(summary_prompt="S: {transcript}"), usage=(100, 7))
    out = llm.format(long_transcript())
    assert (out.input_tokens, out.output_tokens) == (100 * out.calls, 7 * out.calls)


def test_unknown_usage_is_none_not_a_partial_sum():
    llm = RecordingLLM(options(), usage=(None, None))
    out = llm.format(long_transcript())
    assert out.calls > 1
    assert out.input_tokens is None and out.output_tokens is None


@pytest.mark.parametrize("max_tokens, ratio", [(512, 1.5), (120, 1.5), (512, 0.1), (80, 1.0)])
def test_max_tokens_cap_is_the_lower_of_the_setting_and_the_output_ratio(max_tokens, ratio):
    llm = RecordingLLM(options(max_tokens=max_tokens, max_output_ratio=ratio, chunk_tokens=64))
    llm.format(long_transcript())
    assert len(llm.calls) > 1
    for _, user, cap in llm.calls:
        chunk = user[2:user.index(">>")]
        assert cap == max(16, min(max_tokens, int(ratio * llm.count_tokens(chunk)) + 16))
        assert cap <= max(16, max_tokens)


@pytest.mark.parametrize("max_tokens, chunk_tokens, ratio", [(512, 768, 1.5), (20, None, 1.5), (1, None, 1.0)])
def test_a_max_tokens_that_cannot_hold_a_chunks_output_is_refused(max_tokens, chunk_tokens, ratio):
    # the old defaults (chunk 768, max 512) cut every full chunk's output: now a recipe error naming the fix
    with pytest.raises(ValueError, match=f"max_tokens {max_tokens} cannot hold"):
        options(max_tokens=max_tokens, chunk_tokens=chunk_tokens, max_output_ratio=ratio)


@pytest.mark.parametrize("context, ratio, system", [(2048, 1.5, DEFAULT_SYSTEM), (4096, 1.5, "S"), (8192, 2.0, "S"),
                                                    (1024, 0.5, DEFAULT_SYSTEM)])
def test_budgets_are_derived_from_the_context_and_each_other(context, ratio, system):
    llm = WordTokens(options(chunk_tokens=None, context_tokens=context, max_output_ratio=ratio, system_prompt=system))
    chunk, cap = llm.budgets()
    prompt = llm.count_tokens(system) + llm.count_tokens("<<>>") + 32
    assert cap >= ratio * chunk  # a chunk's output fits its cap
    assert prompt + chunk + cap <= context  # prompt, chunk and output fit the context
    assert prompt + (chunk + 1) + int(ratio * (chunk + 1)) + 16 > context  # the largest chunk that does
    llm.format(long_transcript(n_segments=400))
    assert all(llm.count_tokens(user[2:user.index(">>")]) <= chunk and max_tokens <= cap
               for _, user, max_tokens in llm.calls)


def test_a_set_max_tokens_shrinks_the_chunk_and_a_set_chunk_is_kept():
    chunk, cap = WordTokens(options(chunk_tokens=None, context_tokens=4096, max_tokens=400)).budgets()
    assert cap == 400 and int(1.5 * chunk) + 16 <= 400 < int(1.5 * (chunk + 1)) + 16
    assert WordTokens(options(chunk_tokens=100, context_tokens=4096)).budgets() == (100, 166)


def test_a_call_that_hit_its_cap_is_counted_as_cut():
    class Truncating(RecordingLLM):
        def complete(self, system, user, max_tokens):
            self.calls.append((system, user, max_tokens))
            return "x " * max_tokens, 10, max_tokens  # as many tokens as allowed: a cut (no finish reason told)

    out = Truncating(options()).format(long_transcript())
    assert out.chunks > 1 and out.chunks_cut == out.chunks
    ok = RecordingLLM(options()).format(long_transcript())
    assert ok.chunks == out.chunks and ok.chunks_cut == 0


def test_nothing_to_format_makes_no_call():
    llm = RecordingLLM(options(summary_prompt="S: {transcript}"))
    out = llm.format(Transcript())
    assert llm.calls == [] and out.text == "" and out.summary is None and out.calls == 0


# --- llama-cpp checks and recipe validation -----------------------------------------------------------


def test_llama_cpp_check_names_a_missing_gguf_and_how_to_fix_it(tmp_path):
    missing = tmp_path / "models" / "nope.gguf"
    with pytest.raises(BackendUnavailable) as info:
        LlamaCppFormatter.check(LlamaCppOptions(model=str(missing)))
    assert str(missing) in info.value.reason and "not found" in info.value.reason
    assert ".gguf" in info.value.fix and "smollm2" in info.value.fix


def test_llama_cpp_check_refuses_a_hub_model_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendUnavailable) as info:
        LlamaCppFormatter.check(LlamaCppOptions(model="someone/some-repo:model.Q4.gguf"))
    assert "HF_HUB_OFFLINE" in str(info.value) and "someone/some-repo:model.Q4.gguf" in str(info.value)


def test_hub_gguf_form_is_accepted_and_a_missing_local_path_is_not():
    assert resolve_gguf("someone/some-repo:model.Q4_K_M.gguf") == "someone/some-repo:model.Q4_K_M.gguf"
    for missing in ("/models/nope.gguf", "repo-without-owner:file.gguf", "C:/models/nope.gguf"):
        with pytest.raises(BackendUnavailable, match="not found"):
            resolve_gguf(missing)


def test_an_existing_gguf_path_resolves_to_itself(tmp_path):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    assert resolve_gguf(str(path)) == str(path)


def recipe(formatter: dict) -> dict:
    return {"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "tiny.en"}, "formatter": formatter}


def test_unknown_formatter_option_lists_the_valid_ones():
    with pytest.raises(RecipeError) as info:
        parse_recipe(recipe({"backend": "llama-cpp", "max_token": 100}), name="typo")
    msg = str(info.value)
    assert "[formatter] llama-cpp" in msg and "unknown option 'max_token'" in msg
    for valid in ("max_tokens", "model", "chunk_tokens", "summary_prompt", "user_prompt"):
        assert valid in msg


def test_plain_formatter_takes_no_options():
    with pytest.raises(RecipeError, match=r"unknown option 'model'; valid options: \(none\)"):
        parse_recipe(recipe({"backend": "plain", "model": "x"}), name="plain-typo")


def test_bad_formatter_option_value_is_a_recipe_error():
    with pytest.raises(RecipeError, match="chunk_tokens"):
        parse_recipe(recipe({"backend": "llama-cpp", "chunk_tokens": 4}), name="tiny-chunks")


def test_unknown_formatter_backend_lists_the_known_ones():
    with pytest.raises(RecipeError) as info:
        parse_recipe(recipe({"backend": "gpt"}), name="x")
    assert "plain" in str(info.value) and "llama-cpp" in str(info.value)
