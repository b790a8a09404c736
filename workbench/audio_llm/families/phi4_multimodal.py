"""Phi-4-multimodal-instruct (Microsoft, 5.6B): Phi-4-mini LM + Conformer speech encoder + a speech LoRA, through
transformers' native ``phi4_multimodal`` classes (not the hub's ``trust_remote_code`` ``phi4mm`` code).

Prompt format, as documented (transformers' Phi4 Multimodal page): one user turn
``[{"type": "audio", ...}, {"type": "text", "text": prompt}]`` through the processor's chat template with
``add_generation_prompt=True`` (Phi's ``<|user|>…<|end|><|assistant|>`` format; the audio part renders as the
audio placeholder, which the processor expands to one token per 80 ms of audio). The recipe's system prompt goes
in as a ``<|system|>`` message. The speech LoRA: the checkpoint's ``speech-lora/`` adapter is loaded and enabled
as transformers documents (``model.load_adapter(..., adapter_kwargs={"subfolder": "speech-lora"})``,
``set_adapter("speech")``) — that needs ``peft``; without the adapter Phi-4's speech quality is not the model's.

Per-call audio limit, 30 s: Microsoft trained ASR and speech translation on utterances up to about 30-40 s
(longer audio only for speech summarization, up to ~30 min); transcripts of longer calls are not what was
trained. Raise ``max_audio_s`` in a recipe for summaries only.

No torchvision here: Phi-4's image processor (``Phi4MultimodalImageProcessorFast``) is torchvision-only, and the
processor type-checks it. Where torchvision cannot be imported, the processor is built from the checkpoint's
audio feature extractor and tokenizer with an *audio-only image processor*: it is never used for audio and
refuses images with a clear error (never a silent stand-in). The model class itself needs neither torchvision nor
timm (its vision encoder is plain torch).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, chat_inputs, generate_reply
from workbench.audio_llm.families.qwen2_5_omni import torchvision_works
from workbench.errors import BackendUnavailable

log = logging.getLogger(__name__)




@functools.cache
def _audio_only_classes():
    from transformers import Phi4MultimodalProcessor
    from transformers.image_processing_utils import ImageProcessingMixin

    class AudioOnlyImageProcessor(ImageProcessingMixin):
        """Stands in for Phi4MultimodalImageProcessorFast where torchvision is missing: audio only."""

        model_input_names = ["image_pixel_values", "image_sizes", "image_attention_mask"]

        def __call__(self, images, **kwargs):
            raise BackendUnavailable("image input to Phi-4-multimodal needs torchvision (this processor is audio-only)",
                                     "install a torchvision build matching your torch")

        preprocess = __call__

    class AudioOnlyPhi4MultimodalProcessor(Phi4MultimodalProcessor):
        """The real processor; it only also accepts the audio-only image processor."""

        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "image_processor" and isinstance(argument, AudioOnlyImageProcessor):
                return AudioOnlyImageProcessor
            return super().check_argument_for_proper_class(argument_name, argument)

    return AudioOnlyImageProcessor, AudioOnlyPhi4MultimodalProcessor


def audio_only_processor(audio_processor, tokenizer, **kwargs):
    image_cls, processor_cls = _audio_only_classes()
    return processor_cls(image_processor=image_cls(), audio_processor=audio_processor, tokenizer=tokenizer, **kwargs)


def load_processor(location: str):
    """``Phi4MultimodalProcessor.from_pretrained``; without torchvision, the same parts with the audio-only image
    processor."""
    from transformers import AutoTokenizer, Phi4MultimodalFeatureExtractor, Phi4MultimodalProcessor

    if torchvision_works():
        return Phi4MultimodalProcessor.from_pretrained(location)
    log.info("Phi-4-multimodal: torchvision cannot be imported; building an audio-only processor")
    image_cls, processor_cls = _audio_only_classes()
    parts = {"image_processor": image_cls(), "audio_processor": Phi4MultimodalFeatureExtractor.from_pretrained(location),
             "tokenizer": AutoTokenizer.from_pretrained(location)}
    processor_dict, kwargs = processor_cls.get_processor_dict(location)
    args = [parts[name] for name in processor_cls.get_attributes()]
    processor = processor_cls.from_args_and_dict(args, processor_dict, **kwargs)
    if processor.chat_template is None:  # Phi4MultimodalProcessor.__init__ takes it only through **kwargs
        processor.chat_template = processor_dict.get("chat_template")
    return processor


def _has_speech_lora(location: str) -> bool:
    folder = Path(location).expanduser()
    if folder.is_dir():
        return (folder / "speech-lora" / "adapter_config.json").is_file()
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(location, "speech-lora/adapter_config.json"), str)
    except Exception:  # noqa: BLE001
        return False


class Phi4MultimodalRunner:
    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    def inputs(self, samples: np.ndarray, *, system: str, prompt: str):
        samples = np.asarray(samples, dtype=np.float32)
        return chat_inputs(self.processor, samples, system=system, prompt=prompt)

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        inputs = self.inputs(samples, system=system, prompt=prompt)
        if "audio_input_features" in inputs:
            inputs["audio_input_features"] = inputs["audio_input_features"].to(self.model.dtype)
        return generate_reply(self.model, self.processor, inputs, max_new_tokens=max_new_tokens,
                              temperature=temperature, family="Phi-4-multimodal", clean_up_tokenization_spaces=False)


@FAMILIES.register("phi4-multimodal")
class Phi4Multimodal(Family):
    #: ``phi4mm``: the hub's main-branch (trust_remote_code) layout, recognised only to say which revision to get
    model_types = ("phi4_multimodal", "phi4mm")
    id_patterns = ("phi-4-multimodal",)
    max_audio_s = 30.0
    hardware = "5.6B: a GPU with ~12 GB (bf16); on CPU fp32 ~24 GB of memory, and slow"

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        from transformers import Phi4MultimodalForCausalLM

        from workbench.audio_llm.families import model_type

        if model_type(location) == "phi4mm":
            raise BackendUnavailable(
                f"{location} is Phi-4-multimodal's trust_remote_code layout (model_type phi4mm), not transformers' own",
                "download the transformers layout: huggingface-cli download microsoft/Phi-4-multimodal-instruct "
                "--revision refs/pr/70 --local-dir DIR, and set model = DIR")
        speech_lora = _has_speech_lora(location)
        if speech_lora:
            from transformers.utils import is_peft_available

            if not is_peft_available():
                raise BackendUnavailable("Phi-4-multimodal's speech LoRA (speech-lora/) needs peft", "pip install peft")
        processor = load_processor(location)
        model = Phi4MultimodalForCausalLM.from_pretrained(location, dtype=dtype)
        if speech_lora:
            model.load_adapter(location, adapter_name="speech", adapter_kwargs={"subfolder": "speech-lora"})
            model.set_adapter("speech")
        else:
            log.warning("Phi-4-multimodal: no speech-lora/ adapter in %s; running the base weights only", location)
        return Phi4MultimodalRunner(model.to(device).eval(), processor)
