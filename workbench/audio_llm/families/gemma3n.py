"""Gemma 3n (Google, E2B / E4B instruction-tuned): USM-style audio encoder + Gemma 3n LM (``gemma3n``).

Prompt format, as documented (Google's Gemma audio guide, transformers' Gemma 3n page): one user turn with
``[{"type": "audio", "audio": samples}, {"type": "text", "text": prompt}]`` through the processor's chat
template (``<start_of_turn>user … <end_of_turn><start_of_turn>model``); the processor replaces the audio
placeholder by ``<start_of_audio>`` + 188 audio soft tokens + ``<end_of_audio>`` — every clip gets the same
188 tokens (6.25 per second of a 30 s clip). Gemma has no system role: its chat template folds a system
message into the first user turn, so the recipe's system prompt is sent as a system message and lands there.

Per-call audio limit, 30 s: Google documents 30 s clips for Gemma 3n, and the feature extractor truncates
longer audio to 30 s (``max_length`` 480 000 samples) while the processor always inserts 188 audio tokens. A
longer window is refused here instead of being silently cut.

No timm here: Gemma 3n's vision tower is a timm MobileNetV5 (``TimmWrapperModel``), which transformers builds
in ``Gemma3nModel.__init__``. Where timm cannot be imported, the model is built by :func:`audio_only_model`:
the same transformers classes with the vision tower not constructed (``vision_tower`` is None; its weights in a
checkpoint are left unloaded, with transformers' "unexpected keys" notice), and any image input refused with a
clear error. The audio tower, the text model and the multimodal embedders are the real ones. The image
processor has a Pillow implementation (``SiglipImageProcessorPil``), so the processor is the real one.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, chat_inputs, generate_reply
from workbench.errors import BackendUnavailable

log = logging.getLogger(__name__)




def timm_works() -> bool:
    try:
        import timm  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


@functools.cache
def _audio_only_class():
    """Gemma3nForConditionalGeneration without the timm vision tower (built on first use)."""
    from torch import nn
    from transformers import AutoModel, Gemma3nForConditionalGeneration, Gemma3nModel
    from transformers.models.gemma3n.modeling_gemma3n import Gemma3nMultimodalEmbedder, Gemma3nPreTrainedModel

    class AudioOnlyGemma3nModel(Gemma3nModel):
        def __init__(self, config):  # Gemma3nModel.__init__ less the vision tower
            Gemma3nPreTrainedModel.__init__(self, config)
            self.vision_tower = None
            self.vocab_size = config.text_config.vocab_size
            self.language_model = AutoModel.from_config(config.text_config)
            self.vocab_size_per_layer_input = config.text_config.vocab_size_per_layer_input
            self.audio_tower = AutoModel.from_config(config.audio_config)
            self.embed_vision = Gemma3nMultimodalEmbedder(config.vision_config, config.text_config)
            self.embed_audio = Gemma3nMultimodalEmbedder(config.audio_config, config.text_config)
            self.post_init()

        def get_image_features(self, *args, **kwargs):
            raise BackendUnavailable("image input to Gemma 3n needs timm (this model was built audio-only)",
                                     "pip install timm")

    class AudioOnlyGemma3nForConditionalGeneration(Gemma3nForConditionalGeneration):
        def __init__(self, config):
            Gemma3nPreTrainedModel.__init__(self, config)
            self.model = AudioOnlyGemma3nModel(config)
            self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
            self.post_init()

    return AudioOnlyGemma3nForConditionalGeneration


def model_class():
    """The real class where timm imports, else the audio-only one."""
    from transformers import Gemma3nForConditionalGeneration

    if timm_works():
        return Gemma3nForConditionalGeneration
    log.info("Gemma 3n: timm cannot be imported; building the model without its vision tower (audio only)")
    return _audio_only_class()


class Gemma3nRunner:
    def __init__(self, model, processor):
        self.model, self.processor = model, processor
        extractor = processor.feature_extractor
        self.max_samples = int(getattr(extractor, "max_length", 0) or 0) or 30 * SAMPLE_RATE

    def inputs(self, samples: np.ndarray, *, system: str, prompt: str):
        samples = np.asarray(samples, dtype=np.float32)
        if len(samples) > self.max_samples:
            raise ValueError(f"{len(samples) / SAMPLE_RATE:.1f} s of audio in one call: Gemma 3n's feature extractor "
                             f"keeps only the first {self.max_samples / SAMPLE_RATE:.0f} s "
                             "(set max_audio_s no higher than that)")
        return chat_inputs(self.processor, samples, system=system, prompt=prompt)

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        inputs = self.inputs(samples, system=system, prompt=prompt)
        return generate_reply(self.model, self.processor, inputs, max_new_tokens=max_new_tokens,
                              temperature=temperature, family="Gemma 3n")


@FAMILIES.register("gemma3n")
class Gemma3n(Family):
    model_types = ("gemma3n",)
    id_patterns = ("gemma-3n",)
    max_audio_s = 30.0
    requires = Family.requires + (("PIL", "pillow"),)
    hardware = ("E2B (5B raw parameters): a GPU with ~11 GB in bf16; E4B (8B raw): ~16 GB; "
                "on CPU fp32 about 4x the raw parameter count in GB")

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(location)
        model = model_class().from_pretrained(location, dtype=dtype).to(device).eval()
        return Gemma3nRunner(model, processor)
