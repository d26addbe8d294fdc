"""A text LLM inside UniAudio 2.0's multi-stream model: loading a local transformers Llama into the
middle blocks (`llama_shape`, `load_llama`) and training LoRA adapters on it while it stays
frozen (`apply_lora`; `merged_state_dict` folds them in for inference checkpoints)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..config import ConfigError


class LoRALinear(nn.Module):
    """A frozen Linear plus a low-rank update: y = W x + (alpha / r) B A dropout(x), B = 0 at
    start (so the wrapped layer is unchanged until it trains). `merged()` gives W + (alpha/r) B A."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        self.a = nn.Parameter(torch.empty(rank, base.in_features))
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))  # PEFT's initialisation
        self.scale, self.drop = alpha / rank, nn.Dropout(dropout)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, x):
        return self.base(x) + (self.drop(x) @ self.a.t() @ self.b.t()) * self.scale

    def merged(self) -> torch.Tensor:
        return self.base.weight + self.scale * (self.b @ self.a).to(self.base.weight.dtype)


LORA_TARGETS = ("qkv", "o", "gate_up", "down")


def apply_lora(blocks: nn.ModuleList, rank: int, alpha: float, dropout: float, targets) -> int:
    """Wrap the target Linears of `blocks` (names: qkv, o, gate_up, down) in LoRALinear and
    freeze everything else in them. Returns the number of adapter parameters."""
    for p in blocks.parameters():
        p.requires_grad_(False)
    n = 0
    for blk in blocks:
        for parent in (blk.attn, blk.ffn):
            for name in targets:
                lin = getattr(parent, name, None)
                if isinstance(lin, nn.Linear):
                    wrapped = LoRALinear(lin, rank, alpha, dropout)
                    setattr(parent, name, wrapped)
                    n += wrapped.a.numel() + wrapped.b.numel()
    return n


def merged_state_dict(model: nn.Module) -> dict:
    """The model's weights with every LoRA adapter folded in (W + scale B A under the plain
    Linear's name): what inference checkpoints hold, loadable without LoRA."""
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    for name, m in model.named_modules():
        if isinstance(m, LoRALinear):
            for key in (".a", ".b", ".base.weight"):
                sd.pop(name + key)
            sd[name + ".weight"] = m.merged().detach()
    return sd


def llama_shape(path: str) -> dict:
    """The ModelConfig fields a transformers Llama checkpoint in a local folder fixes for the
    middle blocks (ConfigError naming model.middle when it is not a plain Llama)."""
    from transformers import AutoConfig

    try:
        c = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConfigError("model.middle", f"no transformers config in {path}: {e}") from None
    if c.model_type != "llama":
        raise ConfigError("model.middle", f"{path} is a {c.model_type!r} model; the middle loads Llama checkpoints")
    if getattr(c, "hidden_act", "silu") != "silu" or getattr(c, "attention_bias", False) or getattr(c, "mlp_bias", False):
        raise ConfigError("model.middle", f"{path}: only SiLU, bias-free Llama layers are supported")
    scaling = getattr(c, "rope_scaling", None)
    theta = getattr(c, "rope_theta", None)
    params = getattr(c, "rope_parameters", None) or {}
    if theta is None:
        theta = params.get("rope_theta", 10000.0)
    if scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default") or \
            params.get("rope_type", "default") != "default":
        raise ConfigError("model.middle", f"{path}: RoPE scaling {scaling or params} is not supported")
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    if head_dim * c.num_attention_heads != c.hidden_size:
        raise ConfigError("model.middle", f"{path}: head_dim x heads != hidden_size")
    return {"d_model": c.hidden_size, "n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads,
            "n_kv_heads": c.num_key_value_heads, "ffn_mult": c.intermediate_size / c.hidden_size,
            "norm_eps": c.rms_norm_eps, "rope_theta": float(theta), "llm_vocab": c.vocab_size}


@torch.no_grad()
def load_llama(model, path: str) -> None:
    """Copy a local transformers Llama into the middle blocks, the final norm, and the LLM's
    embedding and head (q/k/v and gate/up fused as our blocks hold them)."""
    from transformers import AutoModelForCausalLM

    llm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    sd = llm.state_dict()
    if model.cfg.ffn_hidden != llm.config.intermediate_size:
        raise ConfigError("model.ffn_mult", f"gives {model.cfg.ffn_hidden} hidden units; {path} has "
                                            f"{llm.config.intermediate_size}")
    for i, blk in enumerate(model.blocks):
        p = f"model.layers.{i}."
        blk.attn.qkv.weight.copy_(torch.cat([sd[p + f"self_attn.{n}_proj.weight"] for n in "qkv"]))
        blk.attn.o.weight.copy_(sd[p + "self_attn.o_proj.weight"])
        blk.ffn.gate_up.weight.copy_(torch.cat([sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"]]))
        blk.ffn.down.weight.copy_(sd[p + "mlp.down_proj.weight"])
        blk.norm1.weight.copy_(sd[p + "input_layernorm.weight"])
        blk.norm2.weight.copy_(sd[p + "post_attention_layernorm.weight"])
    model.norm.weight.copy_(sd["model.norm.weight"])
    model.llm_embed.weight.copy_(sd["model.embed_tokens.weight"])
    model.llm_head.weight.copy_(sd.get("lm_head.weight", sd["model.embed_tokens.weight"]))  # tied or not
