"""Questions about a recording (issue 13): question sets, reading and scoring answers, the per-question result.

- :mod:`workbench.tasks.questions`: the TOML question-set format, validated (one error naming file, question, field);
- :mod:`workbench.tasks.answers`: deterministic answer extraction and scoring for the keyed kinds, ``TaskResult``;
- :mod:`workbench.tasks.judge`: judging keypoints/open answers with a model (prompts, reading its reply, cache
  keys, ``judge_tasks``/``judge_rows``); the judge model itself is :mod:`workbench.judging`;
- :mod:`workbench.tasks.summary`: accuracy per category per recipe with a bootstrap interval over questions;
- :mod:`workbench.tasks.ranking`: blind human judgement — the pairs of answers to judge, and recipes ranked from
  the votes (Bradley–Terry via choix, bootstrap interval over votes); the dashboard's Judge panel shows it.

- :mod:`workbench.tasks.prompts`: what a recipe is asked (per-kind instructions, the rendered transcript).

The recipes answer through :mod:`workbench.pipelines.answering` (``run_recipes(questions=…)``, ``workbench ask``).
"""

from workbench.tasks.answers import Judge, Score, TaskResult, score_answer, task_result
from workbench.tasks.questions import (JUDGED_KINDS, KEYED_KINDS, KINDS, Question, QuestionSet, load_question_set,
                                       parse_question_set)

__all__ = ["JUDGED_KINDS", "KEYED_KINDS", "KINDS", "Judge", "Question", "QuestionSet", "Score", "TaskResult",
           "load_question_set", "parse_question_set", "score_answer", "task_result"]
