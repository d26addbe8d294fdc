"""`uniaudio train lm CONFIG`: train the UniAudio multi-scale LM on auditory-sentence bundles.

One loop (nanoGPT-style): AdamW, linear warm-up then cosine, gradient clipping, gradient
accumulation, bf16 autocast where the device supports it, optional torch.compile, held-out
validation, and several processes through `torchrun` (DDP; gloo on CPU, NCCL on GPU).

Resume is exact: OUT/last.pt holds model, optimizer, step, the number of batches this run's
ranks have taken (the data stream is a pure function of it) and every RNG; rerun the same
command. A resume with another world size, loader worker count or training config is
refused with the fields that differ. OUT/log.jsonl has the loss per task and per codebook,
tokens/s, model FLOP/s and MFU (on devices with a known peak); OUT/model.pt is what
`uniaudio train generate` and the `lm-ckpt:` benchmark system load."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint
from ..config import ConfigError, config_diff
from .data import BundleStream, SentenceData, loader, val_batches
from .flops import peak_flops, step_flops
from .model import ModelConfig, stream_supports


@dataclass
class ModelSpec:
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
        from .model import LORA_TARGETS, MODEL_KINDS

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
    model: ModelSpec = field(default_factory=ModelSpec)
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
        from .model import ATTENTION_KINDS

        if self.attention not in ATTENTION_KINDS:
            raise ConfigError("attention", f"one of {', '.join(ATTENTION_KINDS)}, got {self.attention!r}")
        if self.attention == "flex" and self.model.dropout:
            raise ConfigError("attention", "flex attention has no dropout: use spans, or model.dropout 0")

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        horizon = self.lr_decay_steps or self.steps
        t = min(1.0, (step - self.warmup_steps) / max(1, horizon - self.warmup_steps))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))

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
    pass


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group torchrun set up."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} but torch sees no CUDA device; use device: cpu")
    return torch.device(name)


def autocast(device: torch.device, dtype: str):
    use_bf16 = dtype == "bfloat16" or (dtype == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    if use_bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16), "bfloat16"
    return contextlib.nullcontext(), "float32"


def unigram_baseline(data: SentenceData, train_refs, val_refs, max_bundles: int = 2000) -> dict:
    """What knowing only token frequencies gives, in nats per token: for audio (averaged over
    the codebooks) and for text rows (every non-audio target token), the entropy of the
    training targets and the cross-entropy of that (add-one smoothed) unigram on the
    validation targets: the bars validation losses must beat."""
    from .data import BundleReader

    k = data.vocab.audio_range().codebooks
    reader = BundleReader(data.root, data.vocab, 10**9, [np.arange(data.vocab.size)] * k)
    size = data.vocab.size

    def counts(refs):
        c = [np.zeros(size, np.int64) for _ in range(k + 1)]  # K codebooks, then text
        for r in refs[:max_bundles]:
            try:
                b = reader.read(r)
            except ValueError:
                continue
            audio = data.vocab.is_audio_row(b["ids"])
            for s in range(k):
                c[s] += np.bincount(b["ids"][audio & b["loss"], s], minlength=size)
            c[k] += np.bincount(b["ids"][~audio & b["loss"], 0], minlength=size)
        return c

    def bars(tr, va):
        p = tr / max(1, tr.sum())
        nz = p[p > 0]
        q = (tr + 1) / (tr.sum() + len(tr))
        return (float(-(nz * np.log(nz)).sum()) if len(nz) else float("nan"),
                float(-(va * np.log(q)).sum() / va.sum()) if va.sum() else float("nan"))

    tr, va = counts(train_refs), counts(val_refs)
    audio = data.vocab.audio_range()
    ent, cross = [], []
    for s in range(k):
        lo, hi = audio.offset + s * audio.size, audio.offset + (s + 1) * audio.size
        e, x = bars(tr[s][lo:hi], va[s][lo:hi])
        ent.append(e)
        cross.append(x)
    non_audio = np.ones(size, bool)
    non_audio[audio.offset:audio.end] = False
    te, tx = bars(tr[k][non_audio], va[k][non_audio])
    return {"unigram_entropy_train": round(float(np.mean(ent)), 4),
            "unigram_cross_entropy_val": round(float(np.mean(cross)), 4),
            "text_unigram_entropy_train": round(te, 4), "text_unigram_cross_entropy_val": round(tx, 4)}


def build_model(data: SentenceData, spec: ModelSpec):
    """(model, per-slot supports for the data reader). multistream with `middle`: the Llama's
    shape fills the config, its weights the middle; with lora_rank the middle and the LLM's
    embedding, head and final norm stay frozen and only adapters (and the experts) train."""
    from .model import apply_lora, llama_shape, load_llama, make_model

    k = data.vocab.audio_range().codebooks
    supports = stream_supports(data.vocab, k)
    fields = {n: v for n, v in asdict(spec).items() if n not in ("middle", "lora_rank", "lora_alpha", "lora_dropout",
                                                                  "lora_targets")}
    if spec.middle:
        shape = llama_shape(spec.middle)
        fields.update({n: v for n, v in shape.items() if n != "llm_vocab"}, llm_vocab=shape["llm_vocab"])
    cfg = ModelConfig(vocab_size=data.vocab.size, n_streams=k, max_rows=data.context,
                      empty_id=data.vocab.id("<empty>"), **fields)
    model = make_model(cfg, data.vocab)
    if spec.middle:
        load_llama(model, spec.middle)
    if spec.lora_rank:
        apply_lora(model.blocks, spec.lora_rank, spec.lora_alpha, spec.lora_dropout, spec.lora_targets)
        if spec.middle:
            for m in (model.llm_embed, model.llm_head, model.norm):
                m.weight.requires_grad_(False)
    return model, supports


def _padded(x: torch.Tensor, rows: int, value) -> torch.Tensor:
    if x.shape[1] >= rows:
        return x
    pad = x.new_full((x.shape[0], rows - x.shape[1], *x.shape[2:]), value)
    return torch.cat([x, pad], 1)


def _losses(model, batch, device, loss_on_prefix: bool, attention: str = "spans",
            pad_rows: int = 0, pad_id: int = 0, audio_offset: int = 0) -> tuple[torch.Tensor, dict]:
    """Mean loss of a batch and the model's per-row output. With flex attention the rows are
    padded to `pad_rows` (padding predicts nothing and is masked out), so a compiled model
    sees one shape."""
    from .model import attention_plan, predicted_rows

    ids, doc, pos, loss = batch["ids"], batch["doc"], batch["pos"], batch["loss"]
    flex = attention == "flex"
    if flex and pad_rows:
        ids, doc = _padded(ids, pad_rows, pad_id), _padded(doc, pad_rows, -1)
        pos, loss = _padded(pos, pad_rows, 0), _padded(loss, pad_rows, False)
    mask = (doc >= 0) if loss_on_prefix else loss
    rows = predicted_rows(doc, mask)  # on the host: the device is never asked how many rows
    # which predicted rows are audio frames (the multistream model's local decoder runs on those only)
    audio = torch.nonzero(ids[rows[0], rows[1] + 1, 0] >= audio_offset).flatten()
    n_audio = len(audio)
    on = dict(device=device, non_blocking=True)
    ids, doc, pos, mask = ids.to(**on), doc.to(**on), pos.to(**on), mask.to(**on)
    rows = tuple(r.to(**on) for r in (*rows, audio))
    out = model(ids, pos, doc, mask, attention_plan(doc, "flex" if flex else "spans"), rows)
    out["n_predicted"], out["n_audio"] = len(rows[0]), n_audio
    loss, valid = out["loss"], out["valid"]
    n = valid.sum()
    mean = (loss * valid).sum() / n.clamp(min=1)
    return mean, out


def _breakdown(out, batch, vocab, task_names: dict) -> dict:
    """Summed losses and counts per task and per codebook (audio rows), for the log."""
    bi, ti = out["rows"]
    loss, valid = out["loss"].detach().float().cpu(), out["valid"].cpu()
    bi, ti = bi.cpu(), ti.cpu()
    tasks = batch["task"][bi, ti]
    audio = torch.from_numpy(vocab.is_audio_row(batch["ids"][bi, ti].numpy()))
    acc: dict = defaultdict(float)
    k = vocab.audio_range().codebooks
    # multiscale: [N, K] (a text row: slot 0); multistream: [N, K + 1] (codebooks, then the text stream)
    text_col = k if loss.shape[1] == k + 1 else 0
    row_loss = (loss * valid).sum(1) / valid.sum(1).clamp(min=1)
    for t in tasks.unique().tolist():
        sel = tasks == t
        acc[f"task/{task_names.get(t, t)}/sum"] += float(row_loss[sel].sum())
        acc[f"task/{task_names.get(t, t)}/n"] += int(sel.sum())
    for s in range(k):
        acc[f"codebook/{s}/sum"] += float(loss[audio, s].sum())
        acc[f"codebook/{s}/n"] += int(audio.sum())
    acc["all/sum"] += float((loss * valid).sum())
    acc["all/n"] += int(valid.sum())
    acc["audio/sum"] += float(loss[audio, :k].sum())
    acc["audio/n"] += int(audio.sum()) * k
    acc["text/sum"] += float(loss[~audio, text_col].sum())  # a text row predicts one token (repeated K times)
    acc["text/n"] += int((~audio).sum())
    return acc


def _truncate(path: Path, step: int) -> None:
    """Keep the records of a JSONL log up to `step` (a torn last line goes too)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("step", 0) <= step:
            keep.append(line)
    from ..files import atomic_write_text

    atomic_write_text(path, "".join(k + "\n" for k in keep))


def empty_batch(vocab) -> dict:
    """One padding row that predicts nothing: a rank whose batch was all unusable still runs
    a forward/backward, so DDP's collective calls stay matched."""
    from .data import collate

    k = vocab.audio_range().codebooks
    item = {"ids": np.full((2, k), vocab.id("<pad>"), np.int64), "loss": np.zeros(2, bool), "doc": np.zeros(2, np.int64),
            "pos": np.arange(2), "task": np.full(2, -1, np.int64), "key": "<empty>"}
    return collate([item], vocab.id("<pad>"))


def _means(acc: dict) -> dict:
    out = {}
    for key in acc:
        if key.endswith("/sum"):
            base = key[:-4]
            n = acc.get(base + "/n", 0)
            out[base] = round(acc[key] / n, 4) if n else None
    return out


@torch.no_grad()
def evaluate(model, batches, ctx, losses, vocab, task_names) -> dict:
    model.eval()
    acc: dict = defaultdict(float)
    for b in batches:
        with ctx:
            _, out = losses(model, b)
        for k, v in _breakdown(out, b, vocab, task_names).items():
            acc[k] += v
    model.train()
    return _means(acc)


class _StopRequest:
    """SIGINT / SIGTERM during training: the step in progress finishes, a checkpoint is saved and
    train() returns (a second Ctrl-C aborts at once). Several processes agree on stopping with an
    all-reduce at log steps only (where the loop syncs with the device anyway), so every rank saves
    and leaves at the same step and a GPU step never waits for the host in between."""

    def __init__(self, world: int, device: torch.device):
        import signal
        import threading

        self.world, self.device, self.name, self.previous = world, device, None, {}
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, sig, frame) -> None:
        import signal

        self.name = signal.Signals(sig).name
        signal.signal(sig, self.previous.get(sig, signal.SIG_DFL))  # the second one is not caught

    def requested(self, may_sync: bool) -> bool:
        if self.world == 1:
            return self.name is not None
        if not may_sync:
            return False
        import torch.distributed as dist

        flag = torch.tensor([1.0 if self.name else 0.0], device=self.device)
        dist.all_reduce(flag)
        if flag.item() > 0 and self.name is None:
            self.name = "stop on another rank"
        return flag.item() > 0

    def restore(self) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


def _checked_shards(data: SentenceData, refs, out: Path, rank: int, world: int) -> dict:
    """Every bundle shard the run reads, against the sha256 its sentence output recorded: a
    tampered (or damaged but readable) shard stops the run before training instead of being
    trained on. Hashes are streamed; a shard whose size and mtime equal those of its last check
    (OUT/checked_shards.json) is not read again, so a resume costs stat calls only. Rank 0
    checks; the other ranks learn the outcome."""
    from ..files import atomic_write_text, sha256_file

    result: dict = {"shards": 0, "hashed": 0, "bytes": 0, "seconds": 0.0}
    problem = None
    if rank == 0:
        t0 = time.time()
        want = data.shard_checksums()
        record = out / "checked_shards.json"
        try:
            seen = json.loads(record.read_text())
        except (OSError, ValueError):
            seen = {}
        bad, now = [], {}
        for shard in sorted({r.shard for r in refs}):
            path = data.root / "shards" / shard
            try:
                st = path.stat()
            except OSError:
                bad.append(f"{shard} (missing)")
                continue
            stamp = [want.get(shard), st.st_size, st.st_mtime_ns]
            if seen.get(shard) != stamp:
                result["hashed"] += 1
                result["bytes"] += st.st_size
                if sha256_file(path) != want.get(shard):
                    bad.append(shard)
                    continue
            now[shard] = stamp
        result.update(shards=len(now) + len(bad), seconds=round(time.time() - t0, 3))
        atomic_write_text(record, json.dumps(now))
        if bad:
            problem = (f"{len(bad)} bundle shard(s) of {data.root} differ from the sha256 its index recorded: "
                       f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. The sentence output changed after it "
                       "was built; rerun `uniaudio pipeline sentences` on it (a resume rewrites changed shards) or "
                       "check the disk, then train again")
    if world > 1:
        import torch.distributed as dist

        box = [problem, result]
        dist.broadcast_object_list(box, src=0)
        problem, result = box
    if problem:
        raise ValueError(problem)
    return result


def train(cfg: LMTrainConfig, progress: bool = True, after_step=None) -> dict:
    """Train (or resume) as `cfg` says. after_step(step), when given, is called at the end of
    every step, after its logging and checkpoint (benchmarks/train_throughput.py runs its
    baseline's steps there, so both loops see the same machine at the same moments)."""
    rank, world, local_rank = _distributed()
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    # Subnormal floats (|x| < 1.2e-38) take microcode assists on x86 CPUs: lm-tiny resumed at
    # step 1200 ran 0.55 s a step, 0.33-0.36 s with them flushed to zero (2 threads, measured
    # through this call). Values that small carry nothing for training. GPU kernels unaffected;
    # the setting stays for the rest of the process (CPU threads of a notebook included).
    torch.set_flush_denormal(True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, local_rank)
    data = SentenceData(cfg.data)
    if data.layout not in ("uniaudio", "multistream"):
        raise ValueError(f"{cfg.data} holds {data.layout!r} bundles; the trainer reads the uniaudio and multistream "
                         "layouts")
    train_refs, val_refs = data.split(cfg.val_fraction, cfg.seed)
    val_refs = sorted(val_refs, key=lambda r: hashlib.blake2b(r.key.encode(), digest_size=8).digest())[:cfg.val_bundles]
    checked = _checked_shards(data, train_refs + val_refs, out, rank, world)
    torch.manual_seed(cfg.seed)  # initial weights from the seed, the same on every rank
    model, supports = build_model(data, cfg.model)
    model.to(device)
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    # fused: one kernel per tensor; on CPU too (clip + step of lm-tiny 9 ms vs 26 ms for the per-op loop)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=tuple(cfg.betas),
                            fused=device.type in ("cuda", "cpu"))
    step, taken = 0, 0
    last = out / "last.pt"
    if last.exists():
        ck = checkpoint.load(last)
        if ck["world"] != world or ck["workers"] != cfg.workers:
            raise ResumeMismatch(f"{last} was written by {ck['world']} process(es) with {ck['workers']} loader "
                                 f"worker(s); this run has {world} and {cfg.workers}: the data order depends on both, "
                                 "so resume with the same, or train into a new out folder")
        then = dict(ck["resume_fields"])
        if then.get("lr_decay_steps") is None:  # written before the horizon was compared: it was `steps`
            then["lr_decay_steps"] = ck.get("train_config", {}).get("steps")
        diff = config_diff(then, cfg.resume_fields())
        if diff:
            hint = ""
            if any(d.startswith("lr_decay_steps") for d in diff) and cfg.lr_decay_steps is None:
                hint = (f"\n(the cosine schedule ends at `steps` unless lr_decay_steps is set: to train on past step "
                        f"{then['lr_decay_steps']} with the schedule it was started with, set lr_decay_steps: "
                        f"{then['lr_decay_steps']}; a new schedule needs a new out folder)")
            raise ResumeMismatch(f"{last} was trained with another configuration; differing fields (then -> now):\n  "
                                 + "\n  ".join(diff) + "\nresume with the same settings, or use a new out folder"
                                 + hint)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, taken = ck["step"], ck["batches"]
        if rank == 0 and progress:
            print(f"[lm] resuming {last} at step {step} of {cfg.steps} ({taken} batches taken)", flush=True)
        if rank == 0:  # steps logged after the checkpoint by the interrupted run are redone: drop them
            for name in ("log.jsonl", "batches.jsonl", "skipped.jsonl"):
                _truncate(out / name, step)
        torch.set_rng_state(ck["rng"][rank]["torch"])
        if device.type == "cuda" and ck["rng"][rank].get("cuda") is not None:
            torch.cuda.set_rng_state(ck["rng"][rank]["cuda"], device)
    np_supports = [s.numpy() for s in supports]
    stream = BundleStream(data, train_refs, batch_rows=cfg.batch_rows, seed=cfg.seed, rank=rank, world=world,
                          workers=cfg.workers, start=taken, max_rows=data.context, supports=np_supports)
    batches = iter(loader(stream, cfg.workers, cfg.seed, pin_memory=device.type == "cuda"))
    vals, val_skipped = val_batches(data, val_refs, cfg.batch_rows, data.context, np_supports) if rank == 0 \
        else ([], [])
    ddp = model
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    fwd = torch.compile(ddp) if cfg.compile else ddp
    ctx, dtype_name = autocast(device, cfg.dtype)
    task_names = {i: t[len("<task:"):-1] for i, t in enumerate(data.vocab.specials) if t.startswith("<task:")}
    peak = peak_flops(device)
    attention = cfg.attention  # auto: flex on CUDA unless attention dropout is asked for (flex has none)
    if attention == "auto":
        attention = "flex" if device.type == "cuda" and not cfg.model.dropout else "spans"
    losses = functools.partial(_losses, device=device, loss_on_prefix=cfg.loss_on_prefix, attention=attention,
                               pad_rows=data.context, pad_id=data.vocab.id("<pad>"),
                               audio_offset=data.vocab.audio_range().offset)
    baseline = unigram_baseline(data, train_refs, val_refs) if rank == 0 and step == 0 else None
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    seen = open(out / "batches.jsonl", "a") if rank == 0 else None  # which bundles each step trained on
    if rank == 0:
        n_all, n_non_emb = model.n_params(False), model.n_params(True)
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        header = {"event": "start", "step": step, "world": world, "device": str(device), "dtype": dtype_name,
                  "parameters": n_all, "non_embedding_parameters": n_non_emb,
                  "trainable_parameters": n_train, "model": cfg.model.kind, "train_bundles": len(train_refs),
                  "val_bundles": len(val_refs) - len(val_skipped), "val_bundles_unreadable": val_skipped,
                  "peak_flops": peak, "attention": attention, "compiled": cfg.compile, "checksums": checked}
        if baseline is not None:
            header.update(baseline)
        log.write(json.dumps(header) + "\n")
        log.flush()
        if progress:
            print(f"[lm] {cfg.model.kind}: {n_all:,} parameters ({n_non_emb:,} without embeddings, {n_train:,} "
                  f"trainable), {world} process(es), {device}, "
                  f"{dtype_name}; {len(train_refs)} train / {len(val_refs) - len(val_skipped)} val bundles"
                  + (f" ({len(val_skipped)} held-out bundle(s) unreadable, left out: see log.jsonl)" if val_skipped
                     else "") + f"; checksums of {checked['shards']} shard(s) checked in {checked['seconds']} s",
                  flush=True)
            horizon = cfg.lr_decay_steps or cfg.steps
            if cfg.warmup_steps >= horizon:
                print(f"[lm] warning: warm-up ({cfg.warmup_steps} steps) is not shorter than the schedule "
                      f"({horizon} steps): the learning rate never reaches lr = {cfg.lr}", flush=True)
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc="lm", unit="step", disable=not progress or rank != 0)
    stop = _StopRequest(world, device)  # Ctrl-C / SIGTERM: finish the step, save, return
    acc: dict = defaultdict(float)
    pending: list = []
    nonfinite, last_check = torch.zeros((), dtype=torch.bool, device=device), step
    window_t0, window_rows, window_flops, skipped_total = time.time(), 0, 0.0, 0
    try:
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = cfg.lr_at(step)
            for micro in range(cfg.grad_accum):
                batch = next(batches)
                taken += 1
                if rank == 0:
                    seen.write(json.dumps({"step": step + 1, "micro": micro, "batch": batch["index"],
                                           "epoch": batch["epoch"], "keys": batch["keys"]}) + "\n")
                    seen.flush()
                if batch["skipped"] and rank == 0:
                    skipped_total += len(batch["skipped"])
                    with open(out / "skipped.jsonl", "a") as f:
                        for s in batch["skipped"]:
                            f.write(json.dumps(dict(s, step=step + 1)) + "\n")  # the step these bundles were for
                sync = contextlib.nullcontext() if (world == 1 or micro == cfg.grad_accum - 1) else ddp.no_sync()
                with sync:
                    if not batch["keys"]:  # every bundle of this batch was unusable: take part with a zero loss
                        with ctx:
                            loss, _ = losses(fwd, empty_batch(data.vocab))
                        (loss * 0.0).backward()  # through DDP, so the other ranks' all-reduce is matched
                        continue
                    with ctx:
                        loss, o = losses(fwd, batch)
                    if device.type == "cuda":  # checked at the next log or checkpoint: no wait per step
                        nonfinite = nonfinite | ~torch.isfinite(loss.detach())
                    elif not torch.isfinite(loss):
                        raise FloatingPointError(f"non-finite loss at step {step + 1} (batch {batch['index']})")
                    (loss / cfg.grad_accum).backward()
                # the per-task / per-codebook sums read values back from the device: do it at log
                # time, so a GPU never waits for the host between steps
                pending.append(({"loss": o["loss"].detach(), "valid": o["valid"], "rows": o["rows"]}, batch))
                window_rows += int((batch["doc"] >= 0).sum())
                window_flops += step_flops(model, batch["doc"], o["n_predicted"], n_audio=o["n_audio"])
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            if (step % cfg.log_every == 0 or step % cfg.checkpoint_every == 0 or step == cfg.steps) and bool(nonfinite):
                raise FloatingPointError(f"non-finite loss between steps {last_check + 1} and {step}; the "
                                         "checkpoints on disk are from before it (resume from them with a lower lr, or "
                                         "check the data)")
            if step % cfg.log_every == 0 or step % cfg.checkpoint_every == 0:
                last_check = step
            if step % cfg.log_every == 0 or step == cfg.steps:
                for o, b in pending:
                    for k, v in _breakdown(o, b, data.vocab, task_names).items():
                        acc[k] += v
                pending = []
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                dt = time.time() - window_t0
                means = _means(acc)
                rec = {"step": step, "loss": means.get("all"), "audio_loss": means.get("audio"),
                       "text_loss": means.get("text"),
                       "tasks": {k.split("/")[1]: v for k, v in means.items() if k.startswith("task/")},
                       "codebooks": {k.split("/")[1]: v for k, v in means.items() if k.startswith("codebook/")},
                       "lr": opt.param_groups[0]["lr"], "rows_per_s": round(window_rows * world / dt, 1),
                       "tokens_per_s": round(window_rows * model.cfg.n_streams * world / dt, 1),
                       "model_flops_per_s": round(window_flops * world / dt, 1),
                       "mfu": round(window_flops / dt / peak, 4) if peak else None,
                       "skipped_bundles": skipped_total, "batches": taken, "seconds": round(dt, 3)}
                if rank == 0:
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                    bar.set_postfix(audio=rec["audio_loss"], text=rec["text_loss"])
                acc = defaultdict(float)
                window_t0, window_rows, window_flops = time.time(), 0, 0.0
            if (step % cfg.val_every == 0 or step == cfg.steps) and rank == 0 and vals:
                v = evaluate(model, vals, ctx, losses, data.vocab, task_names)
                log.write(json.dumps({"step": step, "event": "val", "val_audio_loss": v.get("audio"),
                                      "val_text_loss": v.get("text"),
                                      "val_tasks": {k.split("/")[1]: x for k, x in v.items() if k.startswith("task/")}})
                          + "\n")
                log.flush()
            stopping = stop.requested(step % cfg.log_every == 0 or step == cfg.steps)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopping:
                save(out, model, opt, step, taken, cfg, data, rank, world, device)
            if after_step is not None:
                after_step(step)
            if stopping:
                if rank == 0:
                    log.write(json.dumps({"step": step, "event": "stopped", "signal": stop.name}) + "\n")
                    if progress:
                        print(f"\n[lm] {stop.name}: stopped after step {step}, saved {last}; rerun the same command to "
                              "resume", flush=True)
                break
    finally:  # an error or Ctrl-C mid-step leaves no handler of ours behind (a notebook's next Ctrl-C)
        stop.restore()
    bar.close()
    if log:
        log.close()
        seen.close()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return {"step": step, "checkpoint": str(last), "model": str(out / "model.pt"), "stopped": stop.name}


def save(out: Path, model, opt, step: int, taken: int, cfg: LMTrainConfig, data: SentenceData, rank: int,
         world: int, device: torch.device) -> None:
    """last.pt (resume: every rank's RNG gathered) and model.pt (inference), written by rank 0."""
    rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    rngs = [rng]
    if world > 1:
        import torch.distributed as dist

        rngs = [None] * world
        dist.all_gather_object(rngs, rng)
    if rank != 0:
        return
    tokens_cfg = Path(data.report["tokens"]) / "config.json"
    audio_tok = {"name": data.tokenizer["name"], "options": {}}
    if tokens_cfg.is_file():
        audio_tok["options"] = json.loads(tokens_cfg.read_text()).get("tokenizer_options", {})
    from .model import merged_state_dict

    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}  # resume: adapters kept apart
    plain = {k: v.cpu() for k, v in merged_state_dict(model).items()}  # inference: LoRA folded in
    inference = {"model": plain, "model_config": model.config_dict(), "step": step, "vocab": data.vocab.to_dict(),
                 "text_tokenizer": (data.root / "text_tokenizer.json").read_text(), "audio_tokenizer": audio_tok,
                 "tokenizer": data.tokenizer, "data": str(data.root), "kind": "uniaudio-lm"}
    resume = {"model": weights, "optimizer": opt.state_dict(), "step": step, "batches": taken, "world": world,
              "workers": cfg.workers, "resume_fields": cfg.resume_fields(), "train_config": asdict(cfg),
              "model_config": model.config_dict(), "rng": rngs}
    # one pair: both written before either is renamed, model.pt first (never behind last.pt)
    checkpoint.save_all([(inference, out / "model.pt"), (resume, out / "last.pt")])
