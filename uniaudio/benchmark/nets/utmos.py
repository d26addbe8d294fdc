"""UTMOS22 strong learner (Saeki et al. 2022; VoiceMOS 2022), inference part as SpeechMOS
publishes it (`utmos22_strong_step7459_v1.pt`): fairseq wav2vec 2.0 base features ->
concat(fixed domain and listener embeddings) -> BLSTM -> MLP -> frame scores, mean * 2 + 3.

The wav2vec 2.0 part is transformers' `Wav2Vec2Model` (the fairseq base architecture:
group-norm feature encoder without conv bias, post-LN transformer, 128-tap positional
conv in 16 groups); `from_speechmos_state_dict` renames the checkpoint's fairseq keys and
reads every size from the weights, so tiny test checkpoints load through the same code."""

from __future__ import annotations

import re

import torch
from torch import nn

# fairseq wav2vec 2.0 feature encoder: stride per kernel size (kernels 10,3,3,3,3,2,2)
_STRIDE_OF_KERNEL = {10: 5, 3: 2, 2: 2}
HEADS = 12  # not recoverable from weights; UTMOS22 uses wav2vec 2.0 base


def _rename(key: str) -> str | None:
    """A SpeechMOS `wav2vec2.*` key -> the transformers Wav2Vec2Model key (None: unused)."""
    rules = [
        (r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", r"feature_extractor.conv_layers.\1.conv.weight"),
        (r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)", r"feature_extractor.conv_layers.0.layer_norm.\1"),
        (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
        (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
        (r"mask_emb", "masked_spec_embed"),
        (r"encoder\.pos_conv\.0\.bias", "encoder.pos_conv_embed.conv.bias"),
        (r"encoder\.pos_conv\.0\.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
        (r"encoder\.pos_conv\.0\.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
        (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
        (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
        (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
        (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
        (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
        (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    ]
    for pattern, repl in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


class UTMOS22Strong(nn.Module):
    def __init__(self, ssl_config, domain_dim: int = 128, judge_dim: int = 128, rnn_hidden: int = 512,
                 proj_hidden: int = 2048):
        super().__init__()
        from transformers import Wav2Vec2Model

        self.wav2vec2 = Wav2Vec2Model(ssl_config)
        self.domain_emb = nn.Parameter(torch.zeros(1, domain_dim), requires_grad=False)
        self.judge_emb = nn.Parameter(torch.zeros(1, judge_dim), requires_grad=False)
        feat = ssl_config.hidden_size + domain_dim + judge_dim
        self.blstm = nn.LSTM(feat, rnn_hidden, batch_first=True, bidirectional=True)
        self.projection = nn.Sequential(nn.Linear(2 * rnn_hidden, proj_hidden), nn.ReLU(), nn.Linear(proj_hidden, 1))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave [B, T] at 16 kHz, unnormalised (as fairseq base takes it) -> MOS [B]. Items
        of a batch must have the same length: there is no padding mask in this model."""
        units = self.wav2vec2(wave).last_hidden_state
        b, t, _ = units.shape
        cond = torch.cat([units, self.domain_emb[:, None].expand(b, t, -1), self.judge_emb[:, None].expand(b, t, -1)], 2)
        frames = self.projection(self.blstm(cond)[0])
        return frames.mean(1)[:, 0] * 2 + 3

    @classmethod
    def from_speechmos_state_dict(cls, state: dict) -> "UTMOS22Strong":
        from transformers import Wav2Vec2Config

        ssl = {}
        for k, v in state.items():
            if k.startswith("wav2vec2."):
                new = _rename(k[len("wav2vec2."):])
                if new is None:
                    raise KeyError(f"UTMOS checkpoint: unexpected key {k!r}")
                ssl[new] = v
        n_conv = len([k for k in ssl if re.fullmatch(r"feature_extractor\.conv_layers\.\d+\.conv\.weight", k)])
        kernels = [ssl[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[2] for i in range(n_conv)]
        hidden = ssl["feature_projection.projection.weight"].shape[0]
        pos_w = ssl["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
        cfg = Wav2Vec2Config(
            hidden_size=hidden, num_attention_heads=HEADS,
            num_hidden_layers=1 + max(int(k.split(".")[2]) for k in ssl if k.startswith("encoder.layers.")),
            intermediate_size=ssl["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
            conv_dim=tuple(ssl[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[0] for i in range(n_conv)),
            conv_kernel=tuple(kernels), conv_stride=tuple(_STRIDE_OF_KERNEL[k] for k in kernels), conv_bias=False,
            feat_extract_norm="group", do_stable_layer_norm=False, num_conv_pos_embeddings=pos_w.shape[2],
            num_conv_pos_embedding_groups=hidden // pos_w.shape[1], hidden_act="gelu", feat_extract_activation="gelu")
        rnn_hidden = state["blstm.weight_hh_l0"].shape[1]
        model = cls(cfg, state["domain_emb"].shape[1], state["judge_emb"].shape[1], rnn_hidden,
                    state["projection.0.weight"].shape[0])
        rest = {k: v for k, v in state.items() if not k.startswith("wav2vec2.")}
        model.load_state_dict({**{f"wav2vec2.{k}": v for k, v in ssl.items()}, **rest}, strict=True)
        return model.eval()
