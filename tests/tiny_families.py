"""Tiny randomly initialised checkpoints of the newer audio-LLM families (Audio Flamingo 3, Qwen3-Omni, Gemma 3n,
Phi-4-multimodal, Granite Speech), built offline from their transformers configs: hidden sizes of 16-32, one
layer, a byte-level tokenizer with the family's special tokens. The weights are random, so their text is noise:
tests assert on structure (windows, calls, token counts), never on words. Nothing here touches a model hub.
"""

from __future__ import annotations

from pathlib import Path

from tiny_audio_llms import _byte_level_tokenizer

#: a ChatML template like the Qwen family's; an audio part renders as ``audio_marker``
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'audio' %}AUDIO_MARKER{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _chatml(audio_marker: str) -> str:
    return CHATML.replace("AUDIO_MARKER", audio_marker)


def build_tiny_audioflamingo3(folder: str | Path, *, seed: int = 0) -> Path:
    """AF3: a 1-layer Whisper-style encoder (d 16) + 1-layer Qwen2 (hidden 32); 128-bin Whisper features, 30 s
    chunks, ``<sound>`` placeholder; a ChatML chat template (AF3's backbone is Qwen2.5)."""
    import torch
    from transformers import (AudioFlamingo3Config, AudioFlamingo3ForConditionalGeneration, AudioFlamingo3Processor,
                              WhisperFeatureExtractor)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>")
    tokenizer = _byte_level_tokenizer(specials)
    processor = AudioFlamingo3Processor(WhisperFeatureExtractor(feature_size=128, return_attention_mask=True),
                                        tokenizer, chat_template=_chatml("<sound>"))
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    config = AudioFlamingo3Config(
        audio_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "num_mel_bins": 128, "max_source_positions": 1500},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "max_position_embeddings": 32768, "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True},
        audio_token_id=ids["<sound>"],
    )
    torch.manual_seed(seed)
    model = AudioFlamingo3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_qwen3_omni(folder: str | Path, *, seed: int = 0) -> Path:
    """A Qwen3-Omni thinker (model_type ``qwen3_omni_moe_thinker``): 1-layer audio encoder (d 32), 1-layer vision
    tower (never used), 1-layer MoE text model (4 experts, 2 per token, hidden 32), Qwen3-Omni's audio markers,
    Whisper features (128 bins), the Pillow image processor and the audio-only video stand-in where torchvision is
    missing (the saved files name the real classes)."""
    import json

    import torch
    from transformers import (GenerationConfig, Qwen2VLImageProcessorPil, Qwen3OmniMoeThinkerConfig,
                              Qwen3OmniMoeThinkerForConditionalGeneration, WhisperFeatureExtractor)

    from tiny_qwen_omni import _CORPUS
    from workbench.audio_llm.families.qwen2_5_omni import audio_only_processor

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    named = {"audio_token": "<|audio_pad|>", "audio_bos_token": "<|audio_start|>",
             "audio_eos_token": "<|audio_end|>", "image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
             "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"}
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values()]
    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(_CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        padding_side="left", **named)
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in named.items()}
    im_end, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = Qwen3OmniMoeThinkerConfig(
        audio_config={"num_mel_bins": 128, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
                      "d_model": 32, "output_dim": 32, "downsample_hidden_size": 16, "max_source_positions": 1500},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
                       "deepstack_visual_indexes": [0], "num_position_embeddings": 64},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
                     "max_position_embeddings": 4096, "moe_intermediate_size": 16, "num_experts": 4,
                     "num_experts_per_tok": 2,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3],
                                         "interleaved": True}},
        audio_token_id=ids["audio_token"], image_token_id=ids["image_token"], video_token_id=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        # as the released thinker_config has them (the model's rope index reads them)
        audio_end_token_id=ids["audio_eos_token"], vision_start_token_id=ids["vision_bos_token"],
        vision_end_token_id=ids["vision_eos_token"],
    )
    torch.manual_seed(seed)
    model = Qwen3OmniMoeThinkerForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=[im_end, pad], pad_token_id=pad)
    model.save_pretrained(folder)

    template = _chatml("<|audio_start|><|audio_pad|><|audio_end|>")
    feature_extractor = WhisperFeatureExtractor(feature_size=128, return_attention_mask=True)
    image_processor = Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, temporal_patch_size=2)
    processor = audio_only_processor(image_processor, feature_extractor, tokenizer, "Qwen3OmniMoeProcessor",
                                     chat_template=template)
    processor.save_pretrained(folder)
    config_file = folder / "processor_config.json"
    saved = json.loads(config_file.read_text())
    saved["processor_class"] = "Qwen3OmniMoeProcessor"
    saved["video_processor"] = {"video_processor_type": "Qwen2VLVideoProcessor", "patch_size": 16, "merge_size": 2,
                                "temporal_patch_size": 2}
    config_file.write_text(json.dumps(saved, indent=2))
    tokenizer_file = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(tokenizer_file.read_text())
    tokenizer_config["processor_class"] = "Qwen3OmniMoeProcessor"
    tokenizer_file.write_text(json.dumps(tokenizer_config, indent=2))
    return folder


#: Phi-4-mini's chat format; an audio part renders as the audio placeholder
PHI4_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'audio' %}<|audio|>{% elif c['type'] == 'image' %}<|image|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_phi4_multimodal(folder: str | Path, *, seed: int = 0) -> Path:
    """Phi-4-multimodal: 1-block Conformer audio encoder (hidden 32), 1-layer vision encoder (never used), 1-layer
    Phi-3-style LM (hidden 32); 80-bin Phi-4 audio features; the audio-only image processor (no torchvision); no
    speech LoRA (the family loads one where the checkpoint has ``speech-lora/``)."""
    import json

    import torch
    from transformers import Phi4MultimodalConfig, Phi4MultimodalFeatureExtractor, Phi4MultimodalForCausalLM

    from workbench.audio_llm.families.phi4_multimodal import audio_only_processor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|image|>", "<|audio|>")
    base = _byte_level_tokenizer(specials)
    base.save_pretrained(folder)
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder, eos_token="<|end|>", pad_token="<|endoftext|>",
                                                        extra_special_tokens={"image_token": "<|image|>",
                                                                              "audio_token": "<|audio|>"})
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    config = Phi4MultimodalConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=4096, original_max_position_embeddings=4096,
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|end|>"], pad_token_id=ids["<|endoftext|>"],
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 28, "crop_size": 28, "patch_size": 14, "image_token_id": ids["<|image|>"]},
        audio_config={"hidden_size": 32, "intermediate_size": 64, "num_blocks": 1, "num_attention_heads": 2,
                      "ext_pw_out_channel": 32, "depthwise_separable_out_channel": 32, "nemo_conv_channels": 32,
                      "input_size": 80, "time_reduction": 8, "audio_token_id": ids["<|audio|>"]},
    )
    torch.manual_seed(seed)
    model = Phi4MultimodalForCausalLM(config).eval()
    model.generation_config.eos_token_id = ids["<|end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor = audio_only_processor(Phi4MultimodalFeatureExtractor(), tokenizer, chat_template=PHI4_TEMPLATE)
    processor.save_pretrained(folder)
    config_file = folder / "processor_config.json"
    saved = json.loads(config_file.read_text())
    saved["processor_class"] = "Phi4MultimodalProcessor"
    saved.pop("image_processor", None)
    config_file.write_text(json.dumps(saved, indent=2))
    return folder


#: Gemma's chat format: no system role (a system message is folded into the first user turn, as Gemma's own
#: template does); an audio part renders as the audio soft token, which the processor expands
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% set first = namespace(prefix='') %}"
    "{% if messages[0]['role'] == 'system' %}{% set first.prefix = messages[0]['content'][0]['text'] + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set loop_messages = messages %}{% endif %}"
    "{% for m in loop_messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{% if loop.first %}{{ first.prefix }}{% endif %}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'audio' %}<audio_soft_token>{% elif c['type'] == 'image' %}<image_soft_token>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def build_tiny_gemma3n(folder: str | Path, *, seed: int = 0) -> Path:
    """Gemma 3n with Gemma's vocabulary layout scaled down: text ids below T, then 128 vision ids (``<end_of_image>``
    = T, ``<image_soft_token>`` = T+1), then 128 audio ids (``<end_of_audio>`` = T+128, ``<audio_soft_token>`` =
    T+129); a 1-layer conformer audio encoder (hidden 32), a 1-layer text model (hidden 32); saved without the
    timm vision tower when timm is missing (the family loads it the same way)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (Gemma3nAudioFeatureExtractor, Gemma3nConfig, Gemma3nProcessor, PreTrainedTokenizerFast,
                              SiglipImageProcessorPil)

    from workbench.audio_llm.families.gemma3n import model_class

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    text_specials = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                     "<start_of_audio>"]
    for token in text_specials:
        vocab[token] = len(vocab)
    text_vocab = len(vocab)
    for i in range(256):  # the vision and audio id ranges
        vocab[f"<mm_{i}>"] = len(vocab)
    named = {"<end_of_image>": text_vocab, "<image_soft_token>": text_vocab + 1,
             "<end_of_audio>": text_vocab + 128, "<audio_soft_token>": text_vocab + 129}
    inverse = {v: k for k, v in vocab.items()}
    for token, i in named.items():
        del vocab[inverse[i]]
        vocab[token] = i
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(text_specials + list(named))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
                              "eoi_token": "<end_of_image>", "audio_token": "<audio_soft_token>",
                              "boa_token": "<start_of_audio>", "eoa_token": "<end_of_audio>"},
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in [*text_specials, *named]}
    config = Gemma3nConfig(
        text_config={"vocab_size": len(vocab), "vocab_size_per_layer_input": text_vocab, "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "head_dim": 16, "hidden_size_per_layer_input": 8,
                     "num_kv_shared_layers": 0, "laurel_rank": 4, "sliding_window": 64,
                     "layer_types": ["full_attention"], "activation_sparsity_pattern": [0.0],
                     "max_position_embeddings": 4096, "pad_token_id": ids["<pad>"], "eos_token_id": ids["<eos>"],
                     "bos_token_id": ids["<bos>"]},
        vision_config={"hidden_size": 32, "vocab_size": 128, "vocab_offset": text_vocab},
        audio_config={"hidden_size": 32, "input_feat_size": 128, "conf_num_attention_heads": 2,
                      "conf_num_hidden_layers": 1, "sscp_conv_channel_size": [8, 4], "vocab_size": 128,
                      "vocab_offset": text_vocab + 128},
        boi_token_id=ids["<start_of_image>"], eoi_token_id=ids["<end_of_image>"],
        image_token_id=ids["<image_soft_token>"], boa_token_id=ids["<start_of_audio>"],
        eoa_token_id=ids["<end_of_audio>"], audio_token_id=ids["<audio_soft_token>"],
    )
    torch.manual_seed(seed)
    model = model_class()(config).eval()
    model.generation_config.eos_token_id = [ids["<eos>"], ids["<end_of_turn>"]]
    model.generation_config.pad_token_id = ids["<pad>"]
    model.save_pretrained(folder)
    processor = Gemma3nProcessor(Gemma3nAudioFeatureExtractor(), SiglipImageProcessorPil(), tokenizer,
                                 chat_template=GEMMA_TEMPLATE)
    processor.save_pretrained(folder)
    return folder


def torch_melspectrogram(sample_rate: int, n_fft: int, win_length: int, hop_length: int, n_mels: int):
    """``torchaudio.transforms.MelSpectrogram`` with its defaults (Hann window, centred reflect-padded STFT,
    power 2, HTK mel scale, no filter normalisation), in plain torch — a *test double* for machines without
    torchaudio, used only by the Granite Speech test (the family itself requires the real torchaudio)."""
    import torch
    from transformers.audio_utils import mel_filter_bank

    filters = torch.tensor(mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels,
                                           min_frequency=0.0, max_frequency=sample_rate / 2,
                                           sampling_rate=sample_rate, norm=None, mel_scale="htk"),
                           dtype=torch.float32)

    class MelSpectrogram(torch.nn.Module):
        def forward(self, audio):
            window = torch.hann_window(win_length, device=audio.device)
            spec = torch.stft(audio, n_fft, hop_length=hop_length, win_length=win_length, window=window,
                              center=True, pad_mode="reflect", return_complex=True).abs() ** 2
            return torch.matmul(spec.transpose(-1, -2), filters.to(audio.device)).transpose(-1, -2)

    return MelSpectrogram()


def build_tiny_granite_speech(folder: str | Path, *, seed: int = 0) -> Path:
    """Granite Speech: 1-layer Conformer encoder (hidden 32, 160-dim stacked mel input), 1-layer Q-Former projector,
    1-layer Granite LM (hidden 32), ``<|audio|>`` placeholder, a ChatML-like Granite template, no LoRA adapter
    (``has_lora_adapter`` false). The feature extractor needs torchaudio at construction: call this with the
    feature extractor's torchaudio available (or the test double patched in)."""
    import torch
    from transformers import (GraniteSpeechConfig, GraniteSpeechFeatureExtractor,
                              GraniteSpeechForConditionalGeneration, GraniteSpeechProcessor)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ("<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>", "<|audio|>")
    tokenizer = _byte_level_tokenizer(specials)
    tokenizer.eos_token, tokenizer.pad_token = "<|end_of_text|>", "<|end_of_text|>"
    tokenizer.chat_template = (
        "{% for m in messages %}<|start_of_role|>{{ m['role'] }}<|end_of_role|>{{ m['content'] }}<|end_of_text|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|start_of_role|>assistant<|end_of_role|>{% endif %}")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    config = GraniteSpeechConfig(
        text_config={"model_type": "granite", "vocab_size": len(tokenizer), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "max_position_embeddings": 4096,
                     "eos_token_id": ids["<|end_of_text|>"], "pad_token_id": ids["<|end_of_text|>"],
                     "bos_token_id": ids["<|end_of_text|>"]},
        encoder_config={"input_dim": 160, "num_layers": 1, "hidden_dim": 32, "feedforward_mult": 2, "num_heads": 2,
                        "dim_head": 16, "output_dim": 8, "context_size": 200},
        projector_config={"model_type": "blip_2_qformer", "hidden_size": 32, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "intermediate_size": 64, "encoder_hidden_size": 32,
                          "cross_attention_frequency": 1},
        audio_token_index=ids["<|audio|>"], has_lora_adapter=False,
    )
    torch.manual_seed(seed)
    model = GraniteSpeechForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|end_of_text|>"]
    model.generation_config.pad_token_id = ids["<|end_of_text|>"]
    model.save_pretrained(folder)
    GraniteSpeechProcessor(GraniteSpeechFeatureExtractor(), tokenizer).save_pretrained(folder)
    return folder
