"""WavLM + ECAPA-TDNN speaker verification: the SIM model of Seed-TTS-eval (`cal_sim.sh` runs
UniSpeech's `verification_pair_list_v2.py --model_name wavlm_large` on `wavlm_large_finetune.pth`).

What the published model computes, in order (UniSpeech `downstreams/speaker_verification`):
1. 16 kHz mono waveform, layer-normalised over its samples (WavLM-large's `normalize`);
2. WavLM's hidden states as s3prl hooks them: the input of each of the 24 transformer layers and
   the encoder's final (layer-normed) output, 25 in all;
3. their weighted sum with softmax(`feature_weight`), + 1e-6, instance norm over time;
4. ECAPA-TDNN (channels 512, Res2 scale 8, SE bottleneck 128, attentive statistics pooling,
   1536 -> 256-d embedding).
The WavLM part is transformers' `WavLMModel` with the published checkpoint's weights mapped from
their fairseq names (`from_unispeech`); `benchmarks/fidelity.py --against unispeech` checks the
whole model against UniSpeech's own code on a tiny random model."""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

# WavLM-Large as the checkpoint was trained (microsoft/wavlm-large; UniSpeech WavLM.py cfg)
WAVLM_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                   feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True, num_buckets=320,
                   max_bucket_distance=800, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
                   conv_dim=(512,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                   layer_norm_eps=1e-5, hidden_act="gelu", feat_extract_activation="gelu")
PUBLISHED_PARAMS = 316_000_000  # WavLM-large ~315 M + the ECAPA head ~6 M: a size check for cards


class ConvReluBn(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, padding=padding, dilation=dilation)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x):
        return self.bn(F.relu(self.conv(x)))  # conv -> relu -> bn, the published order


class Res2ConvReluBn(nn.Module):
    """Channels split into `scale` groups; group i (but the last, passed through) is convolved
    after adding the previous group's output: a hierarchy of receptive fields in one layer."""

    def __init__(self, channels: int, kernel: int, padding: int, dilation: int, scale: int):
        super().__init__()
        self.width = channels // scale
        self.convs = nn.ModuleList(nn.Conv1d(self.width, self.width, kernel, padding=padding, dilation=dilation)
                                   for _ in range(scale - 1))
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(scale - 1))

    def forward(self, x):
        parts = torch.split(x, self.width, 1)
        out, sp = [], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = parts[i] if i == 0 else sp + parts[i]
            sp = bn(F.relu(conv(sp)))
            out.append(sp)
        return torch.cat(out + [parts[-1]], dim=1)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(channels, bottleneck), nn.Linear(bottleneck, channels)

    def forward(self, x):
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * gate.unsqueeze(2)


class SERes2Block(nn.Module):
    def __init__(self, channels: int, dilation: int, scale: int = 8, bottleneck: int = 128):
        super().__init__()
        self.Conv1dReluBn1 = ConvReluBn(channels, channels)
        self.Res2Conv1dReluBn = Res2ConvReluBn(channels, 3, dilation, dilation, scale)
        self.Conv1dReluBn2 = ConvReluBn(channels, channels)
        self.SE_Connect = SqueezeExcite(channels, bottleneck)

    def forward(self, x):
        y = self.SE_Connect(self.Conv1dReluBn2(self.Res2Conv1dReluBn(self.Conv1dReluBn1(x))))
        return x + y


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time (per channel attention)."""

    def __init__(self, dim: int, attention: int = 128):
        super().__init__()
        self.linear1, self.linear2 = nn.Conv1d(dim, attention, 1), nn.Conv1d(attention, dim, 1)

    def forward(self, x):
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
        mean = (alpha * x).sum(dim=2)
        var = (alpha * x * x).sum(dim=2) - mean ** 2
        return torch.cat([mean, var.clamp(min=1e-9).sqrt()], dim=1)


class WavLMEcapa(nn.Module):
    """wav [B, samples] at 16 kHz (one utterance per row, no padding) -> embeddings [B, emb_dim]."""

    def __init__(self, wavlm_config: dict | None = None, channels: int = 512, emb_dim: int = 256,
                 normalize_wave: bool = True):
        super().__init__()
        from transformers import WavLMConfig, WavLMModel

        cfg = WavLMConfig(**(wavlm_config or WAVLM_LARGE))
        self.feature_extract = WavLMModel(cfg)
        self.normalize_wave = normalize_wave
        dim = cfg.hidden_size
        self.feature_weight = nn.Parameter(torch.zeros(cfg.num_hidden_layers + 1))
        self.instance_norm = nn.InstanceNorm1d(dim)
        self.layer1 = ConvReluBn(dim, channels, kernel=5, padding=2)
        self.layer2, self.layer3, self.layer4 = (SERes2Block(channels, d) for d in (2, 3, 4))
        self.conv = nn.Conv1d(channels * 3, 1536, 1)
        self.pooling = AttentiveStatsPool(1536)
        self.bn = nn.BatchNorm1d(1536 * 2)
        self.linear = nn.Linear(1536 * 2, emb_dim)

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        if self.normalize_wave:
            wav = F.layer_norm(wav, wav.shape[-1:])
        out = self.feature_extract(wav, output_hidden_states=True)
        # the layers' inputs, then the encoder's layer-normed output: transformers' hidden_states[-1]
        # is the last layer's raw output (not what s3prl taps), its last_hidden_state the normed one
        hidden = (*out.hidden_states[:-1], out.last_hidden_state)  # 25 x [B, T, D] for WavLM-large
        w = torch.softmax(self.feature_weight, dim=-1)
        x = (w[:, None, None, None] * torch.stack(hidden)).sum(dim=0)
        return self.instance_norm(x.transpose(1, 2) + 1e-6)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        out1 = self.layer1(self.features(wav))
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        x = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
        return self.linear(self.bn(self.pooling(x)))


# fairseq/UniSpeech WavLM names -> transformers WavLMModel names (after "feature_extract.model.")
_WAVLM_RENAMES = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.", r"feature_extractor.conv_layers.\1.layer_norm."),
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^mask_emb$", "masked_spec_embed"),
    (r"^encoder\.pos_conv\.0\.bias$", "encoder.pos_conv_embed.conv.bias"),
    (r"^encoder\.pos_conv\.0\.weight_g$", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"^encoder\.pos_conv\.0\.weight_v$", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"\.self_attn\.grep_linear\.", ".attention.gru_rel_pos_linear."),
    (r"\.self_attn\.grep_a$", ".attention.gru_rel_pos_const"),
    (r"\.self_attn\.relative_attention_bias\.", ".attention.rel_attn_embed."),
    (r"\.self_attn\.", ".attention."),
    (r"\.self_attn_layer_norm\.", ".layer_norm."),
    (r"\.fc1\.", ".feed_forward.intermediate_dense."),
    (r"\.fc2\.", ".feed_forward.output_dense."),
]
# checkpoint entries that do nothing at inference (pre-training heads); anything else unknown is an error
_UNUSED = re.compile(r"^feature_extract\.model\.(label_embs_concat|final_proj\.|project_q\.|quantizer\.)")


def wavlm_name(key: str) -> str:
    for pattern, repl in _WAVLM_RENAMES:
        key = re.sub(pattern, repl, key)
    return key


def from_unispeech(state: dict, model: WavLMEcapa) -> list[str]:
    """Load a UniSpeech speaker-verification state dict (`torch.load(...)["model"]`) into `model`.
    Unlike the reference (`load_state_dict(strict=False)`), every weight of the model must come from
    the file and every entry of the file must land somewhere (but the listed pre-training heads):
    a checkpoint of another architecture is an error naming the keys, never silently half-loaded.
    Returns the ignored keys."""
    target, mapped, ignored = model.state_dict(), {}, []
    for key, value in state.items():
        if _UNUSED.match(key):
            ignored.append(key)
            continue
        if key.startswith("feature_extract.model."):
            name = "feature_extract." + wavlm_name(key[len("feature_extract.model."):])
        else:
            name = key
        if name not in target:
            if name == "feature_extract.masked_spec_embed":  # only built when the config masks; unused here
                ignored.append(key)
                continue
            raise ValueError(f"checkpoint entry {key!r} (as {name!r}) has no place in WavLM+ECAPA-TDNN: "
                             "not a UniSpeech wavlm speaker-verification checkpoint?")
        if tuple(value.shape) != tuple(target[name].shape):
            raise ValueError(f"checkpoint entry {key!r} has shape {tuple(value.shape)}, the model "
                             f"{tuple(target[name].shape)}: another model size?")
        mapped[name] = value
    missing = sorted(set(target) - set(mapped) - {"feature_extract.masked_spec_embed"}
                     - {k for k in target if k.endswith("num_batches_tracked")})
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} weights of WavLM+ECAPA-TDNN, e.g. {missing[:4]}")
    model.load_state_dict(mapped, strict=False)
    return ignored
