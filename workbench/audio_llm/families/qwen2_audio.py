"""Qwen2-Audio(-Instruct): Whisper-style encoder + Qwen2 LM; 30 s of audio per call."""

from __future__ import annotations

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, generate_reply


class Qwen2AudioRunner:
    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        conversation = [
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "audio", "audio_url": "window.wav"}, {"type": "text", "text": prompt}]},
        ]
        text = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
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
        return Qwen2AudioRunner(model, processor)
