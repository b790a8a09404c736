"""Understanding hallucination (issue 13, item 6): the probe clips are asked "What does the speaker say?" and
"Describe what you hear."; an answer that claims speech where there is none counts, per recipe."""

from __future__ import annotations

import pytest

from fake_pipeline import BEHAVIOUR, FAKE
from workbench.hallucination.probes import generated_probes
from workbench.hallucination.suite import probe_markdown, run_probes, summarize_probes
from workbench.hallucination.understanding import DESCRIBE, PROBE_QUESTIONS, SAY, claims_speech
from workbench.recipes import Recipe
from workbench.tasks import task_result
from workbench.writers import MemoryWriter


@pytest.mark.parametrize("question, answer, claims", [
    (SAY, "Hello, how are you?", True),
    (SAY, "The speaker says thank you for watching.", True),
    (SAY, "There is no speech in this recording.", False),
    (SAY, "Nothing is said.", False),
    (SAY, "Nobody speaks; only background noise.", False),
    (SAY, "I\u2019m sorry, I can\u2019t make out any words.", False),
    (SAY, "It is unclear what is said.", False),
    (SAY, "The audio is silent.", False),
    (SAY, "I don't hear anyone speaking.", False),
    (SAY, "", False),
    (DESCRIBE, "A man is talking about the weather.", True),
    (DESCRIBE, "I hear clicks. A woman says hello.", True),
    (DESCRIBE, "A steady hum with no speech.", False),
    (DESCRIBE, "There is no one talking, just a buzz.", False),
    (DESCRIBE, "White noise, like static.", False),
    (DESCRIBE, "Someone walks across a room.", False),
    (DESCRIBE, "Silence.", False),
])
def test_an_answer_claims_speech_unless_it_denies_or_declines(question, answer, claims):
    assert claims_speech(task_result(question, answer)) is claims


def test_an_answer_that_never_came_or_another_question_is_not_counted():
    assert claims_speech(task_result(SAY, "", error="ConnectionError: refused")) is None
    other = task_result(type(SAY)("x", "content", "open", "What?"), "He says hi.")
    assert claims_speech(other) is None


def test_probes_asked_about_count_the_answers_claiming_speech_per_recipe(fake):
    clips = generated_probes()[:2]
    inventor = Recipe("inventor", FAKE, stages=(), description="fake", path="/fake/inventor.toml")
    honest = Recipe("honest", FAKE, stages=(), description="fake", path="/fake/honest.toml")
    BEHAVIOUR["inventor"] = {"text": "", "answers": {"probe-say": "Thanks for watching!",
                                                      "probe-describe": "A <b>woman</b> speaks softly."}}
    BEHAVIOUR["honest"] = {"text": "", "answers": {"probe-say": "Nothing is said.",
                                                    "probe-describe": "Only a faint hiss."}}
    results = run_probes([inventor, honest], clips, writer=MemoryWriter(), run_id="t", questions=PROBE_QUESTIONS)
    assert all({t.id for t in r.tasks} == {"probe-say", "probe-describe"} for r in results)
    by = {s.recipe: s for s in summarize_probes(results)}
    assert (by["inventor"].answers, by["inventor"].answers_claiming_speech) == (4, 4)
    assert (by["honest"].answers, by["honest"].answers_claiming_speech) == (4, 0)
    page = probe_markdown(results, "probes")
    assert "## Asked about the clips" in page and "| inventor | 4/4 (100%) |" in page and "| honest | 0/4 (0%) |" in page
    assert "<b>" not in page  # model output escaped in the markdown


def test_probes_not_asked_about_have_no_question_figures(fake):
    recipe = Recipe("plain", FAKE, stages=(), description="fake", path="/fake/plain.toml")
    BEHAVIOUR["plain"] = {"text": ""}
    results = run_probes([recipe], generated_probes()[:1], writer=MemoryWriter(), run_id="t")
    [s] = summarize_probes(results)
    assert s.answers == 0 and s.share_claiming_speech is None
    assert "Asked about the clips" not in probe_markdown(results, "probes")
