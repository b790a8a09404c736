"""Audio Flamingo 3 (NVIDIA, 8B): Whisper-style encoder + Qwen2.5 LM (``audioflamingo3``).

Prompt format, as documented (transformers model page and ``nvidia/audio-flamingo-3-hf``): one user turn whose
content is the text prompt *then* the audio, ``[{"type": "text", ...}, {"type": "audio", ...}]``, through the
processor's chat template with ``add_generation_prompt=True``; the template renders the audio as ``<sound>`` and
the processor expands it to one token per 40 ms of audio. NVIDIA documents no system message for AF3 (its
examples have none), so the recipe's system prompt is put before the prompt in the user turn's text.

Per-call audio limit, 600 s: the processor cuts the audio into 30 s windows and keeps at most
``max_audio_len`` (600 s, 20 windows) — anything longer is *truncated* with only a log line. A longer window is
refused here instead of being silently cut.

AF3 often frames a transcript ("The spoken content of the audio is \"...\""); transformers offers
``decode(strip_prefix=True)`` for that; the raw output is kept here (the arm's wrapper stripping applies).
"""

from __future__ import annotations

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, generate_reply




class AudioFlamingo3Runner:
    def __init__(self, model, processor):
        self.model, self.processor = model, processor
        self.max_audio_s = float(getattr(processor, "max_audio_len", 600))

    def inputs(self, samples: np.ndarray, *, system: str, prompt: str):
        samples = np.asarray(samples, dtype=np.float32)
        if len(samples) > self.max_audio_s * SAMPLE_RATE:
            raise ValueError(f"{len(samples) / SAMPLE_RATE:.1f} s of audio in one call: Audio Flamingo 3's processor "
                             f"keeps only the first {self.max_audio_s:.0f} s (set max_audio_s no higher than that)")
        text = f"{system}\n\n{prompt}" if system else prompt
        conversation = [{"role": "user", "content": [{"type": "text", "text": text},
                                                      {"type": "audio", "audio": samples}]}]
        return self.processor.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True,
                                                  return_dict=True, return_tensors="pt")

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        inputs = self.inputs(samples, system=system, prompt=prompt)
        return generate_reply(self.model, self.processor, inputs, max_new_tokens=max_new_tokens,
                              temperature=temperature, family="Audio Flamingo 3")


@FAMILIES.register("audioflamingo3")
class AudioFlamingo3(Family):
    model_types = ("audioflamingo3",)
    id_patterns = ("audio-flamingo-3",)
    max_audio_s = 600.0
    hardware = "8B: a GPU with ~18 GB (bf16); on CPU fp32 ~32 GB of memory, and slow"

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor

        processor = AutoProcessor.from_pretrained(location)
        model = AudioFlamingo3ForConditionalGeneration.from_pretrained(location, dtype=dtype).to(device).eval()
        return AudioFlamingo3Runner(model, processor)
