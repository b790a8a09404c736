"""A tiny, randomly initialised Voxtral checkpoint built offline, for running the real transformers code path.

The tokenizer is a real mistral-common Tekken tokenizer (``tekken.json``, version v7 like the released Voxtral
checkpoints) with a byte-level vocabulary of 256 tokens and no merges, 100 special tokens placed where
``VoxtralProcessor`` expects them ([AUDIO] = 24, which it hard-codes), and the Voxtral audio settings (16 kHz,
12.5 audio tokens per second, 128 mel bins, 30 s chunks). The model keeps Voxtral's audio geometry (3000 mel
frames → 1500 encoder frames → 375 audio tokens per 30 s chunk: the projector takes 4 encoder frames per token,
intermediate_size = 4 × hidden_size) with a 1-layer encoder and a 1-layer Llama text model.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

NUM_SPECIAL = 100
VOCAB = 256 + NUM_SPECIAL
AUDIO_TOKEN_ID = 24

_NAMED = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]",
          "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]", "[PREFIX]", "[MIDDLE]",
          "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"]
_PLACED = {20: "[ARGS]", 21: "[CALL_ID]", AUDIO_TOKEN_ID: "[AUDIO]", 25: "[BEGIN_AUDIO]", 34: "[TRANSCRIBE]"}
# mistral-common's Tekken split pattern (as in its bundled tekken files)
_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?"
            r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|"
            r"\s+(?!\S)|\s+")


def tekken_json(version: str = "v7") -> dict:
    """A tiny Tekken tokenizer file with Voxtral's audio section."""
    names = {i: name for i, name in enumerate(_NAMED)} | _PLACED
    special = [{"rank": i, "token_str": names.get(i, f"<SPECIAL_{i}>"), "is_control": True} for i in range(NUM_SPECIAL)]
    vocab = [{"rank": i, "token_bytes": base64.b64encode(bytes([i])).decode("ascii"),
              "token_str": chr(i) if 32 <= i < 127 else None} for i in range(256)]
    return {
        "config": {"pattern": _PATTERN, "num_vocab_tokens": 256, "default_vocab_size": VOCAB,
                   "default_num_special_tokens": NUM_SPECIAL, "version": version},
        "vocab": vocab,
        "special_tokens": special,
        "audio": {"sampling_rate": 16000, "frame_rate": 12.5,
                  "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
                  "chunk_length_s": 30.0, "transcription_format": "instruct"},
    }


def build_tiny_voxtral(folder: Path, *, tokenizer_version: str = "v7") -> Path:
    """Write config.json, model.safetensors, processor_config.json and tekken.json to ``folder``."""
    import torch
    from transformers import (MistralCommonBackend, VoxtralConfig, VoxtralForConditionalGeneration, VoxtralProcessor,
                              WhisperFeatureExtractor)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tekken.json").write_text(json.dumps(tekken_json(tokenizer_version)))
    processor = VoxtralProcessor(WhisperFeatureExtractor(feature_size=128),
                                 MistralCommonBackend.from_pretrained(str(folder)))
    processor.save_pretrained(folder)
    config = VoxtralConfig(
        audio_config={"hidden_size": 16, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "num_mel_bins": 128, "max_source_positions": 1500},
        text_config={"vocab_size": VOCAB, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
                     "max_position_embeddings": 32768},
        audio_token_id=AUDIO_TOKEN_ID,
    )
    torch.manual_seed(0)
    VoxtralForConditionalGeneration(config).eval().save_pretrained(folder)
    return folder
