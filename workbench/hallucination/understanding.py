"""Understanding hallucination: the probe clips (no speech in them) are also *asked* about, and an answer that
claims speech where there is none counts against the recipe.

Two questions, asked of every probe clip (kind ``open``, category ``non-speech``; no rubric — what they measure
is read here by rule, not by a judge):

- "What does the speaker say?" — any answer that neither denies speech nor declines (a refusal, "unclear")
  claims it: it quotes or reports words;
- "Describe what you hear." — an answer claims speech when it reports speech (someone speaking, saying, a voice,
  words, a conversation …) in a sentence that does not deny it.

The rules (:func:`claims_speech`) read the answer's sentences: a sentence *denies* speech when it holds a
negated speech phrase ("no speech", "nobody speaks", "nothing is said", "there is no speaker", "I don't hear
anyone", "no words", "silence", "only noise" …). An empty answer claims nothing; an answer that never came
(the call failed) is not counted either way.
"""

from __future__ import annotations

import re

from workbench.tasks.answers import TaskResult
from workbench.tasks.questions import Question, QuestionSet

CATEGORY = "non-speech"
SAY = Question("probe-say", CATEGORY, "open", "What does the speaker say?")
DESCRIBE = Question("probe-describe", CATEGORY, "open", "Describe what you hear.")
PROBE_QUESTIONS = QuestionSet("probe-understanding", (SAY, DESCRIBE))
PROBE_IDS = frozenset(q.id for q in PROBE_QUESTIONS.questions)

#: a sentence with one of these denies speech (matched on lower-case text with straight apostrophes)
_DENIALS = re.compile(
    r"\b(no|without|absence of|lack of|not any)\s+(\w+\s+){0,2}(speech|speaking|speaker|speakers|talking|voices?|"
    r"words?|one|body|dialogue|conversation|person|people|human)\b"
    r"|\b(nobody|no one|no-one|none)\b"
    r"|\bnothing\b(\s+\w+){0,3}\s+(is|was|being)?\s*(said|spoken|says|heard|audible|intelligible)"
    r"|\b(does|do|did|is|are|was|were|can|could)\s*(not|n't)\s+(\w+\s+){0,3}(say|speak|talk|hear|contain|"
    r"include|detect|identify|make out|appear|seem|any)"
    r"|\b(doesn't|don't|didn't|isn't|aren't|wasn't|weren't|can't|cannot|couldn't)\s+(\w+\s+){0,3}(say|speak|talk|"
    r"hear|contain|include|detect|identify|make out|appear|seem|any)"
    r"|\b(silence|silent|quiet)\b"
    r"|\bonly\s+(\w+\s+){0,2}(noise|static|hum|hiss|clicks?|tones?|beeps?)"
    r"|\b(unintelligible|inaudible)\b"
)
#: a sentence with one of these reports speech (when it does not also deny it)
_SPEECH = re.compile(
    r"\b(speaks?|speaking|spoke|spoken|says?|saying|said|talks?|talking|voices?|speech|speakers?|words?|"
    r"conversation|dialogue|utterance|narrat\w*|announc\w*|whisper\w*|singing|sings|shout\w*)\b"
)
#: an answer to "what does the speaker say?" with one of these reports no words either (a refusal, a doubt)
_NO_CLAIM = re.compile(r"\b(sorry|unable|as an ai|i can't|i cannot|not sure|unclear|can't tell|cannot tell|"
                       r"hard to (say|tell)|no idea|impossible to)\b")


def _sentences(text: str) -> list[str]:
    text = (text or "").replace("\u2019", "'").replace("\u2018", "'").lower()
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n+", text) if s.strip()]


def _denies(sentence: str) -> bool:
    return bool(_DENIALS.search(sentence))


def claims_speech(task: TaskResult) -> bool | None:
    """Whether ``task``'s answer claims speech in a clip with none: None when it does not count (no answer came,
    or it is not a probe question), False for an empty answer or one that denies speech."""
    if task.id not in PROBE_IDS or task.error is not None:
        return None
    sentences = _sentences(task.answer)
    if not sentences:
        return False
    if task.id == SAY.id:
        # asked what is said: any answer reports words unless it says there are none
        return not any(_denies(s) or _NO_CLAIM.search(s) for s in sentences)
    return any(_SPEECH.search(s) and not _denies(s) for s in sentences)
