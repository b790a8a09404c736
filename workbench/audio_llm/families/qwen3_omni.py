"""Qwen3-Omni (30B-A3B Instruct / Thinking / Captioner, MoE): the thinker only — audio in, text out; the talker
(speech output) is never loaded.

Prompt format, as documented (model card, transformers' Qwen3-Omni page): a user turn whose content is
``[{"type": "audio", "audio": samples}, {"type": "text", "text": prompt}]``, rendered by the processor's chat
template with ``add_generation_prompt=True``, then ``processor(text=..., audio=[samples], padding=True)``; the
template writes ``<|audio_start|><|audio_pad|><|audio_end|>`` and the processor expands the audio token to
~12.5 tokens per second (13 per 100 mel frames). The recipe's system prompt goes in as a system message (Qwen3-Omni
is steered by system prompts; its card documents custom ones). The *Captioner* takes no prompt at all (audio
only); use it with an empty ``prompt`` only if you want captions, not transcripts. The *Thinking* model writes a
``<think>…</think>`` block before its answer: use the Instruct model for transcripts.

Per-call audio limit, 1200 s (20 min): Qwen3-Omni's processor neither pads nor truncates to a fixed ceiling
(``truncation=False``, ``padding=True`` — unlike Qwen2.5-Omni's 300 s), and its encoder runs in windows
(``n_window_infer``), so the limit is the context: Qwen reports audio understanding up to ~40 min per call;
20 min is ~15 000 audio tokens, half the 32k context the released configs declare for the text model, which
leaves room for the prompt and a long transcript. Lower ``max_audio_s`` in a recipe for shorter calls.

The processor wants image and video processors too: the image processor has a Pillow implementation; the video
processor needs torchvision, so where it cannot be imported the same documented audio-only stand-in as for
Qwen2.5-Omni is used (``qwen2_5_omni.load_processor``): it is never used for audio and refuses video.
"""

from __future__ import annotations

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, generate_reply
from workbench.audio_llm.families.qwen2_5_omni import load_processor


PROCESSOR = "Qwen3OmniMoeProcessor"


def load_thinker(location: str, *, dtype):
    """The thinker alone, from a thinker checkpoint or a full Qwen3-Omni one (``thinker_config`` inside,
    weights under ``thinker.``)."""
    from transformers import AutoConfig, Qwen3OmniMoeThinkerForConditionalGeneration

    config = AutoConfig.from_pretrained(location)
    if config.model_type == "qwen3_omni_moe":
        config = config.thinker_config
    return Qwen3OmniMoeThinkerForConditionalGeneration.from_pretrained(location, config=config, dtype=dtype)


class Qwen3OmniRunner:
    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    def inputs(self, samples: np.ndarray, *, system: str, prompt: str):
        samples = np.asarray(samples, dtype=np.float32)
        content = [{"type": "audio", "audio": samples}] + ([{"type": "text", "text": prompt}] if prompt else [])
        conversation = [{"role": "user", "content": content}]
        if system:
            conversation.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
        text = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        return self.processor(text=text, audio=[samples], return_tensors="pt", padding=True)

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        inputs = self.inputs(samples, system=system, prompt=prompt)
        return generate_reply(self.model, self.processor, inputs, max_new_tokens=max_new_tokens,
                              temperature=temperature, family="Qwen3-Omni", clean_up_tokenization_spaces=False)


@FAMILIES.register("qwen3-omni")
class Qwen3Omni(Family):
    model_types = ("qwen3_omni_moe", "qwen3_omni_moe_thinker")
    id_patterns = ("qwen3-omni",)
    max_audio_s = 1200.0
    requires = Family.requires + (("PIL", "pillow"),)
    hardware = ("30B-A3B MoE, thinker only (no talker): ~70 GB of GPU memory in bf16 (all experts are loaded; "
                "3B active per token), e.g. one 80 GB GPU; not practical on CPU")

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        processor = load_processor(location, PROCESSOR)
        model = load_thinker(location, dtype=dtype).to(device).eval()
        return Qwen3OmniRunner(model, processor)
