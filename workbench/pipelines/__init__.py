"""Pipelines behind one protocol; recipes pick one by name (``pipeline = "cascade"``)."""

from workbench.pipelines.base import PIPELINES, Pipeline, PipelineOutput, StageFailed
from workbench.pipelines import audio_llm, cascade  # noqa: F401  (registers "audio-llm", "cascade")

__all__ = ["PIPELINES", "Pipeline", "PipelineOutput", "StageFailed", "build_pipeline"]


def build_pipeline(recipe) -> Pipeline:
    return PIPELINES.get(recipe.pipeline)(recipe)
