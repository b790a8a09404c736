"""Scores: word and character error counts that add up across recordings."""

from workbench.metrics.errors import ErrorCounts, char_errors, score_text, word_errors
from workbench.metrics.normalize import get_normalizer, normalize

__all__ = ["ErrorCounts", "char_errors", "get_normalizer", "normalize", "score_text", "word_errors"]
