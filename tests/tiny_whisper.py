"""Tiny Whisper models built here (the hubs are closed), for the real loading and decoding code:
a transformers checkpoint, and a CTranslate2 conversion of a multilingual one that faster-whisper
loads as it loads large-v3.

The multilingual tokenizer is Whisper's own: openai-whisper ships its byte-pair ranks
(`assets/multilingual.tiktoken`) and its special tokens are rebuilt in their published order, so
`<|zh|>` has the id a real multilingual Whisper gives it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

EOT = "<|endoftext|>"


def multilingual_tokenizer():
    """(HF tokenizers.Tokenizer, {special token: id}) of multilingual Whisper (99 languages)."""
    import whisper.tokenizer as wt
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter

    enc = wt.get_encoding("multilingual", num_languages=99)
    specials = sorted(enc._special_tokens, key=enc._special_tokens.get)
    tok = TikTokenConverter(vocab_file=os.path.join(os.path.dirname(wt.__file__), "assets", "multilingual.tiktoken"),
                            pattern=enc._pat_str).converted()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    ids = dict(enc._special_tokens)
    assert all(tok.token_to_id(s) == i for s, i in ids.items())  # the published ids, or the test is moot
    return tok, ids


def _config(vocab_size: int, ids: dict, max_positions: int):
    from transformers import WhisperConfig

    return WhisperConfig(vocab_size=vocab_size, d_model=16, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                         num_mel_bins=80, max_target_positions=max_positions,
                         decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids[EOT],
                         pad_token_id=ids[EOT], bos_token_id=ids[EOT])


def save_tiny_whisper(path, multilingual: bool):
    """A random transformers Whisper with the real (English) Whisper tokenizer packaged with the
    offline tiny.en; `multilingual` marks its generation config so (languages en and zh)."""
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor, \
        WhisperTokenizerFast

    from uniaudio.transcribers import packaged_tiny_en

    tok = WhisperTokenizerFast(tokenizer_file=f"{packaged_tiny_en()}/tokenizer.json", bos_token=EOT, eos_token=EOT,
                               unk_token=EOT, pad_token=EOT)
    names = ["<|startoftranscript|>", "<|notimestamps|>", "<|en|>", "<|zh|>", "<|transcribe|>", EOT]
    ids = dict(zip(names, tok.convert_tokens_to_ids(names)))
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(_config(len(tok), ids, 64))
    gc = model.generation_config
    gc.max_length, gc.no_timestamps_token_id, gc.is_multilingual = 12, ids["<|notimestamps|>"], multilingual
    gc._from_model_config = False  # else loading rebuilds it from the model config and drops the fields below
    if multilingual:
        gc.lang_to_id = {"<|en|>": ids["<|en|>"], "<|zh|>": ids["<|zh|>"]}
        gc.task_to_id = {"transcribe": ids["<|transcribe|>"]}
    model.save_pretrained(path)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tok).save_pretrained(path)
    return path


def save_tiny_multilingual_ct2(path, language: str = "zh") -> Path:
    """A multilingual Whisper in CTranslate2's format (what faster-whisper loads), whose language
    identification picks `language` for any audio (probability ~0.97): its decoder's output is one
    fixed vector, and the tied output embedding scores that language's token above the other 98.
    Decoding ends at once (end of text scores highest), so its transcripts are empty."""
    import ctranslate2
    import torch
    import whisper.tokenizer as wt
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor, \
        WhisperTokenizerFast

    tok, ids = multilingual_tokenizer()
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(_config(tok.get_vocab_size(), ids, 448))
    with torch.no_grad():
        dec = model.model.decoder
        dec.layer_norm.weight.zero_()  # every position's output: the bias, a unit vector on dim 0
        dec.layer_norm.bias.zero_()
        dec.layer_norm.bias[0] = 1.0
        emb = dec.embed_tokens.weight  # tied with the output projection: logit(t) = emb[t, 0]
        emb[:, 0] = 0.0
        emb[ids[EOT], 0] = 12.0
        emb[ids[f"<|{language}|>"], 0] = 8.0
    gc = model.generation_config
    gc.is_multilingual, gc._from_model_config = True, False
    gc.lang_to_id = {f"<|{c}|>": ids[f"<|{c}|>"] for c in list(wt.LANGUAGES)[:99]}  # CTranslate2's language ids
    gc.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    gc.no_timestamps_token_id = ids["<|notimestamps|>"]
    hf = Path(path).with_name(Path(path).name + ".hf")
    model.save_pretrained(hf)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80),
                     WhisperTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT,
                                          pad_token=EOT)).save_pretrained(hf)
    ctranslate2.converters.TransformersConverter(str(hf)).convert(str(path))
    shutil.copy(hf / "tokenizer.json", Path(path) / "tokenizer.json")  # faster-whisper reads it beside model.bin
    shutil.rmtree(hf)
    return Path(path)
