"""What a model family provides."""

from __future__ import annotations

import logging
from typing import ClassVar, Protocol

import numpy as np

from workbench.backends.base import require_packages
from workbench.errors import BackendUnavailable
from workbench.registry import Registry

log = logging.getLogger(__name__)


class Runner(Protocol):
    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language: str | None,
                 max_new_tokens: int, temperature: float): ...


class Family:
    """A model family: ``model_types`` (config.json), ``id_patterns`` (hub ids), per-call audio limit."""

    name: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()
    id_patterns: ClassVar[tuple[str, ...]] = ()
    max_audio_s: ClassVar[float] = 30.0
    requires: ClassVar[tuple[tuple[str, str], ...]] = (("transformers", "transformers"), ("torch", "torch"))
    supported: ClassVar[bool] = True
    hardware: ClassVar[str] = ""

    @classmethod
    def check(cls) -> None:
        require_packages(cls.requires, extra_hint=f"(the {cls.name} family)")

    @classmethod
    def load(cls, location: str, *, device: str, dtype) -> Runner:
        raise NotImplementedError


FAMILIES: Registry[Family] = Registry("audio-LLM family")


def not_supported(family: str) -> BackendUnavailable:
    supported = ", ".join(n for n in FAMILIES.names() if FAMILIES.get(n).supported)
    return BackendUnavailable(f"the {family} family is not supported yet", f"supported families: {supported}")


def sampling(temperature: float) -> dict:
    return {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}


def chat_inputs(processor, samples, *, system: str, prompt: str):
    """Model inputs from the processor's own chat template: an optional system turn, then a user turn holding the
    audio and the prompt (the families whose processors take the samples inside the conversation)."""
    conversation = [{"role": "user", "content": [{"type": "audio", "audio": samples}, {"type": "text", "text": prompt}]}]
    if system:
        conversation.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
    return processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True,
                                         return_tensors="pt")


def generate_reply(model, processor, inputs, *, max_new_tokens: int, temperature: float, family: str, **decode):
    """Generate from prepared processor inputs and decode only the new tokens: the step every transformers
    family shares. ``finish_reason`` is "length" when the output stopped at ``max_new_tokens`` without an end
    token (it may be cut short), else "stop"."""
    import torch

    from workbench.audio_llm.backends import Reply

    inputs = inputs.to(model.device)
    if "input_features" in inputs:
        inputs["input_features"] = inputs["input_features"].to(model.dtype)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling(temperature))
    n_in = inputs["input_ids"].shape[1]
    new = out[:, n_in:]
    text = processor.batch_decode(new, skip_special_tokens=True, **decode)[0]
    cut = new.shape[1] >= max_new_tokens and int(new[0, -1]) not in _end_tokens(model)
    if cut:
        log.warning("%s stopped at max_new_tokens=%d: the output may be cut short", family, max_new_tokens)
    return Reply(text, int(n_in), int(new.shape[1]), "length" if cut else "stop", max_new_tokens)


def _end_tokens(model) -> set[int]:
    """The token ids that end generation (the generation config's eos_token_id, one id or a list)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return set(eos) if isinstance(eos, (list, tuple)) else ({eos} if isinstance(eos, int) else set())


def text_reply(model, processor, *, system: str, prompt: str, max_new_tokens: int, temperature: float):
    """A text-only call (no audio): the processor's chat template with text parts only, else its tokenizer's
    chat template with plain messages, else the plain prompt."""
    conversation = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
    if system:
        conversation.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
    tokenizer = getattr(processor, "tokenizer", processor)
    try:
        inputs = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                               return_dict=True, return_tensors="pt")
    except Exception:  # noqa: BLE001 - a processor whose template needs audio: the tokenizer's, or none
        plain = [{"role": m["role"], "content": m["content"][0]["text"]} for m in conversation]
        if getattr(tokenizer, "chat_template", None):
            inputs = tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True, return_tensors="pt")
        else:
            inputs = tokenizer(f"{system}\n\n{prompt}" if system else prompt, return_tensors="pt")
    return generate_reply(model, tokenizer if not hasattr(processor, "batch_decode") else processor, inputs,
                          max_new_tokens=max_new_tokens, temperature=temperature, family="text-only")
