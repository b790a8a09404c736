"""Qwen2-Audio: Whisper-style encoder + Qwen2 LM; 30 s of audio per call.

Two prompt formats, as documented for the two checkpoints:

- *Instruct* (``Qwen2-Audio-7B-Instruct`` and its fine-tunes): the processor's chat template, a system message and
  one user turn with the audio and the prompt.
- *base* (the pretrained ``Qwen2-Audio-7B``): no chat template — the plain text
  ``<|audio_bos|><|AUDIO|><|audio_eos|>`` followed by the task prompt (transformers' own example:
  ``"<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:"``). No system prompt.

Which one a checkpoint gets (:func:`prompt_format`): "instruct" in its name → chat; the official base name
(``Qwen2-Audio-7B``) → base; otherwise chat when the checkpoint ships a chat template, else base. The recipe can
say which (``prompt_format = "base"`` / ``"chat"``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, generate_reply

BASE_AUDIO = "<|audio_bos|><|AUDIO|><|audio_eos|>"
_BASE_NAME = re.compile(r"qwen2-audio-7b/?$", re.IGNORECASE)


def prompt_format(location: str, processor) -> str:
    """``"chat"`` or ``"base"`` for the checkpoint at ``location`` (a folder or hub id) with ``processor``."""
    name = str(location).rstrip("/").lower()
    if "instruct" in Path(name).name or "instruct" in name.rsplit("/", 2)[-1]:
        return "chat"
    if _BASE_NAME.search(name):
        return "base"
    template = getattr(processor, "chat_template", None) or getattr(getattr(processor, "tokenizer", None),
                                                                    "chat_template", None)
    return "chat" if template else "base"


class Qwen2AudioRunner:
    def __init__(self, model, processor, prompt_format: str = "chat"):
        self.model, self.processor, self.prompt_format = model, processor, prompt_format

    def text(self, *, system: str, prompt: str) -> str:
        """The text the processor gets (its ``<|AUDIO|>`` is expanded to one token per audio frame)."""
        if self.prompt_format == "base":
            return BASE_AUDIO + prompt
        conversation = [
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "audio", "audio_url": "window.wav"}, {"type": "text", "text": prompt}]},
        ]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        text = self.text(system=system, prompt=prompt)
        inputs = self.processor(text=text, audio=[samples], sampling_rate=SAMPLE_RATE, return_tensors="pt", padding=True)
        return generate_reply(self.model, self.processor, inputs, max_new_tokens=max_new_tokens, temperature=temperature,
                              family="Qwen2-Audio", clean_up_tokenization_spaces=False)


@FAMILIES.register("qwen2-audio")
class Qwen2Audio(Family):
    model_types = ("qwen2_audio",)
    id_patterns = ("qwen2-audio",)
    max_audio_s = 30.0
    hardware = "7B: a GPU with 24 GB (bf16), or ~32 GB of CPU memory (fp32, slow)"

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        processor = AutoProcessor.from_pretrained(location)
        model = Qwen2AudioForConditionalGeneration.from_pretrained(location, dtype=dtype).to(device).eval()
        return Qwen2AudioRunner(model, processor, prompt_format(location, processor))
