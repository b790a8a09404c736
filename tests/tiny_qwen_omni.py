"""A tiny, randomly initialised Qwen2.5-Omni thinker saved like a real checkpoint, for tests.

Only the structure is real: the transformers classes, the processor with the real feature-extractor settings
(128 mel bins, 300 s ceiling), the real chat template and special tokens. The weights are random, so what it
generates is noise: tests check shapes and plumbing, never the text.
"""

from __future__ import annotations

import json
from pathlib import Path

#: the chat template Qwen2.5-Omni ships (chat_template.json), audio parts → <|audio_bos|><|AUDIO|><|audio_eos|>
CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}{% if add_audio_id %}Audio {{ audio_count.value }}: "
    "{% endif %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: the named multimodal tokens the processor reads off the tokenizer (as in the real tokenizer_config.json)
NAMED_TOKENS = {
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *NAMED_TOKENS.values()]

_CORPUS = [
    "You are a careful speech transcription assistant.",
    "Transcribe the audio verbatim, in the language spoken. Output only the transcript.",
    "Start a new paragraph at every change of speaker and open it with the speaker's label.",
    "Speaker 1: hello, how are you? Speaker 2: fine, thanks. system user assistant",
]


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left",
        **NAMED_TOKENS,
    )


def build_tiny_qwen2_5_omni(folder: Path) -> Path:
    """Save a tiny thinker (model_type ``qwen2_5_omni_thinker``) and its processor to ``folder``."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        Qwen2VLImageProcessorPil,
        WhisperFeatureExtractor,
    )

    from workbench.audio_llm.families.qwen2_5_omni import audio_only_processor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in NAMED_TOKENS.items()}
    im_end, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")

    config = Qwen2_5OmniThinkerConfig(
        audio_config={
            "num_mel_bins": 128, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
            "d_model": 32, "output_dim": 32, "n_window": 100, "max_source_positions": 1500,
        },
        vision_config={
            "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
            "fullatt_block_indexes": [0], "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        },
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 4096,
            # head_dim 16 → 8 rotary frequencies, split over (time, height, width)
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "pad_token_id": pad, "eos_token_id": im_end,
        },
        audio_token_index=ids["audio_token"],
        image_token_index=ids["image_token"],
        video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"],
        vision_end_token_id=ids["vision_eos_token"],
    )
    torch.manual_seed(0)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=[im_end, pad], pad_token_id=pad)
    model.save_pretrained(folder)

    # the real checkpoint's preprocessor_config.json: Whisper features, 128 mel bins, 300 s ceiling
    feature_extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400,
                                                chunk_length=300, padding_side="right", return_attention_mask=True)
    image_processor = Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056, patch_size=14, merge_size=2,
                                               temporal_patch_size=2)
    processor = audio_only_processor(image_processor, feature_extractor, tokenizer, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(folder)
    # saved without torchvision, the files name the audio-only stand-ins: name the real classes, as a
    # checkpoint does (the video processor then loads for real wherever torchvision works)
    config_file = folder / "processor_config.json"
    saved = json.loads(config_file.read_text())
    saved["processor_class"] = "Qwen2_5OmniProcessor"
    saved["video_processor"] = {"video_processor_type": "Qwen2VLVideoProcessor", "patch_size": 14, "merge_size": 2,
                                "temporal_patch_size": 2, "min_pixels": 3136, "max_pixels": 12845056}
    config_file.write_text(json.dumps(saved, indent=2))
    tokenizer_file = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(tokenizer_file.read_text())
    tokenizer_config["processor_class"] = "Qwen2_5OmniProcessor"
    tokenizer_file.write_text(json.dumps(tokenizer_config, indent=2))
    return folder


def as_hub_checkpoint(thinker_folder: Path, folder: Path) -> Path:
    """Rewrite a tiny thinker folder in the layout of the Qwen/Qwen2.5-Omni-* repositories: config.json of
    model_type ``qwen2_5_omni`` with ``thinker_config`` inside, weights prefixed ``thinker.``, one flat
    preprocessor_config.json (feature extractor and image processor together) and chat_template.json."""
    import shutil

    from safetensors.torch import load_file, save_file

    thinker_folder, folder = Path(thinker_folder), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(thinker_folder / name, folder / name)
    weights = load_file(str(thinker_folder / "model.safetensors"))
    save_file({f"thinker.{k}": v for k, v in weights.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    thinker = json.loads((thinker_folder / "config.json").read_text())
    full = {"architectures": ["Qwen2_5OmniModel"], "model_type": "qwen2_5_omni", "enable_audio_output": False,
            "thinker_config": {k: v for k, v in thinker.items() if k != "architectures"}}
    (folder / "config.json").write_text(json.dumps(full, indent=2))
    saved = json.loads((thinker_folder / "processor_config.json").read_text())
    image = {k: v for k, v in saved["image_processor"].items() if k != "size"}
    flat = {**saved["feature_extractor"], **image, "min_pixels": 3136, "max_pixels": 12845056,
            "processor_class": "Qwen2_5OmniProcessor"}
    (folder / "preprocessor_config.json").write_text(json.dumps(flat, indent=2))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2))
    return folder
