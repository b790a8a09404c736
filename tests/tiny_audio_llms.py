"""Tiny randomly initialised audio-LLMs, built locally, for running the real transformers code path in tests.

The weights are random, so what such a model writes is noise: tests assert on structure (types, token
counts, windows, timings), never on the text. Nothing here touches a model hub.
"""

from __future__ import annotations

from pathlib import Path

#: ChatML specials and Qwen2-Audio's audio markers; ids follow the byte-level base vocabulary
QWEN2_AUDIO_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")


def _byte_level_tokenizer(specials: tuple[str, ...]):
    """A byte-level BPE with the 256 byte symbols and no merges (every text encodes; ~262 ids), wrapped
    as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for token in specials:
        vocab[token] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(list(specials))
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in specials if t not in ("<|im_end|>", "<|endoftext|>")],
    )


def build_tiny_qwen2_audio(folder: str | Path, *, seed: int = 0) -> Path:
    """A tiny Qwen2-Audio (Whisper-style encoder + Qwen2 LM, hidden 32, one layer each), its processor
    (128-bin Whisper features, byte-level tokenizer, Qwen2-Audio's ChatML template) saved to ``folder``.
    Deterministic for a given seed; a few hundred kB on disk."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _byte_level_tokenizer(QWEN2_AUDIO_SPECIALS)
    processor = Qwen2AudioProcessor(WhisperFeatureExtractor(feature_size=128), tokenizer)
    # the real template (what Qwen2-Audio-7B-Instruct ships): ChatML, an audio part renders as
    # "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    processor.chat_template = processor.default_chat_template
    tokenizer.chat_template = processor.default_chat_template
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN2_AUDIO_SPECIALS}
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder", "d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64, "num_mel_bins": 128, "max_source_positions": 1500,
        },
        text_config={
            "model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "max_position_embeddings": 2048, "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True,
        },
        audio_token_index=ids["<|AUDIO|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
