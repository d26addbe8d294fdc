"""Seed-TTS-eval's SIM model (WavLM + ECAPA-TDNN) loads a checkpoint in UniSpeech's layout: tested on a
tiny random model saved with the published file's key names (written out here, fairseq style, from
a reference list independent of the loader's mapping). The full-size comparison against UniSpeech's
own code is `benchmarks/fidelity.py --against unispeech`."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from uniaudio.benchmark.nets.ecapa_wavlm import WavLMEcapa

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, feat_extract_norm="layer",
            conv_bias=True, do_stable_layer_norm=True, num_buckets=16, max_bucket_distance=50,
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4, conv_dim=(16,) * 7,
            conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2))

# transformers name -> the name in UniSpeech's wavlm_large_finetune.pth (fairseq WavLM under feature_extract.model.)
TO_FAIRSEQ = [
    (r"^feature_extract\.feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extract.model.feature_extractor.conv_layers.\1.0."),
    (r"^feature_extract\.feature_extractor\.conv_layers\.(\d+)\.layer_norm\.", r"feature_extract.model.feature_extractor.conv_layers.\1.2.1."),
    (r"^feature_extract\.feature_projection\.layer_norm\.", "feature_extract.model.layer_norm."),
    (r"^feature_extract\.feature_projection\.projection\.", "feature_extract.model.post_extract_proj."),
    (r"^feature_extract\.masked_spec_embed$", "feature_extract.model.mask_emb"),
    (r"^feature_extract\.encoder\.pos_conv_embed\.conv\.bias$", "feature_extract.model.encoder.pos_conv.0.bias"),
    (r"^feature_extract\.encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "feature_extract.model.encoder.pos_conv.0.weight_g"),
    (r"^feature_extract\.encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "feature_extract.model.encoder.pos_conv.0.weight_v"),
    (r"^feature_extract\.encoder\.layer_norm\.", "feature_extract.model.encoder.layer_norm."),
    (r"^feature_extract\.encoder\.layers\.(\d+)\.attention\.gru_rel_pos_linear\.", r"feature_extract.model.encoder.layers.\1.self_attn.grep_linear."),
    (r"^feature_extract\.encoder\.layers\.(\d+)\.attention\.gru_rel_pos_const$", r"feature_extract.model.encoder.layers.\1.self_attn.grep_a"),
    (r"^feature_extract\.encoder\.layers\.(\d+)\.attention\.rel_attn_embed\.", r"feature_extract.model.encoder.layers.\1.self_attn.relative_attention_bias."),
    (r"^feature_extract\.encoder\.layers\.(\d+)\.attention\.", r"feature_extract.model.encoder.layers.\1.self_attn."),
    (r"^feature_extract\.encoder\.layers\.(\d+)\.layer_norm\.", r"feature_extract.model.encoder.layers.\1.self_attn_layer_norm."),
    (r"^feature_extract\.encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"feature_extract.model.encoder.layers.\1.fc1."),
    (r"^feature_extract\.encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"feature_extract.model.encoder.layers.\1.fc2."),
    (r"^feature_extract\.encoder\.layers\.(\d+)\.final_layer_norm\.", r"feature_extract.model.encoder.layers.\1.final_layer_norm."),
]


def unispeech_layout(model: WavLMEcapa) -> dict:
    out = {}
    for k, v in model.state_dict().items():
        for pattern, repl in TO_FAIRSEQ:
            k2 = re.sub(pattern, repl, k)
            if k2 != k:
                k = k2
                break
        else:
            assert not k.startswith("feature_extract."), f"no fairseq name for {k}"
        out[k] = v.clone()
    return out


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = WavLMEcapa(TINY).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_var.uniform_(0.5, 2.0)
        model.feature_weight.normal_()
    state = unispeech_layout(model)
    state["feature_extract.model.label_embs_concat"] = torch.zeros(3, 4)  # a pre-training head: ignored
    path = tmp_path / "wavlm_large_finetune.pth"
    torch.save({"model": state, "wavlm_config": TINY}, path)
    return path, model, state


def test_the_unispeech_layout_loads_into_the_same_model_and_scores_sim(tiny_checkpoint, ljspeech_mini):
    from uniaudio import audio
    from uniaudio.benchmark import metrics as M

    path, model, _ = tiny_checkpoint
    sim = M.get("sim", backend="wavlm-large-ecapa", model=str(path))
    assert sim.encoder.ignored == ["feature_extract.model.label_embs_concat"]
    for k, v in model.state_dict().items():
        assert torch.equal(sim.encoder.net.state_dict()[k], v), k
    wavs = [audio.load(p, 16000)[0] for p in sorted((ljspeech_mini / "wavs").glob("*.wav"))[:2]]
    with torch.no_grad():
        want = model(torch.from_numpy(wavs[0])[None])[0].double().numpy()
    np.testing.assert_allclose(sim.encoder.embed(wavs[:1])[0], want, rtol=1e-5, atol=1e-6)
    (same,), (other,) = (sim.score([M.Sample("a", prompt_audio=wavs[0], hyp_audio=w)]) for w in wavs)
    assert same["sim"] == pytest.approx(1.0, abs=1e-6) and -1 <= other["sim"] < 1
    card = sim.card()
    assert card["model"] == "wavlm-large-ecapa-tdnn" and card["test_model"] is True and "NOT comparable" in card["warning"]


def test_a_checkpoint_of_another_shape_or_with_holes_is_refused_by_name(tiny_checkpoint, tmp_path):
    from uniaudio.benchmark.metrics.base import MetricError
    from uniaudio.benchmark.metrics.speaker import _WavLMLargeEcapa

    path, _, state = tiny_checkpoint
    holes = dict(state)
    del holes["layer3.SE_Connect.linear1.weight"]
    torch.save({"model": holes, "wavlm_config": TINY}, tmp_path / "holes.pth")
    with pytest.raises(ValueError, match="lacks 1 weights.*layer3.SE_Connect.linear1.weight"):
        _WavLMLargeEcapa(str(tmp_path / "holes.pth"))
    torch.save({"model": dict(state, **{"classifier.weight": torch.zeros(2)}), "wavlm_config": TINY}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="'classifier.weight'.*no place"):
        _WavLMLargeEcapa(str(tmp_path / "x.pth"))
    torch.save({"model": state}, tmp_path / "large.pth")  # no config: WavLM-large, and the tiny weights do not fit
    with pytest.raises(ValueError, match="has shape .* another model size"):
        _WavLMLargeEcapa(str(tmp_path / "large.pth"))
    torch.save({"model": state, "opt": object.__new__(_WavLMLargeEcapa)}, tmp_path / "pickled.pth")
    with pytest.raises(MetricError, match="weights-only"):
        _WavLMLargeEcapa(str(tmp_path / "pickled.pth"))


def test_offline_the_preset_model_is_missing_with_its_fetch_command(tmp_path, monkeypatch):
    from uniaudio.models import ModelNotFound
    from uniaudio.benchmark import metrics as M

    monkeypatch.setenv("UNIAUDIO_MODELS", str(tmp_path))
    with pytest.raises(ModelNotFound, match="gdown 1-aE1NfzpRCLxA4GUxX9ITI3F9LlbtEGP -O .*wavlm_large_finetune.pth"):
        M.get("sim", backend="wavlm-large-ecapa")
