"""Hallucination on silence and non-speech: probe clips, in-recording measures, padding deltas,
stock phrases and repetition loops."""
