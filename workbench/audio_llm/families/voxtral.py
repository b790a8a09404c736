"""Voxtral (Mini 3B, Small 24B): Whisper-style encoder + Mistral LM, tokenised by mistral-common (Tekken).

Per-call audio: about 30 min for a transcription request and about 40 min for chat/understanding (Mistral's
model card); the family's limit is the smaller, 30 min, so one window serves either task.

Prompt formats (the documented ones, through ``VoxtralProcessor``):

- task ``transcript``: the dedicated *transcription request* (``apply_transcription_request``). It has no text
  prompt: the system and user prompts are not sent. ``language`` (recipe ``language = "en"``) is passed as the
  language hint; unset, Voxtral detects the language itself.
- other tasks: the chat template, one user turn with the audio (base64 WAV, in memory) and the prompt text.
  Tokenizers before Tekken v13 — the released Voxtral checkpoints — refuse a system message next to audio
  ("not allowed prior to the tokenizer version 13"), so the system prompt is put before the user prompt in
  that turn; from v13 on it is sent as a system message.

Needs ``mistral-common`` (with its audio extra: soundfile + soxr), which transformers uses for Voxtral's
tokenizer; transformers also wants Pillow for it (a mistral-common dependency).
"""

from __future__ import annotations

import base64

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, generate_reply
from workbench.errors import BackendUnavailable

#: transformers' own floor (MISTRAL_COMMON_MIN_VERSION); below it, it silently falls back to a tokenizer
#: without apply_transcription_request
MIN_MISTRAL_COMMON = "1.11.5"


def _system_message_allowed(processor) -> bool:
    """Whether the Tekken tokenizer accepts a system message in a conversation with audio (v13 and later)."""
    try:
        version = processor.tokenizer.tokenizer.instruct_tokenizer.tokenizer.version
        return version.version_num >= 13
    except Exception:  # noqa: BLE001 - an unknown layout: the safe form
        return False


class VoxtralRunner:
    def __init__(self, model, processor, model_id: str):
        self.model, self.processor, self.model_id = model, processor, model_id
        self.system_message = _system_message_allowed(processor)

    def inputs(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language):
        """The processor's model inputs for one call (input_ids, attention_mask, input_features)."""
        from workbench.audio_llm.backends import wav_bytes

        samples = np.asarray(samples, dtype=np.float32)
        if task == "transcript":
            return self.processor.apply_transcription_request(
                audio=samples, model_id=self.model_id, language=language or None, sampling_rate=SAMPLE_RATE,
                format="wav",
            )
        audio = base64.b64encode(wav_bytes(samples)).decode("ascii")
        text = prompt if (self.system_message or not system) else f"{system}\n\n{prompt}"
        conversation = [{"role": "user", "content": [{"type": "audio", "base64": audio}, {"type": "text", "text": text}]}]
        if self.system_message and system:
            conversation.insert(0, {"role": "system", "content": system})
        return self.processor.apply_chat_template(conversation)

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        inputs = self.inputs(samples, system=system, prompt=prompt, task=task, language=language)
        return generate_reply(self.model, self.processor, inputs, max_new_tokens=max_new_tokens, temperature=temperature,
                              family="Voxtral")


@FAMILIES.register("voxtral")
class Voxtral(Family):
    model_types = ("voxtral",)
    id_patterns = ("voxtral",)
    max_audio_s = 1800.0
    requires = Family.requires + (("mistral_common", "mistral-common[audio]"), ("soundfile", "soundfile"),
                                  ("soxr", "soxr"), ("PIL", "pillow"))
    hardware = "Mini 3B: a GPU with ~10 GB (bf16); Small 24B: ~55 GB (bf16)"

    @classmethod
    def check(cls) -> None:
        super().check()
        from importlib.metadata import version

        from packaging.version import Version

        found = version("mistral-common")
        if Version(found) < Version(MIN_MISTRAL_COMMON):
            raise BackendUnavailable(
                f"mistral-common {found} is too old for transformers' Voxtral tokenizer (needs >= {MIN_MISTRAL_COMMON})",
                f'pip install -U "mistral-common[audio]>={MIN_MISTRAL_COMMON}"',
            )

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        from transformers import AutoProcessor, VoxtralForConditionalGeneration

        processor = AutoProcessor.from_pretrained(location)
        model = VoxtralForConditionalGeneration.from_pretrained(location, dtype=dtype).to(device).eval()
        return VoxtralRunner(model, processor, model_id=location)
