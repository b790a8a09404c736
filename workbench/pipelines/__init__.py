"""Pipelines behind one protocol; recipes pick one by name (``pipeline = "cascade"``)."""

from workbench.pipelines.base import PIPELINES, Pipeline, PipelineOutput, StageFailed, Traits
from workbench.pipelines import audio_llm, cascade  # noqa: F401  (registers "audio-llm", "cascade")

__all__ = ["PIPELINES", "Pipeline", "PipelineOutput", "StageFailed", "Traits", "build_pipeline", "pipeline_traits"]


def build_pipeline(recipe) -> Pipeline:
    return PIPELINES.get(recipe.pipeline)(recipe)


def pipeline_traits(recipe) -> Traits:
    """What the recipe's pipeline says of itself (remote, calls an API, diarizes, formats); a pipeline that does
    not say is local and only transcribes."""
    traits = getattr(PIPELINES.get(recipe.pipeline), "traits", None)
    return traits(recipe) if traits is not None else Traits()
