"""Reading answers and scoring them against a question's key: deterministic rules, no model.

An answer that cannot be read is **wrong and counted** (``correct=False``, ``parsed=None``, with a reason),
never dropped. ``keypoints``/``open`` answers are not scored here: they wait for a judge (``correct=None``,
``score=None``, "not judged"), never guessed.

The rules (each extractor returns the parsed value, or None and the reason):

- **yesno**: an answer that *begins* with a yes or no form is read by it ("Yes, a dog barks", "No.", "Yeah",
  "Nope", "Definitely not", "Correct", "No doubt", "I think so" → yes, "I don't think so" → no). Otherwise,
  unless it hedges, the yes/no words and negations anywhere in it ("there is no dog", "there isn't",
  "the answer is yes") must all agree; "There is/are …" with no negation is a yes. Unread: an answer that says
  both ("yes and no"), neither, or hedges without first committing ("maybe", "possibly", "I'm not sure",
  "it is unclear", "can't tell").
- **number**: the first number in the answer: digits (``3``, ``-2``, ``1,200``, ``2.5``) or English number
  words read by ``text2num`` ("twenty-three", "two hundred and five", "one point five"), plus this fixed set:
  "a dozen" 12, "half a dozen" 6, "a couple" / "a pair" 2, "a single" / "once" 1, "twice" 2, "thrice" 3,
  "none" / "no one" / "nobody" 0. Correct when ``|parsed − answer| ≤ tolerance``.
- **short**: both sides through the Whisper English normaliser (the one WER uses); correct when the answer
  equals an accepted answer, or contains one as a whole phrase and is at most :data:`SHORT_MAX_WORDS` words
  ("It was Sheila." for "Sheila"). A longer answer that matches none is unread ("not a short answer").
- **choice**: a choice letter — "(B)", "B)", "b.", "B:", "B" alone, "option B", "the answer is B" — maps to the
  choices in order (A = the first); otherwise the choice whose text the answer names (whole phrase,
  normalised; a choice inside a longer named choice counts once). Two different choices named, or a letter
  and a text that disagree → unread.
- **locate**: a time — "57 s", "57.2 seconds", "0:57", "1:03", "00:00:57.2", "1 minute 3 seconds", "1 min 3 s",
  "1m3s", "one minute three seconds"; a range ("between 55 and 60 seconds", "55–60 s", "from 0:55 to 1:00")
  is read as its midpoint ("and" makes a range only after "between"). A bare number counts as seconds only when it is the only number in the answer.
  The first time in the answer is taken. Correct when it lies within the span ± ``tolerance_s``;
  ``error_s`` is its distance to the span (0 inside).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from workbench.datamodel import Usage
from workbench.tasks.questions import JUDGED_KINDS, Question

SHORT_MAX_WORDS = 12
RULES = "rules"  # Judge.by of the deterministic rules here
NOT_JUDGED = "not judged"


@dataclass(frozen=True)
class Judge:
    """Who scored an answer and why: ``by`` is "rules" for the keyed kinds, a judge model's identity
    (``<backend>:<model>@<host or path>``, :mod:`workbench.tasks.judge`) for keypoints/open; ``note`` the reason
    when the answer could not be read or judged, or how it was read; ``version`` the judge prompt's version
    (a model judge only: a changed prompt is a different judge)."""

    by: str
    note: str | None = None
    version: str | None = None

    def to_json(self) -> dict:
        out = {"by": self.by, "note": self.note}
        if self.version is not None:
            out["version"] = self.version
        return out

    @classmethod
    def from_json(cls, row: dict | None) -> Judge | None:
        return None if row is None else cls(row["by"], row.get("note"), row.get("version"))


@dataclass(frozen=True)
class Score:
    parsed: object  # the value read from the answer, None when unread
    correct: bool | None  # None: not judged
    score: float | None = None  # keypoints: share of points covered; open: 1–5 (a judge's)
    error_s: float | None = None  # locate: seconds to the span (0 inside)
    note: str | None = None  # why unread / not judged


@dataclass(frozen=True)
class TaskResult:
    """One question answered by one recipe on one recording (an entry of a results.jsonl row's ``tasks``)."""

    id: str
    category: str
    kind: str
    prompt: str
    answer: str  # the raw text the recipe answered
    parsed: object = None  # what the rules read from it (None: unread, or a judged kind)
    correct: bool | None = None  # None: not judged
    score: float | None = None
    error_s: float | None = None
    judge: Judge | None = None  # None: nobody judged it ("not judged")
    latency_s: float | None = None
    usage: Usage | None = None
    #: what the answer is scored against, from the question (so a row is judged and shown without its question
    #: file): ``answer`` (the key), ``tolerance``, ``tolerance_s``, ``choices``, ``points``, ``rubric`` — those set
    key: dict | None = None
    #: why there is no answer (the answering call failed); such an answer is wrong and counted
    error: str | None = None
    #: how the recording was covered: "whole" (one call saw all of it), "combine" (each part / window asked, then
    #: one combining call), "refuse" (too long for one call, refused: ``error`` says so); None: not recorded
    strategy: str | None = None
    #: the parts (cascade: transcript parts; audio-LLM: audio windows) the answer was asked over
    windows: int | None = None
    #: an answering call's output stopped at its token cap (the answer may be cut short); None: not recorded
    cut_short: bool | None = None

    @property
    def judged(self) -> bool:
        return self.correct is not None or self.score is not None

    @property
    def note(self) -> str | None:
        """Why it is wrong-unread or unscored, for a table."""
        if self.judge is None and not self.judged:
            return NOT_JUDGED
        return self.judge.note if self.judge else None

    def to_json(self) -> dict:
        parsed = list(self.parsed) if isinstance(self.parsed, tuple) else self.parsed
        return {"id": self.id, "category": self.category, "kind": self.kind, "prompt": self.prompt,
                "answer": self.answer, "parsed": parsed, "correct": self.correct, "score": self.score,
                "error_s": self.error_s, "judge": self.judge.to_json() if self.judge else None,
                "latency_s": self.latency_s, "usage": asdict(self.usage) if self.usage else None,
                "key": self.key, "error": self.error, "strategy": self.strategy, "windows": self.windows,
                "cut_short": self.cut_short}

    @classmethod
    def from_json(cls, row: dict) -> TaskResult:
        usage = row.get("usage")
        return cls(row["id"], row["category"], row["kind"], row["prompt"], row.get("answer") or "",
                   row.get("parsed"), row.get("correct"), row.get("score"), row.get("error_s"),
                   Judge.from_json(row.get("judge")), row.get("latency_s"),
                   Usage(**{k: v for k, v in usage.items() if k in Usage.__dataclass_fields__})
                   if usage is not None else None, row.get("key"), row.get("error"), row.get("strategy"),
                   row.get("windows"), row.get("cut_short"))


# --- yes / no ---------------------------------------------------------------------------------------

_YES_LEAD = ("yes", "yeah", "yep", "yup", "yea", "correct", "affirmative", "indeed", "certainly", "definitely",
             "absolutely", "of course", "sure", "true", "i think so", "i believe so", "that's right",
             "that is right", "no doubt", "without a doubt")
_NO_LEAD = ("no", "nope", "nah", "not", "negative", "incorrect", "false", "never", "none", "nobody", "no one",
            "definitely not", "certainly not", "absolutely not", "of course not", "probably not", "not at all",
            "i don't think so", "i do not think so", "i don't believe so", "i do not believe so")
_WEAK_YES = ("there is", "there are", "there's")  # a yes when nothing else in the answer says no
_HEDGES = ("maybe", "perhaps", "possibly", "not sure", "unsure", "uncertain", "unclear", "can't tell", "cannot tell",
           "can not tell", "can't determine", "cannot determine", "hard to say", "difficult to say", "hard to tell",
           "difficult to tell", "don't know", "do not know", "not certain", "impossible to say", "impossible to tell",
           "no way to tell", "no way to know", "no idea", "might", "may or may not", "not clear", "not possible to")
_BOTH = ("yes and no", "yes or no", "no or yes", "yes/no", "no and yes")
_NOT_NO = ("no doubt", "no question")  # "no" that does not answer no


def _clean(text: str) -> str:
    text = (text or "").replace("\u2019", "'").replace("\u2018", "'").lower()
    return " ".join(text.split())


def _starts(text: str, phrases: tuple[str, ...]) -> str | None:
    """The longest phrase the text starts with (as whole words)."""
    hits = [p for p in phrases if re.match(rf"{re.escape(p)}(?![\w'])", text)]
    return max(hits, key=len) if hits else None


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w']){re.escape(phrase)}(?![\w'])", text) is not None


def parse_yesno(answer: str) -> tuple[str | None, str | None]:
    """("yes" | "no" | None, the reason when None)."""
    text = _clean(answer)
    text = re.sub(r"^[\s\"'*(\[]+", "", text)
    text = re.sub(r"^(?:answer|the answer is|my answer is)\s*:?\s*", "", text)
    if not text:
        return None, "empty answer"
    if any(_has(text, p) for p in _BOTH):
        return None, "says both yes and no"
    if _starts(text, _HEDGES):  # "Not sure", "No idea", "Maybe": no commitment, whatever follows
        return None, "hedged (no committed yes or no)"
    yes, no = _starts(text, _YES_LEAD), _starts(text, _NO_LEAD)
    if yes or no:  # the longer lead wins: "definitely not" over "definitely", "no doubt" over "no"
        return ("yes", None) if yes and (not no or len(yes) > len(no)) else ("no", None)
    if any(_has(text, h) for h in _HEDGES):
        return None, "hedged (no committed yes or no)"
    stripped = text
    for p in _NOT_NO:
        stripped = stripped.replace(p, " ")
    says_yes = any(_has(stripped, w) for w in ("yes", "yeah", "yep"))
    says_no = any(_has(stripped, w) for w in ("no", "nope", "not", "never", "none", "nobody"))
    says_no = says_no or re.search(r"\w+n't\b", stripped) is not None
    if says_yes and says_no:
        return None, "says both yes and no"
    if says_yes:
        return "yes", None
    if says_no:
        return "no", None
    if _starts(text, _WEAK_YES):  # "There is a dog barking." with no negation
        return "yes", None
    return None, "no yes or no in the answer"


# --- numbers ----------------------------------------------------------------------------------------

_NUMBER_PHRASES = (  # longest first; whole words, case-insensitive
    ("half a dozen", 6), ("a dozen", 12), ("dozen", 12), ("a couple of", 2), ("a couple", 2), ("a pair of", 2),
    ("a pair", 2), ("a single", 1), ("only once", 1), ("once", 1), ("twice", 2), ("thrice", 3),
    ("no one", 0), ("nobody", 0), ("none", 0),
)


def _words_to_digits(text: str) -> str:
    """English number words as digits (text2num, every number however small), after the fixed phrases."""
    for phrase, value in _NUMBER_PHRASES:
        text = re.sub(rf"(?<![\w']){re.escape(phrase)}(?![\w'])", f" {value} ", text)
    from text_to_num import alpha2digit

    text = re.sub(r"(\w)-(\w)", r"\1 \2", text)  # "twenty-three"; keeps "-3"
    text = re.sub(r"\bseconds\b", "secs", re.sub(r"\bsecond\b", "sec", text))  # not the ordinal "2nd"
    return alpha2digit(text, "en", threshold=0)


def _numbers(text: str) -> list[tuple[float, int, int]]:
    """(value, start, end) of every number, in order."""
    out = []
    for m in re.finditer(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\w.,])-?\d+(?:\.\d+)?", text):
        out.append((float(m.group().replace(",", "")), m.start(), m.end()))
    return out


def parse_number(answer: str) -> tuple[float | None, str | None]:
    text = _words_to_digits(_clean(answer))
    found = _numbers(text)
    if not found:
        return None, "no number in the answer"
    return found[0][0], None


# --- short ------------------------------------------------------------------------------------------


def parse_short(answer: str, accepted: tuple[str, ...]) -> tuple[str | None, bool, str | None]:
    """(the normalised answer or None, correct, reason)."""
    from workbench.metrics import normalize

    said = normalize(answer or "")
    if not said:
        return None, False, "empty answer (after normalisation)"
    aliases = [normalize(a) for a in accepted]
    if said in aliases:
        return said, True, None
    if len(said.split()) > SHORT_MAX_WORDS:
        return None, False, f"not a short answer ({len(said.split())} words, more than {SHORT_MAX_WORDS})"
    padded = f" {said} "
    return said, any(f" {a} " in padded for a in aliases if a), None


# --- choice -----------------------------------------------------------------------------------------

_LETTER_PATTERNS = (
    r"^\(?([a-z])\)(?:\s|$)",  # "(B) …", "B) …"
    r"^\(([a-z])\)",
    r"^([a-z])[.:](?:\s|$)",  # "b. …", "B: …"
    r"^([a-z])$",  # "B"
    r"\b(?:option|choice)\s*\(?([a-z])\)?(?![\w'])",  # "option B", "choice (b)"
    r"\banswer(?: is)?\s*:?\s*\(?([a-z])(?:\)|[.:]|$)",  # "the answer is (B)", "answer: b." (not "is a dog")
    r"\(([a-z])\)",  # "(B)" anywhere
)


def parse_choice(answer: str, choices: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(the chosen choice's text, or None and the reason)."""
    from workbench.metrics import normalize

    raw = _clean(answer).strip(" \"'*")
    if not raw:
        return None, "empty answer"
    letter = None
    for pattern in _LETTER_PATTERNS:
        m = re.search(pattern, raw)
        if m:
            letter = m.group(1)
            break
    by_letter = None
    if letter is not None:
        index = ord(letter) - ord("a")
        if index < len(choices):
            by_letter = choices[index]
        elif len(raw) <= 3:
            return None, f"letter {letter.upper()} but only {len(choices)} choices"
    said = f" {normalize(answer)} "
    spans = []
    for c in choices:
        n = normalize(c)
        for m in re.finditer(re.escape(f" {n} "), said):
            spans.append((m.start(), m.end(), c))
    named = {c for s, e, c in spans if not any((s2 <= s and e <= e2) and (e2 - s2) > (e - s) for s2, e2, _ in spans)}
    if len(named) > 1:
        return None, "names several choices: " + ", ".join(sorted(named))
    by_text = next(iter(named)) if named else None
    if by_letter and by_text and by_letter != by_text:
        return None, f"letter {letter.upper()} ({by_letter}) and text ({by_text}) disagree"
    chosen = by_letter or by_text
    return (chosen, None) if chosen else (None, "names no choice (by letter or text)")


# --- locate -----------------------------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
_H = r"(?:h|hr|hrs|hour|hours)"
_M = r"(?:m|min|mins|minute|minutes)"
_S = r"(?:s|sec|secs|second|seconds)"
_CLOCK = rf"(?<![\d:.])(?:(\d+):)?(\d{{1,2}}):(\d{{2}}(?:\.\d+)?)(?![\d:])"
_UNITS = (rf"(?:(?P<h>{_NUM})\s*{_H}\b[\s,]*(?:and\s+)?)?(?:(?P<m>{_NUM})\s*{_M}\b[\s,]*(?:and\s+)?)?"
          rf"(?:(?P<s>{_NUM})\s*{_S}\b)?")
_RANGE_JOIN = r"\s*(?:-|–|—|to|until|till)\s*"


def _clock(h: str | None, m: str, s: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + float(s)


def _times(text: str) -> list[tuple[float, int, int]]:
    """(seconds, start, end) of each clock time or time with units, in order of position."""
    out = []
    taken: list[tuple[int, int]] = []
    for m in re.finditer(_CLOCK, text):
        out.append((_clock(*m.groups()), m.start(), m.end()))
        taken.append((m.start(), m.end()))
    for m in re.finditer(_UNITS, text):
        if not m.group() or not any(m.group(k) for k in "hms") or any(s < m.end() and m.start() < e for s, e in taken):
            continue
        seconds = sum(float(m.group(k)) * f for k, f in (("h", 3600), ("m", 60), ("s", 1)) if m.group(k))
        out.append((seconds, m.start(), m.end()))
        taken.append((m.start(), m.end()))
    return sorted(out, key=lambda t: t[1])


_UNIT_SCALE = {**{u: 3600 for u in ("h", "hr", "hrs", "hour", "hours")},
               **{u: 60 for u in ("m", "min", "mins", "minute", "minutes")},
               **{u: 1 for u in ("s", "sec", "secs", "second", "seconds")}}
_UNIT = r"(?:hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)"
_JOIN = rf"(?:{_RANGE_JOIN}|\s+and\s+)"  # "and" only after "between" (see _between)
_CLOCK_RANGE = re.compile(rf"{_CLOCK}{_JOIN}{_CLOCK}")
_UNIT_RANGE = re.compile(rf"(?<![\d.:])({_NUM})\s*({_UNIT})?\b{_JOIN}({_NUM})\s*({_UNIT})\b")


def _between(text: str, m: re.Match) -> bool:
    """A range joined by "and" must follow "between" ("55 and 60 s" alone is two times, not a span)."""
    joined_by_and = re.search(r"\sand\s", m.group()) is not None
    return not joined_by_and or re.search(r"\bbetween\s*$", text[:m.start()]) is not None


def parse_time(answer: str) -> tuple[float | None, str | None]:
    """Seconds into the recording the answer names (a range: its midpoint), or None and the reason."""
    text = _words_to_digits(_clean(answer))
    text = re.sub(r"(\d)(h|m|s)(?=\d)", r"\1 \2 ", text)  # "1m3s" → "1 m 3s"
    text = re.sub(r"(\d)(h|m|s|min|sec)\b", r"\1 \2", text)
    times = _times(text)
    ranges = []
    for m in _CLOCK_RANGE.finditer(text):
        if not _between(text, m):
            continue
        g = m.groups()
        ranges.append((m.start(), (_clock(*g[:3]) + _clock(*g[3:])) / 2))
    for m in _UNIT_RANGE.finditer(text):
        if not _between(text, m):
            continue
        a, unit_a, b, unit_b = m.groups()
        ranges.append((m.start(), (float(a) * _UNIT_SCALE[unit_a or unit_b] + float(b) * _UNIT_SCALE[unit_b]) / 2))
    if ranges and (not times or min(ranges)[0] <= times[0][1]):
        return min(ranges)[1], None
    if times:
        return times[0][0], None
    bare = _numbers(text)
    if len(bare) == 1:
        return bare[0][0], None
    if len(bare) == 2 and (re.fullmatch(_RANGE_JOIN, text[bare[0][2]:bare[1][1]]) or (
            re.fullmatch(r"\s+and\s+", text[bare[0][2]:bare[1][1]]) and re.search(r"\bbetween\s*$", text[:bare[0][1]]))):
        return (bare[0][0] + bare[1][0]) / 2, None
    return None, "no time in the answer" if not bare else "several numbers and no unit: which is the time?"


# --- scoring ----------------------------------------------------------------------------------------


def score_answer(question: Question, answer: str) -> Score:
    """Read ``answer`` and score it against ``question``'s key (keyed kinds); judged kinds are left unjudged."""
    kind = question.kind
    if kind in JUDGED_KINDS:
        return Score(None, None, None, None, NOT_JUDGED)
    if kind == "yesno":
        parsed, why = parse_yesno(answer)
        return Score(parsed, parsed == question.answer if parsed else False, note=why)
    if kind == "number":
        value, why = parse_number(answer)
        if value is None:
            return Score(None, False, note=why)
        parsed = int(value) if value.is_integer() else value
        return Score(parsed, abs(value - question.answer) <= question.tolerance + 1e-9)
    if kind == "short":
        parsed, correct, why = parse_short(answer, question.answer)
        return Score(parsed, correct, note=why)
    if kind == "choice":
        parsed, why = parse_choice(answer, question.choices)
        return Score(parsed, parsed == question.answer if parsed else False, note=why)
    if kind == "locate":
        t, why = parse_time(answer)
        if t is None:
            return Score(None, False, note=why)
        start, end = question.answer
        error = round(max(0.0, start - t, t - end), 3)
        return Score(round(t, 3), error <= question.tolerance_s + 1e-9, error_s=error)
    raise ValueError(f"unknown kind {kind!r}")


def question_key(question: Question) -> dict:
    """What an answer to ``question`` is scored against, as JSON (``TaskResult.key``)."""
    answer = list(question.answer) if isinstance(question.answer, tuple) else question.answer
    key = {"answer": answer}
    if question.kind == "number":
        key["tolerance"] = question.tolerance
    if question.kind == "locate":
        key["tolerance_s"] = question.tolerance_s
    if question.choices:
        key["choices"] = list(question.choices)
    if question.points:
        key["points"] = list(question.points)
    if question.rubric:
        key["rubric"] = question.rubric
    return key


def task_result(question: Question, answer: str, *, latency_s: float | None = None,
                usage: Usage | None = None, error: str | None = None, strategy: str | None = None,
                windows: int | None = None, cut_short: bool | None = None) -> TaskResult:
    """A question's answer, scored (keyed kinds: by the rules; judged kinds: not judged). With ``error`` (the
    answering call failed) the answer is wrong and counted, whatever the kind. ``strategy``/``windows``: how the
    recording was covered (see :class:`TaskResult`)."""
    if error is not None:
        return TaskResult(question.id, question.category, question.kind, question.prompt, answer or "", None,
                          False, None, None, Judge(RULES, f"no answer: {error}"), latency_s, usage,
                          question_key(question), error, strategy, windows)
    s = score_answer(question, answer)
    judge = None if question.kind in JUDGED_KINDS else Judge(RULES, s.note)
    return TaskResult(question.id, question.category, question.kind, question.prompt, answer or "", s.parsed,
                      s.correct, s.score, s.error_s, judge, latency_s, usage, question_key(question), None,
                      strategy, windows, cut_short)
