"""UTMOS22 strong: our transformers-based model loads a checkpoint in SpeechMOS's key layout
and equals an independent functional implementation of the fairseq architecture."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from uniaudio.benchmark import metrics as M

H, HEADS, FFN, CONV, LAYERS, POS_K, POS_G = 24, 12, 48, 8, 2, 16, 4
KERNELS = (10, 3, 3, 3, 3, 2, 2)


def tiny_speechmos_state(seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.3):
        return torch.randn(*shape, generator=g) * scale

    sd, cin = {}, 1
    for i, k in enumerate(KERNELS):
        sd[f"wav2vec2.feature_extractor.conv_layers.{i}.0.weight"] = r(CONV, cin, k, scale=1 / math.sqrt(cin * k))
        cin = CONV
    sd["wav2vec2.feature_extractor.conv_layers.0.2.weight"] = 1 + r(CONV, scale=0.1)
    sd["wav2vec2.feature_extractor.conv_layers.0.2.bias"] = r(CONV, scale=0.1)
    sd["wav2vec2.layer_norm.weight"], sd["wav2vec2.layer_norm.bias"] = 1 + r(CONV, scale=0.1), r(CONV, scale=0.1)
    sd["wav2vec2.post_extract_proj.weight"], sd["wav2vec2.post_extract_proj.bias"] = r(H, CONV), r(H, scale=0.1)
    sd["wav2vec2.mask_emb"] = r(H)
    sd["wav2vec2.encoder.pos_conv.0.bias"] = r(H, scale=0.1)
    sd["wav2vec2.encoder.pos_conv.0.weight_g"] = 1 + r(1, 1, POS_K, scale=0.1)
    sd["wav2vec2.encoder.pos_conv.0.weight_v"] = r(H, H // POS_G, POS_K)
    sd["wav2vec2.encoder.layer_norm.weight"], sd["wav2vec2.encoder.layer_norm.bias"] = 1 + r(H, scale=0.1), r(H, scale=0.1)
    for i in range(LAYERS):
        p = f"wav2vec2.encoder.layers.{i}."
        for n in ("q", "k", "v", "out"):
            sd[p + f"self_attn.{n}_proj.weight"], sd[p + f"self_attn.{n}_proj.bias"] = r(H, H), r(H, scale=0.1)
        for n in ("self_attn_layer_norm", "final_layer_norm"):
            sd[p + f"{n}.weight"], sd[p + f"{n}.bias"] = 1 + r(H, scale=0.1), r(H, scale=0.1)
        sd[p + "fc1.weight"], sd[p + "fc1.bias"] = r(FFN, H), r(FFN, scale=0.1)
        sd[p + "fc2.weight"], sd[p + "fc2.bias"] = r(H, FFN), r(H, scale=0.1)
    sd["domain_emb"], sd["judge_emb"] = r(1, 4), r(1, 4)
    lstm = torch.nn.LSTM(H + 8, 6, batch_first=True, bidirectional=True)
    for k, v in lstm.state_dict().items():
        sd[f"blstm.{k}"] = r(*v.shape)
    sd["projection.0.weight"], sd["projection.0.bias"] = r(10, 12), r(10)
    sd["projection.2.weight"], sd["projection.2.bias"] = r(1, 10), r(1)
    return sd


def reference_forward(sd, wav):
    """fairseq wav2vec 2.0 base (post-LN) + UTMOS head, written from the architecture with
    functional ops only."""
    def ln(x, name):
        return F.layer_norm(x, (x.shape[-1],), sd[name + ".weight"], sd[name + ".bias"])

    x = wav[:, None]
    for i, k in enumerate(KERNELS):
        x = F.conv1d(x, sd[f"wav2vec2.feature_extractor.conv_layers.{i}.0.weight"], stride=5 if k == 10 else 2)
        if i == 0:
            x = F.group_norm(x, CONV, sd["wav2vec2.feature_extractor.conv_layers.0.2.weight"],
                             sd["wav2vec2.feature_extractor.conv_layers.0.2.bias"])
        x = F.gelu(x)
    x = ln(x.transpose(1, 2), "wav2vec2.layer_norm")
    x = F.linear(x, sd["wav2vec2.post_extract_proj.weight"], sd["wav2vec2.post_extract_proj.bias"])
    v, g = sd["wav2vec2.encoder.pos_conv.0.weight_v"], sd["wav2vec2.encoder.pos_conv.0.weight_g"]
    w = g * v / v.norm(dim=(0, 1), keepdim=True)  # weight norm over every dim but the kernel's
    pos = F.conv1d(x.transpose(1, 2), w, sd["wav2vec2.encoder.pos_conv.0.bias"], padding=POS_K // 2, groups=POS_G)
    x = ln(x + F.gelu(pos[:, :, :-1]).transpose(1, 2), "wav2vec2.encoder.layer_norm")
    t, d = x.shape[1], H // HEADS
    for i in range(LAYERS):
        p = f"wav2vec2.encoder.layers.{i}."
        q, k, vv = (F.linear(x, sd[p + f"self_attn.{n}_proj.weight"], sd[p + f"self_attn.{n}_proj.bias"])
                    .view(1, t, HEADS, d).transpose(1, 2) for n in ("q", "k", "v"))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1) @ vv
        att = F.linear(att.transpose(1, 2).reshape(1, t, H), sd[p + "self_attn.out_proj.weight"], sd[p + "self_attn.out_proj.bias"])
        x = ln(x + att, p + "self_attn_layer_norm")
        ff = F.linear(F.gelu(F.linear(x, sd[p + "fc1.weight"], sd[p + "fc1.bias"])), sd[p + "fc2.weight"], sd[p + "fc2.bias"])
        x = ln(x + ff, p + "final_layer_norm")
    cat = torch.cat([x, sd["domain_emb"][:, None].expand(1, t, -1), sd["judge_emb"][:, None].expand(1, t, -1)], 2)
    lstm = torch.nn.LSTM(H + 8, 6, batch_first=True, bidirectional=True)
    lstm.load_state_dict({k[len("blstm."):]: v for k, v in sd.items() if k.startswith("blstm.")})
    h = lstm(cat)[0]
    frames = F.linear(F.relu(F.linear(h, sd["projection.0.weight"], sd["projection.0.bias"])),
                      sd["projection.2.weight"], sd["projection.2.bias"])
    return float(frames.mean() * 2 + 3)


@pytest.fixture(scope="module")
def tiny_utmos(tmp_path_factory):
    sd = tiny_speechmos_state()
    path = tmp_path_factory.mktemp("utmos") / "utmos22_strong_tiny.pt"
    torch.save(sd, path)
    return path, sd


@pytest.mark.parametrize("n", [16000, 16000 + 320 * 3 + 17])  # even and odd frame counts
def test_utmos_equals_independent_fairseq_forward(tiny_utmos, n):
    path, sd = tiny_utmos
    m = M.get("utmos", model=str(path))
    wav = (0.3 * np.sin(np.arange(n) * 2 * np.pi * 220 / 16000) + 0.05 * np.random.default_rng(n).standard_normal(n))
    wav = wav.astype(np.float32)
    (got,) = m.score([M.Sample("x", hyp_audio=wav)])
    with torch.no_grad():
        want = reference_forward(sd, torch.from_numpy(wav)[None])
    assert got["utmos"] == pytest.approx(want, abs=1e-4)
    card = m.card()
    assert card["test_model"] is True and len(card["checksum"]) == 64 and "UTMOS22" in card["model"]


def test_utmos_bad_input_and_missing_checkpoint(tiny_utmos, tmp_path, monkeypatch):
    m = M.get("utmos", model=str(tiny_utmos[0]))
    (short,) = m.score([M.Sample("s", hyp_audio=np.zeros(800, np.float32))])
    assert isinstance(short, M.MetricError) and "0.1 s" in str(short)
    from uniaudio.models import ModelNotFound

    monkeypatch.setenv("UNIAUDIO_MODELS", str(tmp_path))
    with pytest.raises(ModelNotFound, match="utmos22_strong_step7459_v1.pt"):
        M.get("utmos")
    # a checkpoint with foreign keys is refused by name
    bad = dict(tiny_utmos[1], **{"wav2vec2.quantizer.vars": torch.zeros(1)})
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(KeyError, match="wav2vec2.quantizer.vars"):
        M.get("utmos", model=str(tmp_path / "bad.pt"))
