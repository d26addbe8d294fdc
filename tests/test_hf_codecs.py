"""The real transformers loading/encoding code for EnCodec, DAC and Mimi, run on tiny
random-weight models saved with save_pretrained (hubs are closed here)."""

import numpy as np
import pytest

from uniaudio.models import ModelNotFound
from uniaudio.tokenize import TokenizerError, get

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_codecs(tmp_path_factory):
    from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel, MimiConfig, MimiModel

    d = tmp_path_factory.mktemp("codecs")
    torch.manual_seed(0)
    EncodecModel(EncodecConfig(num_filters=8, hidden_size=16, codebook_dim=16, num_lstm_layers=1,
                               codebook_size=64)).save_pretrained(d / "encodec")
    DacModel(DacConfig(encoder_hidden_size=8, decoder_hidden_size=16, hidden_size=16, codebook_size=64,
                       codebook_dim=4, n_codebooks=4, downsampling_ratios=[2, 4, 8], upsampling_ratios=[8, 4, 2],
                       hop_length=64)).save_pretrained(d / "dac")
    MimiModel(MimiConfig(hidden_size=32, num_filters=8, codebook_dim=16, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, head_dim=16, intermediate_size=64, codebook_size=64, num_quantizers=4,
                         num_semantic_quantizers=1, vector_quantization_hidden_dimension=16,
                         upsample_groups=32)).save_pretrained(d / "mimi")
    return d


@pytest.mark.parametrize("name,n_q", [("encodec", 2), ("dac", 4), ("mimi", 3)])
def test_round_trip_lengths_and_ranges(tiny_codecs, name, n_q):
    tok = get(name, model=str(tiny_codecs / name), n_codebooks=n_q)
    rng = np.random.default_rng(0)
    for sr in (16000, 22050, 24000):
        for seconds in (0.3, 1.0):
            wav = rng.uniform(-0.3, 0.3, int(seconds * sr)).astype(np.float32)
            codes = tok.encode(wav, sr)
            n_native = round(len(wav) * tok.sample_rate / sr)
            assert codes.shape == (n_q, tok.frames_for(n_native))
            assert codes.min() >= 0 and codes.max() < tok.codebook_size
            out = tok.decode(codes)
            assert abs(len(out) - n_native) <= tok.hop  # within one frame
            assert np.isfinite(out).all()


def test_batched_equals_single(tiny_codecs):
    tok = get("dac", model=str(tiny_codecs / "dac"))
    rng = np.random.default_rng(1)
    wavs = [rng.uniform(-0.3, 0.3, n).astype(np.float32) for n in (16000, 5000, 9000)]
    batched = tok.encode_batch(wavs, 16000)
    for w, b in zip(wavs, batched):
        single = tok.encode(w, 16000)
        assert b.shape == single.shape
        # zero padding reaches the last frames through the conv receptive field; nothing else differs
        np.testing.assert_array_equal(b[:, :-2], single[:, :-2])


def test_bad_input_and_codes(tiny_codecs):
    tok = get("dac", model=str(tiny_codecs / "dac"))
    with pytest.raises(TokenizerError, match="non-empty"):
        tok.encode(np.zeros(0, np.float32), 16000)
    with pytest.raises(TokenizerError, match="NaN"):
        tok.encode(np.array([0.0, np.nan], np.float32), 16000)
    with pytest.raises(TokenizerError, match="out of range"):
        tok.decode(np.full((4, 3), 64))
    with pytest.raises(TokenizerError, match=r"\[4, frames\]"):
        tok.decode(np.zeros((2, 3), np.int64))
    with pytest.raises(TokenizerError, match="n_codebooks"):
        get("dac", model=str(tiny_codecs / "dac"), n_codebooks=9)


def test_missing_model_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("UNIAUDIO_MODELS", str(tmp_path))
    with pytest.raises(ModelNotFound) as ei:
        get("encodec", model="facebook/encodec_24khz")
    msg = str(ei.value)
    assert "facebook/encodec_24khz" in msg and "hf download" in msg and str(tmp_path) in msg
