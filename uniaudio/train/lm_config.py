"""`uniaudio train lm`'s configuration: the model (`LMSpec`) and the run (`LMTrainConfig`), typed
and validated on load with the bad field named; what may not change on resume (`resume_fields`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import ConfigError
from .attention import ATTENTION_KINDS
from .common import warmup_cosine
from .llm import LORA_TARGETS
from .model import MODEL_KINDS


@dataclass
class LMSpec:
    kind: str = "multiscale"  # multiscale: UniAudio (UniAudioLM); multistream: UniAudio 2.0 (MultiStreamLM)
    d_model: int = 192
    n_layers: int = 4  # multiscale: the global transformer; multistream: the middle blocks
    n_heads: int = 4
    n_kv_heads: int = 2
    local_layers: int = 2
    ffn_mult: float = 8 / 3
    dropout: float = 0.0
    # multistream only
    bottom_layers: int = 2  # audio-understanding expert
    top_layers: int = 2  # audio-generation expert
    middle: str | None = None  # a local transformers Llama folder: its layers, norm, embedding and head
    #   (d_model, n_layers, heads, ffn_mult, norm eps and RoPE theta then come from its config)
    lora_rank: int = 0  # > 0: the middle stays frozen and trains LoRA adapters of this rank
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=lambda: ["qkv", "o", "gate_up", "down"])

    def validate(self) -> None:
        if self.kind not in MODEL_KINDS:  # the same rule as ModelConfig's, at load time
            raise ConfigError("model.kind", f"one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")
        if self.kind == "multiscale" and (self.middle or self.lora_rank):
            raise ConfigError("model.middle" if self.middle else "model.lora_rank", "only for kind: multistream")
        if self.lora_rank < 0:
            raise ConfigError("model.lora_rank", "must be >= 0")
        bad = [t for t in self.lora_targets if t not in LORA_TARGETS]
        if bad:
            raise ConfigError("model.lora_targets", f"{bad}: choose from {list(LORA_TARGETS)}")
        if self.middle and not Path(self.middle).is_dir():
            raise ConfigError("model.middle", f"{self.middle} is not a folder (a transformers Llama saved with "
                                              "save_pretrained)")


@dataclass
class LMTrainConfig:
    data: str  # a sentence output (`uniaudio pipeline sentences`, layout uniaudio)
    out: str
    model: LMSpec = field(default_factory=LMSpec)
    steps: int = 1000
    batch_rows: int = 4096  # rows per micro-batch per process (bundles are added while they fit)
    grad_accum: int = 1
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    lr_decay_steps: int | None = None  # cosine horizon; None = steps
    weight_decay: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    grad_clip: float = 1.0
    seed: int = 0
    # validation: the sentence output's held-out bundles (sources from held-out splits); without
    # any, val_fraction of the bundles by a stable hash of their key. At most val_bundles are used.
    val_fraction: float = 0.05
    val_bundles: int = 16
    val_every: int = 100
    log_every: int = 10
    checkpoint_every: int = 100
    loss_on_prefix: bool = False  # False: loss on each sequence's target segments only (the default)
    dtype: str = "auto"  # auto: bfloat16 autocast on a GPU that supports it, else float32
    compile: bool = False
    device: str = "auto"
    # how packed sequences are kept apart: spans (a loop of SDPA calls, the CPU default), flex
    # (one FlexAttention call with a document mask, rows padded to the context: the GPU default)
    attention: str = "auto"
    workers: int = 0  # DataLoader worker processes
    threads: int | None = None  # torch intra-op threads

    def validate(self) -> None:
        for k in ("steps", "batch_rows", "grad_accum", "val_every", "val_bundles", "log_every", "checkpoint_every"):
            if getattr(self, k) < 1:
                raise ConfigError(k, "must be >= 1")
        if not 0 < self.lr < 1:
            raise ConfigError("lr", f"must be in (0, 1), got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("min_lr_ratio", "must be in [0, 1]")
        if self.warmup_steps < 0:
            raise ConfigError("warmup_steps", "must be >= 0")
        if self.lr_decay_steps is not None and self.lr_decay_steps <= self.warmup_steps:
            raise ConfigError("lr_decay_steps", f"must be > warmup_steps ({self.warmup_steps})")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError("betas", f"two numbers in [0, 1), got {self.betas}")
        if not 0 <= self.val_fraction < 0.5:
            raise ConfigError("val_fraction", "must be in [0, 0.5)")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ConfigError("grad_clip" if self.grad_clip < 0 else "weight_decay", "must be >= 0")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError("dtype", f"auto, float32 or bfloat16, got {self.dtype!r}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError("device", f"auto, cpu or cuda[:N], got {self.device!r}")
        if self.workers < 0:
            raise ConfigError("workers", "must be >= 0")
        self.model.validate()
        if self.attention not in ATTENTION_KINDS:
            raise ConfigError("attention", f"one of {', '.join(ATTENTION_KINDS)}, got {self.attention!r}")
        if self.attention == "flex" and self.model.dropout:
            raise ConfigError("attention", "flex attention has no dropout: use spans, or model.dropout 0")

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.lr, self.warmup_steps, self.lr_decay_steps or self.steps, self.min_lr_ratio)

    def resume_fields(self) -> dict:
        """What must not change when a run resumes (the result would differ). `steps` may grow
        (train on), but where the cosine ends may not: with lr_decay_steps unset that end is
        `steps`, so the effective horizon is what is compared."""
        d = asdict(self)
        for k in ("out", "steps", "val_every", "val_bundles", "log_every", "checkpoint_every", "workers", "threads",
                  "device", "compile", "attention"):
            d.pop(k)
        d["data"] = str(Path(self.data).resolve())
        d["lr_decay_steps"] = self.lr_decay_steps or self.steps
        return json.loads(json.dumps(d))


class ResumeMismatch(RuntimeError):
    """OUT/last.pt was written by another world size, worker count or training config."""
