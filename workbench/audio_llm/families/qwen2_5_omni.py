"""Qwen2.5-Omni (3B, 7B): the thinker only — audio in, text out; the talker (speech output) is never loaded.

Prompt format, as documented for the model: a system message, then a user turn whose content is
``[{"type": "audio", "audio": samples}, {"type": "text", "text": prompt}]``; the processor's chat template
renders the audio part as ``<|audio_bos|><|AUDIO|><|audio_eos|>`` and the processor expands ``<|AUDIO|>`` to one
token per 40 ms of audio. The system prompt is the recipe's. Qwen documents its own system prompt ("You are
Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and visual
inputs, as well as generating text and speech.") as required for *speech* output; for text output any system
prompt is accepted, and the recipe's keeps the comparison with other models on the same instructions. Put
Qwen's sentence in ``system_prompt`` to use it.

Per-call audio limit, 300 s: the audio encoder has no length limit of its own — it cuts the mel frames into
blocks of ``2 * n_window`` = 200 frames (2 s), each with its own positions (``max_source_positions`` 1500 ≫ 100
frames after the stride-2 convolution) and attention only within a block — but the checkpoint's Whisper
feature extractor (``chunk_length`` 300, ``n_samples`` 4 800 000) pads or *truncates* every audio to 300 s.
So 300 s is the most one call can see; 300 s is ~7 500 audio tokens, well inside the 32k context. A longer
window is refused here rather than silently cut. Note: a 300 s window of dense speech can need ~1 000 output
tokens or more: the per-window output budget (8 tokens per second of audio + 128 by default) gives it 2,528. The processor pads
every call's audio to the 300 s ceiling before computing mel features (``padding="max_length"`` is forced), so
each call pays that fixed cost (~1.4 s on 2 CPU cores) whatever the window's length; the encoder then only
sees the real frames. ``use_audio_in_video`` is not passed: no video is sent, and transformers 5 deprecates it.

The processor wants image and video processors too. The image processor has a PIL implementation (Pillow);
the video processor needs torchvision, which has no build matching the CPU torch here, so when it cannot be
imported an audio-only stand-in takes its place: it is never used for audio and refuses video with a clear
error. Where torchvision works, the real one is used.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, generate_reply
from workbench.errors import BackendUnavailable

log = logging.getLogger(__name__)

OFFICIAL_SYSTEM = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
                   "auditory and visual inputs, as well as generating text and speech.")


@functools.cache
def _audio_only_classes(processor_name: str = "Qwen2_5OmniProcessor"):
    """Built on first use, so importing this module does not import transformers. ``processor_name``: the
    Qwen omni processor class (Qwen2.5-Omni's, or Qwen3-Omni's ``Qwen3OmniMoeProcessor``)."""
    import transformers
    from transformers.video_processing_utils import VideoProcessorMixin

    base = getattr(transformers, processor_name)

    class AudioOnlyVideoProcessor(VideoProcessorMixin):
        """Stands in for Qwen2VLVideoProcessor where torchvision is missing: this workbench sends audio only."""

        merge_size = 2
        temporal_patch_size = 2
        model_input_names = ["pixel_values_videos", "video_grid_thw"]

        def preprocess(self, videos, **kwargs):
            raise BackendUnavailable(f"video input to {processor_name} needs torchvision (this processor is audio-only)",
                                     "install a torchvision build matching your torch")

    class AudioOnlyProcessor(base):
        """The real processor; it only also accepts the stand-in video processor. (Without torchvision,
        transformers cannot type-check any video processor: its video classes are dummies.)"""

        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and isinstance(argument, AudioOnlyVideoProcessor):
                return AudioOnlyVideoProcessor
            return super().check_argument_for_proper_class(argument_name, argument)

    AudioOnlyProcessor.__name__ = f"AudioOnly{processor_name}"
    return AudioOnlyVideoProcessor, AudioOnlyProcessor


def audio_only_processor(image_processor, feature_extractor, tokenizer, processor_name: str = "Qwen2_5OmniProcessor",
                         **kwargs):
    """A Qwen omni processor whose video processor is the audio-only stand-in."""
    video_cls, processor_cls = _audio_only_classes(processor_name)
    return processor_cls(image_processor=image_processor, video_processor=video_cls(),
                         feature_extractor=feature_extractor, tokenizer=tokenizer, **kwargs)


def torchvision_works() -> bool:
    """torchvision imports (a wheel built for another torch fails at import: "operator torchvision::nms does
    not exist")."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def load_processor(location: str, processor_name: str = "Qwen2_5OmniProcessor"):
    """``<processor_name>.from_pretrained``; where torchvision cannot be imported, the same with the
    audio-only stand-in for the video processor."""
    import transformers
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoTokenizer

    if torchvision_works():
        return getattr(transformers, processor_name).from_pretrained(location)
    log.info("%s: torchvision cannot be imported; using an audio-only stand-in for the video processor",
             processor_name)
    video_cls, processor_cls = _audio_only_classes(processor_name)
    parts = {
        "image_processor": AutoImageProcessor.from_pretrained(location),
        "video_processor": video_cls(),
        "feature_extractor": AutoFeatureExtractor.from_pretrained(location),
        "tokenizer": AutoTokenizer.from_pretrained(location),
    }
    processor_dict, kwargs = processor_cls.get_processor_dict(location)
    args = [parts[name] for name in processor_cls.get_attributes()]
    return processor_cls.from_args_and_dict(args, processor_dict, **kwargs)


def load_thinker(location: str, *, dtype):
    """The thinker alone, from a thinker checkpoint or a full Qwen2.5-Omni one (``thinker_config`` inside,
    weights under ``thinker.``; transformers strips that prefix for the thinker class)."""
    from transformers import AutoConfig, Qwen2_5OmniThinkerForConditionalGeneration

    config = AutoConfig.from_pretrained(location)
    if config.model_type == "qwen2_5_omni":
        config = config.thinker_config
    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(location, config=config, dtype=dtype)


class Qwen2_5OmniRunner:
    def __init__(self, model, processor):
        self.model, self.processor = model, processor
        self.max_samples = int(getattr(processor.feature_extractor, "n_samples", 0)) or None

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        if self.max_samples and len(samples) > self.max_samples:
            raise ValueError(f"{len(samples) / SAMPLE_RATE:.1f} s of audio in one call: Qwen2.5-Omni's feature "
                             f"extractor keeps only the first {self.max_samples / SAMPLE_RATE:.0f} s "
                             "(set max_audio_s no higher than that)")
        conversation = [
            {"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": [{"type": "audio", "audio": samples}, {"type": "text", "text": prompt}]},
        ]
        text = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=text, audio=[samples], sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                padding=True)
        return generate_reply(self.model, self.processor, inputs, max_new_tokens=max_new_tokens, temperature=temperature,
                              family="Qwen2.5-Omni", clean_up_tokenization_spaces=False)


@FAMILIES.register("qwen2.5-omni")
class Qwen2_5Omni(Family):
    model_types = ("qwen2_5_omni", "qwen2_5_omni_thinker")
    id_patterns = ("qwen2.5-omni",)
    max_audio_s = 300.0
    requires = Family.requires + (("PIL", "pillow"),)
    hardware = ("thinker only (no talker): 3B ~12 GB of GPU memory in bf16, 7B ~22 GB; "
                "on CPU fp32 about 4x the parameter count in GB, and slow")

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        processor = load_processor(location)
        model = load_thinker(location, dtype=dtype).to(device).eval()
        return Qwen2_5OmniRunner(model, processor)
