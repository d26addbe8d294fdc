"""`uniaudio train lm CONFIG`: train the UniAudio multi-scale LM on auditory-sentence bundles.

One loop (nanoGPT-style): AdamW, linear warm-up then cosine, gradient clipping, gradient
accumulation, bf16 autocast where the device supports it, optional torch.compile, held-out
validation, and several processes through `torchrun` (DDP; gloo on CPU, NCCL on GPU).

Resume is exact: OUT/last.pt holds model, optimizer, step, the number of batches this run's
ranks have taken (the data stream is a pure function of it) and every RNG; rerun the same
command. A resume with another world size, loader worker count or training config is
refused with the fields that differ. OUT/log.jsonl has the loss per task and per codebook,
tokens/s, model FLOP/s and MFU (on devices with a known peak); OUT/model.pt is what
`uniaudio train generate` and the `lm-ckpt:` benchmark system load.

Read top-down: `train` -> `LMRun` (set-up and resume, then `run`: one `_take_step` after another, its
micro-batches, the log window, held-out evaluation, checkpoints). The model is in model.py,
the configuration in lm_config.py, the data stream in data.py, what is measured besides the
loss in lm_metrics.py, what every trainer shares in common.py."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch

from .. import checkpoint, storage
from ..config import config_diff
from .attention import attention_plan
from .common import StopRequest, autocast, distributed, flush_subnormals, resolve_device, truncate_log
from .data import BundleStream, SentenceData, check_shards, empty_batch, loader, val_batches
from .flops import peak_flops, step_flops
from .llm import apply_lora, llama_shape, load_llama, merged_state_dict
from .lm_config import LMSpec, LMTrainConfig, ResumeMismatch
from .lm_metrics import breakdown, evaluate, means, unigram_baseline
from ..mirror import Mirror
from .model import ModelConfig, make_model, predicted_rows, stream_supports

__all__ = ["LMSpec", "LMTrainConfig", "ResumeMismatch", "build_model", "train"]


def train(cfg: LMTrainConfig, progress: bool = True, after_step=None) -> dict:
    """Train (or resume) as `cfg` says. after_step(step), when given, is called at the end of
    every step, after its logging and checkpoint (benchmarks/train_throughput.py runs its
    baseline's steps there, so both loops see the same machine at the same moments)."""
    return LMRun(cfg, progress).run(after_step)


def build_model(data: SentenceData, spec: LMSpec):
    """(model, per-slot supports for the data reader). multistream with `middle`: the Llama's
    shape fills the config, its weights the middle; with lora_rank the middle and the LLM's
    embedding, head and final norm stay frozen and only adapters (and the experts) train."""
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


class LMRun:
    """One run of `train lm`: the set-up (data, model, optimizer, resume, loader) in __init__,
    then `run` takes optimizer steps until cfg.steps or a stop request."""

    def __init__(self, cfg: LMTrainConfig, progress: bool):
        self.cfg, self.progress = cfg, progress
        self.rank, self.world, local_rank = distributed()
        # an s3:// out: the run works in a local copy (pulled first: a resume on any machine)
        # and pushes it after each checkpoint (`mirror.Mirror`)
        self.remote = Mirror(cfg.out) if storage.is_uri(cfg.out) else None
        if self.remote and local_rank == 0:
            self.remote.pull()
        if self.remote and self.world > 1:
            import torch.distributed as dist

            dist.barrier()  # every node's copy pulled before anyone reads it
        self.out = out = self.remote.local if self.remote else Path(cfg.out)
        if self.rank == 0:
            out.mkdir(parents=True, exist_ok=True)
        flush_subnormals()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = device = resolve_device(cfg.device, local_rank)
        self.data = data = SentenceData(cfg.data)
        if data.layout not in ("uniaudio", "multistream"):
            raise ValueError(f"{cfg.data} holds {data.layout!r} bundles; the trainer reads the uniaudio and "
                             "multistream layouts")
        self.train_refs, val_refs = data.split(cfg.val_fraction, cfg.seed)
        self.val_refs = sorted(val_refs, key=lambda r: hashlib.blake2b(r.key.encode(), digest_size=8).digest()
                               )[:cfg.val_bundles]
        self.checked = check_shards(data, self.train_refs + self.val_refs, out, self.rank, self.world)
        torch.manual_seed(cfg.seed)  # initial weights from the seed, the same on every rank
        self.model, supports = build_model(data, cfg.model)
        self.model.to(device)
        decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() < 2]
        # fused: one kernel per tensor; on CPU too (clip + step of lm-tiny 9 ms vs 26 ms for the per-op loop)
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=tuple(cfg.betas),
                                     fused=device.type in ("cuda", "cpu"))
        self.step, self.taken = self._resume(out / "last.pt")
        np_supports = [s.numpy() for s in supports]
        stream = BundleStream(data, self.train_refs, batch_rows=cfg.batch_rows, seed=cfg.seed, rank=self.rank,
                              world=self.world, workers=cfg.workers, start=self.taken, max_rows=data.context,
                              supports=np_supports)
        self.batches = iter(loader(stream, cfg.workers, cfg.seed, pin_memory=device.type == "cuda"))
        self.vals, self.val_skipped = val_batches(data, self.val_refs, cfg.batch_rows, data.context, np_supports) \
            if self.rank == 0 else ([], [])
        self.ddp = self.model
        if self.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.fwd = torch.compile(self.ddp) if cfg.compile else self.ddp
        self.ctx, self.dtype_name = autocast(device, cfg.dtype)
        self.task_names = {i: t[len("<task:"):-1] for i, t in enumerate(data.vocab.specials) if t.startswith("<task:")}
        self.peak = peak_flops(device)
        self.attention = cfg.attention  # auto: flex on CUDA unless attention dropout is asked for (flex has none)
        if self.attention == "auto":
            self.attention = "flex" if device.type == "cuda" and not cfg.model.dropout else "spans"
        self.losses = functools.partial(_losses, device=device, loss_on_prefix=cfg.loss_on_prefix,
                                        attention=self.attention, pad_rows=data.context,
                                        pad_id=data.vocab.id("<pad>"), audio_offset=data.vocab.audio_range().offset)

    def _resume(self, last: Path) -> tuple[int, int]:
        """(step, batches taken) from OUT/last.pt when it exists (refused, naming the fields, when it
        was written by another world size, worker count or training config); (0, 0) otherwise."""
        if not last.exists():
            return 0, 0
        cfg, rank = self.cfg, self.rank
        ck = checkpoint.load_training_state(last)
        if ck["world"] != self.world or ck["workers"] != cfg.workers:
            raise ResumeMismatch(f"{last} was written by {ck['world']} process(es) with {ck['workers']} loader "
                                 f"worker(s); this run has {self.world} and {cfg.workers}: the data order depends on "
                                 "both, so resume with the same, or train into a new out folder")
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
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        step, taken = ck["step"], ck["batches"]
        if rank == 0 and self.progress:
            print(f"[lm] resuming {last} at step {step} of {cfg.steps} ({taken} batches taken)", flush=True)
        if rank == 0:  # steps logged after the checkpoint by the interrupted run are redone: drop them
            for name in ("log.jsonl", "batches.jsonl", "skipped.jsonl"):
                truncate_log(self.out / name, step)
        checkpoint.restore_rng(ck["rng"][rank], self.device)
        return step, taken

    def _open_logs(self) -> None:
        """OUT/log.jsonl (its start record: sizes, device, data, unigram bars on a fresh run) and
        OUT/batches.jsonl (which bundles each step trained on), rank 0 only."""
        self.log = self.seen = None
        if self.rank != 0:
            return
        cfg, model = self.cfg, self.model
        baseline = unigram_baseline(self.data, self.train_refs, self.val_refs) if self.step == 0 else None
        self.log, self.seen = open(self.out / "log.jsonl", "a"), open(self.out / "batches.jsonl", "a")
        n_all, n_non_emb = model.n_params(False), model.n_params(True)
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_val = len(self.val_refs) - len(self.val_skipped)
        header = {"event": "start", "step": self.step, "world": self.world, "device": str(self.device),
                  "dtype": self.dtype_name, "parameters": n_all, "non_embedding_parameters": n_non_emb,
                  "trainable_parameters": n_train, "model": cfg.model.kind, "train_bundles": len(self.train_refs),
                  "val_bundles": n_val, "val_bundles_unreadable": self.val_skipped, "peak_flops": self.peak,
                  "attention": self.attention, "compiled": cfg.compile, "checksums": self.checked}
        if baseline is not None:
            header.update(baseline)
        self._write(header)
        if not self.progress:
            return
        print(f"[lm] {cfg.model.kind}: {n_all:,} parameters ({n_non_emb:,} without embeddings, {n_train:,} "
              f"trainable), {self.world} process(es), {self.device}, {self.dtype_name}; {len(self.train_refs)} train "
              f"/ {n_val} val bundles"
              + (f" ({len(self.val_skipped)} held-out bundle(s) unreadable, left out: see log.jsonl)"
                 if self.val_skipped else "")
              + f"; checksums of {self.checked['shards']} shard(s) checked in {self.checked['seconds']} s", flush=True)
        horizon = cfg.lr_decay_steps or cfg.steps
        if cfg.warmup_steps >= horizon:
            print(f"[lm] warning: warm-up ({cfg.warmup_steps} steps) is not shorter than the schedule "
                  f"({horizon} steps): the learning rate never reaches lr = {cfg.lr}", flush=True)

    def _write(self, record: dict) -> None:
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()

    def _publish(self) -> None:
        """An s3:// out: upload what the last checkpoint changed (rank 0; checkpoint before logs
        never matters: a resume truncates the logs to the checkpoint's step)."""
        if self.remote is None or self.rank != 0:
            return
        for f in (self.log, self.seen):
            if f is not None and not f.closed:
                f.flush()
        self.remote.push()

    def where(self, name: str) -> str:
        """Where a file of the output is, as the user named the output (a URI or a path)."""
        return storage.join(self.cfg.out, name) if self.remote else str(self.out / name)

    def run(self, after_step=None) -> dict:
        from tqdm import tqdm

        cfg = self.cfg
        self._open_logs()
        self.bar = tqdm(total=cfg.steps, initial=self.step, desc="lm", unit="step",
                        disable=not self.progress or self.rank != 0)
        stop = StopRequest(self.world, self.device)  # Ctrl-C / SIGTERM: finish the step, save, return
        self.acc, self.pending, self.skipped_total = defaultdict(float), [], 0
        self.nonfinite, self.last_check = torch.zeros((), dtype=torch.bool, device=self.device), self.step
        self.window = [time.time(), 0, 0.0]  # start, rows, model FLOPs
        try:
            while self.step < cfg.steps:
                self._take_step()
                step = self.step
                if step % cfg.log_every == 0 or step == cfg.steps:
                    self._log_window()
                if (step % cfg.val_every == 0 or step == cfg.steps) and self.rank == 0 and self.vals:
                    v = evaluate(self.model, self.vals, self.ctx, self.losses, self.data.vocab, self.task_names)
                    self._write({"step": step, "event": "val", "val_audio_loss": v.get("audio"),
                                 "val_text_loss": v.get("text"),
                                 "val_tasks": {k.split("/")[1]: x for k, x in v.items() if k.startswith("task/")}})
                stopping = stop.requested(step % cfg.log_every == 0 or step == cfg.steps)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopping:
                    save(self.out, self.model, self.opt, step, self.taken, cfg, self.data, self.rank, self.world,
                         self.device)
                    self._publish()
                if after_step is not None:
                    after_step(step)
                if stopping:
                    if self.rank == 0:
                        self.log.write(json.dumps({"step": step, "event": "stopped", "signal": stop.name}) + "\n")
                        if self.progress:
                            print(f"\n[lm] {stop.name}: stopped after step {step}, saved {self.where('last.pt')}; "
                                  "rerun the same command to resume", flush=True)
                    break
        finally:  # an error or Ctrl-C mid-step leaves no handler of ours behind (a notebook's next Ctrl-C)
            stop.restore()
        self.bar.close()
        if self.log:
            self.log.close()
            self.seen.close()
        self._publish()
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
        return {"step": self.step, "checkpoint": self.where("last.pt"), "model": self.where("model.pt"),
                "stopped": stop.name}

    def _take_step(self) -> None:
        """One optimizer step: cfg.grad_accum micro-batches forward and backward, clip, update."""
        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr_at(self.step)
        for micro in range(cfg.grad_accum):
            batch = next(self.batches)
            self.taken += 1
            self._record_batch(batch, micro)
            sync = contextlib.nullcontext() if (self.world == 1 or micro == cfg.grad_accum - 1) else self.ddp.no_sync()
            with sync:
                if not batch["keys"]:  # every bundle of this batch was unusable: take part with a zero loss
                    with self.ctx:
                        loss, _ = self.losses(self.fwd, empty_batch(self.data.vocab))
                    (loss * 0.0).backward()  # through DDP, so the other ranks' all-reduce is matched
                    continue
                with self.ctx:
                    loss, o = self.losses(self.fwd, batch)
                if self.device.type == "cuda":  # checked at the next log or checkpoint: no wait per step
                    self.nonfinite = self.nonfinite | ~torch.isfinite(loss.detach())
                elif not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss at step {self.step + 1} (batch {batch['index']})")
                (loss / cfg.grad_accum).backward()
            # the per-task / per-codebook sums read values back from the device: done at log time,
            # so a GPU never waits for the host between steps
            self.pending.append(({"loss": o["loss"].detach(), "valid": o["valid"], "rows": o["rows"]}, batch))
            self.window[1] += int((batch["doc"] >= 0).sum())
            self.window[2] += step_flops(self.model, batch["doc"], o["n_predicted"], n_audio=o["n_audio"])
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        self.bar.update(1)
        step = self.step
        if (step % cfg.log_every == 0 or step % cfg.checkpoint_every == 0 or step == cfg.steps) and bool(self.nonfinite):
            raise FloatingPointError(f"non-finite loss between steps {self.last_check + 1} and {step}; the "
                                     "checkpoints on disk are from before it (resume from them with a lower lr, or "
                                     "check the data)")
        if step % cfg.log_every == 0 or step % cfg.checkpoint_every == 0:
            self.last_check = step

    def _record_batch(self, batch: dict, micro: int) -> None:
        """OUT/batches.jsonl: the bundles of this micro-batch; OUT/skipped.jsonl: those left out, why."""
        if self.rank != 0:
            return
        self.seen.write(json.dumps({"step": self.step + 1, "micro": micro, "batch": batch["index"],
                                    "epoch": batch["epoch"], "keys": batch["keys"]}) + "\n")
        self.seen.flush()
        if batch["skipped"]:
            self.skipped_total += len(batch["skipped"])
            with open(self.out / "skipped.jsonl", "a") as f:
                for s in batch["skipped"]:
                    f.write(json.dumps(dict(s, step=self.step + 1)) + "\n")  # the step these bundles were for

    def _log_window(self) -> None:
        """The log record of the steps since the last one: losses per task and codebook, speed, MFU."""
        for o, b in self.pending:
            for k, v in breakdown(o, b, self.data.vocab, self.task_names).items():
                self.acc[k] += v
        self.pending = []
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t0, rows, flops = self.window
        dt, world = time.time() - t0, self.world
        m = means(self.acc)
        rec = {"step": self.step, "loss": m.get("all"), "audio_loss": m.get("audio"), "text_loss": m.get("text"),
               "tasks": {k.split("/")[1]: v for k, v in m.items() if k.startswith("task/")},
               "codebooks": {k.split("/")[1]: v for k, v in m.items() if k.startswith("codebook/")},
               "lr": self.opt.param_groups[0]["lr"], "rows_per_s": round(rows * world / dt, 1),
               "tokens_per_s": round(rows * self.model.cfg.n_streams * world / dt, 1),
               "model_flops_per_s": round(flops * world / dt, 1),
               "mfu": round(flops / dt / self.peak, 4) if self.peak else None,
               "skipped_bundles": self.skipped_total, "batches": self.taken, "seconds": round(dt, 3)}
        if self.rank == 0:
            self._write(rec)
            self.bar.set_postfix(audio=rec["audio_loss"], text=rec["text_loss"])
        self.acc = defaultdict(float)
        self.window = [time.time(), 0, 0.0]


def save(out: Path, model, opt, step: int, taken: int, cfg: LMTrainConfig, data: SentenceData, rank: int,
         world: int, device: torch.device) -> None:
    """model.pt (inference: LoRA folded in, vocabulary and tokenizers) and last.pt (the training
    state, `checkpoint.training_state`, with every rank's RNG gathered), written by rank 0."""
    rngs = [checkpoint.rng_state(device)]
    if world > 1:
        import torch.distributed as dist

        rngs = [None] * world
        dist.all_gather_object(rngs, checkpoint.rng_state(device))
    if rank != 0:
        return
    tokens_cfg = storage.join(data.report["tokens"], "config.json")
    audio_tok = {"name": data.tokenizer["name"], "options": {}}
    if storage.exists(tokens_cfg):
        audio_tok["options"] = json.loads(storage.read_text(tokens_cfg)).get("tokenizer_options", {})
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}  # resume: adapters kept apart
    plain = {k: v.cpu() for k, v in merged_state_dict(model).items()}  # inference: LoRA folded in
    inference = {"model": plain, "model_config": model.config_dict(), "step": step, "vocab": data.vocab.to_dict(),
                 "text_tokenizer": storage.read_text(storage.join(data.root, "text_tokenizer.json")),
                 "audio_tokenizer": audio_tok, "tokenizer": data.tokenizer, "data": data.root, "kind": "uniaudio-lm",
                 "trained_tasks": sorted(t for t, n in data.report.get("tasks", {}).items() if n)}
    sem = storage.join(data.report["tokens"], "semantic.json")  # vc: which content codes it learned from
    if storage.exists(sem):
        inference["semantic_tokenizer"] = json.loads(storage.read_text(sem))
    fronts = storage.join(data.root, "text_frontends.json")  # sentence outputs before issue 43 have none
    if storage.exists(fronts):
        inference["text_frontends"] = json.loads(storage.read_text(fronts))
    resume = checkpoint.training_state(weights, opt.state_dict(), step, asdict(cfg), rngs, batches=taken, world=world,
                                       workers=cfg.workers, resume_fields=cfg.resume_fields(),
                                       model_config=model.config_dict())
    # one pair: both written before either is renamed, model.pt first (never behind last.pt)
    checkpoint.save_all([(inference, out / "model.pt"), (resume, out / "last.pt")])
