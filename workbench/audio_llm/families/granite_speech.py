"""Granite Speech (IBM, 3.3 2B / 8B; 4.x): Conformer CTC encoder + Q-Former projector + Granite LM + an audio LoRA
(``granite_speech``).

Prompt format, as documented (IBM's model card and Granite docs): the tokenizer's chat template over
``[{"role": "system", "content": system}, {"role": "user", "content": "<|audio|>" + prompt}]`` with
``add_generation_prompt=True``, then ``processor(text, audio)``; the processor expands ``<|audio|>`` to one token
per 100 ms of audio (3 per 15-frame projector window). IBM's cards use the system prompt "Knowledge Cutoff Date:
April 2024. Today's Date: …. You are Granite, developed by IBM. You are a helpful AI assistant."; the recipe's
system prompt is sent instead (put IBM's in ``system_prompt`` to use it). Granite Speech is a *two-pass* design:
it is trained to transcribe (and translate); formatting, speakers and summaries are weak spots by design.

Per-call audio limit, 30 s: the processor has no ceiling of its own, but the model is trained on utterance-length
ASR/AST corpora, and IBM's own long-form tooling (the ``granite-speech`` package) cuts recordings into chunks
before calling the model. 30 s keeps each call within what was trained; raise ``max_audio_s`` at your own risk.

Needs ``torchaudio`` (the feature extractor's mel spectrogram is ``torchaudio.transforms.MelSpectrogram``) and,
for the released checkpoints (``has_lora_adapter``), ``peft`` — without it transformers loads the model without
its audio LoRA, which is not the model IBM evaluated, so that is refused here.
"""

from __future__ import annotations

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.families.base import FAMILIES, Family, generate_reply
from workbench.errors import BackendUnavailable




class GraniteSpeechRunner:
    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    def inputs(self, samples: np.ndarray, *, system: str, prompt: str):
        samples = np.asarray(samples, dtype=np.float32)
        chat = [{"role": "user", "content": f"{self.processor.audio_token}{prompt}"}]
        if system:
            chat.insert(0, {"role": "system", "content": system})
        text = self.processor.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return self.processor(text, samples, return_tensors="pt")

    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language, max_new_tokens: int,
                 temperature: float):
        inputs = self.inputs(samples, system=system, prompt=prompt)
        return generate_reply(self.model, self.processor, inputs, max_new_tokens=max_new_tokens,
                              temperature=temperature, family="Granite Speech")


@FAMILIES.register("granite-speech")
class GraniteSpeech(Family):
    model_types = ("granite_speech",)
    id_patterns = ("granite-speech",)
    max_audio_s = 30.0
    requires = Family.requires + (("torchaudio", "torchaudio"),)
    hardware = "2B: a GPU with ~8 GB (bf16); 8B: ~20 GB; the 2B runs on CPU (fp32 ~12 GB of memory), slowly"

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        from transformers import AutoConfig, AutoProcessor, GraniteSpeechForConditionalGeneration
        from transformers.utils import is_peft_available

        if getattr(AutoConfig.from_pretrained(location), "has_lora_adapter", False) and not is_peft_available():
            raise BackendUnavailable(f"{location} has an audio LoRA adapter, which transformers loads only with peft",
                                     "pip install peft")
        processor = AutoProcessor.from_pretrained(location)
        model = GraniteSpeechForConditionalGeneration.from_pretrained(location, dtype=dtype).to(device).eval()
        return GraniteSpeechRunner(model, processor)
