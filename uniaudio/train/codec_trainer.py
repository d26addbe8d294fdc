"""`uniaudio train codec CONFIG`: train the UniAudio-style codec on audio from manifests.

Data order and crops are a pure function of (seed, step), and the checkpoint holds model,
optimizer, step and torch RNG, so a resumed run is bit-identical to an uninterrupted one.
Losses (multi-resolution STFT + log-mel L1 + commitment, and with adv_weight > 0 a
multi-scale STFT discriminator's hinge + feature matching) go to OUT/log.jsonl."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import audio, checkpoint, manifest, storage
from ..config import ConfigError
from ..tokenize.codec_model import DECODERS, Codec, CodecConfig
from .codec_losses import MultiScaleSTFTDiscriminator, SpectralLoss, discriminator_loss, generator_losses
from .common import UnreadableData, listing, resolve_device, warmup_cosine


@dataclass
class CodecSpec:
    channels: int = 16
    latent_dim: int = 128
    n_codebooks: int = 8
    codebook_size: int = 1024
    decoder: str = "seanet"  # a key of tokenize.codec_model.DECODERS
    decoder_dim: int = 192
    decoder_layers: int = 8


@dataclass
class CodecTrainConfig:
    manifests: list[str]
    out: str
    model: CodecSpec = field(default_factory=CodecSpec)
    steps: int = 2000
    batch_size: int = 8
    segment_seconds: float = 1.0
    lr: float = 3e-4
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    commit_weight: float = 0.25
    # learning rate: linear warm-up, then cosine decay to lr * min_lr_ratio at step lr_decay_steps
    # (a fixed horizon, not `steps`, so that stopping early and resuming changes nothing);
    # lr_decay_steps None = constant lr after warm-up
    warmup_steps: int = 0
    lr_decay_steps: int | None = None
    min_lr_ratio: float = 0.1
    # quantizer dropout: each step uses n_q ~ uniform(1..n_codebooks), except that with
    # probability focus_prob it uses focus_codebooks (the LM's operating point: 3 = 1.5 kbps)
    focus_codebooks: int | None = None
    focus_prob: float = 0.0
    # level augmentation: each crop is scaled by a gain drawn uniformly in [lo, hi] dB (peak capped
    # at 0.99), to widen the loudness the codec sees. Why: the stage-5 weights scored PESQ-wb 1.36
    # on LJ Speech as is and 1.42 with it raised 6 dB to the training speech's level (stage 6,
    # trained with -10..+4 dB, still codes loud input better: benchmarks/codec_level.py).
    gain_db: list[float] | None = None  # [lo, hi]
    threads: int | None = None  # torch intra-op threads (default: torch's choice)
    # "auto" = cuda when available, else cpu. Resume is bit-exact on cpu; on cuda, scatter
    # kernels (the codebooks' EMA index_add_) are not deterministic, so only close.
    device: str = "auto"
    # decode every file once into memory and crop from there (same crops as reading from disk
    # up to resampler edge effects): needed to keep a GPU fed; costs 64 kB of RAM per second of audio
    preload: bool = False
    # start a new run from a codec checkpoint (e.g. the shipped one) instead of random weights;
    # the optimizer starts fresh. Ignored when OUT/last.pt exists (that run resumes).
    init_from: str | None = None
    # adversarial training, off while adv_weight is 0: a multi-scale STFT discriminator (hinge
    # loss) plus feature matching from step adv_start on. Best started on a trained codec
    # (init_from the shipped one); enabling it on a run saved without it starts a fresh one.
    adv_weight: float = 0.0
    feat_weight: float = 2.0
    adv_start: int = 0
    disc_channels: int = 32
    disc_lr_ratio: float = 1.0  # discriminator lr = codec lr (same schedule) x this
    # never train on substitutes: a crop that cannot be read is left out of its batch and
    # logged (OUT/unreadable.jsonl); above this share of a batch the run stops with an error
    max_unreadable_share: float = 0.0
    # files listed in the manifests but missing or unreadable at start: an error naming them,
    # unless this is true (then training uses the rest and the model card counts them)
    skip_missing_files: bool = False

    def validate(self) -> None:
        if not self.manifests:
            raise ConfigError("manifests", "at least one manifest is required")
        if storage.is_uri(self.out):  # its resume files are written in place, not through a mirror
            raise ConfigError("out", "a local folder (only `train lm` writes to object storage; copy the folder up "
                                     "after training, e.g. `aws s3 sync`)")
        for k in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, k) < 1:
                raise ConfigError(k, "must be >= 1")
        if self.segment_seconds <= 0.05:
            raise ConfigError("segment_seconds", "must be > 0.05")
        if self.warmup_steps < 0:
            raise ConfigError("warmup_steps", "must be >= 0")
        if self.lr_decay_steps is not None and self.lr_decay_steps <= self.warmup_steps:
            raise ConfigError("lr_decay_steps", f"must be > warmup_steps ({self.warmup_steps})")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("min_lr_ratio", "must be in [0, 1]")
        if self.focus_codebooks is not None and not 1 <= self.focus_codebooks <= self.model.n_codebooks:
            raise ConfigError("focus_codebooks", f"must be in 1..model.n_codebooks ({self.model.n_codebooks})")
        if not 0 <= self.focus_prob <= 1:
            raise ConfigError("focus_prob", "must be in [0, 1]")
        if self.model.decoder not in DECODERS:
            raise ConfigError("model.decoder", f"must be one of {', '.join(DECODERS)}, got {self.model.decoder!r}")
        for k in ("adv_weight", "feat_weight", "adv_start"):
            if getattr(self, k) < 0:
                raise ConfigError(k, "must be >= 0")
        if self.disc_channels < 1:
            raise ConfigError("disc_channels", "must be >= 1")
        if self.disc_lr_ratio <= 0:
            raise ConfigError("disc_lr_ratio", "must be > 0")
        if not 0 <= self.max_unreadable_share < 1:
            raise ConfigError("max_unreadable_share", f"must be in [0, 1), got {self.max_unreadable_share}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError("device", f"must be auto, cpu or cuda[:N], got {self.device!r}")
        if self.focus_prob > 0 and self.focus_codebooks is None:
            raise ConfigError("focus_codebooks", "is required when focus_prob > 0")
        if self.gain_db is not None:
            g = self.gain_db
            if len(g) != 2 or not g[0] <= g[1]:
                raise ConfigError("gain_db", f"must be [lo, hi] in dB with lo <= hi, got {g!r}")
            if max(abs(g[0]), abs(g[1])) > 40:
                raise ConfigError("gain_db", f"gains beyond +-40 dB make silence or clipping, got {g!r}")

    def lr_at(self, step: int) -> float:
        """Learning rate for the update that follows `step` completed steps (a fixed horizon:
        lr_decay_steps, not `steps`, so stopping early and resuming changes nothing)."""
        return warmup_cosine(step, self.lr, self.warmup_steps, self.lr_decay_steps, self.min_lr_ratio)

    def n_q_at(self, step: int) -> int:
        """Codebooks used at `step`: a pure function of (seed, step), so resume is exact."""
        rng = np.random.default_rng([self.seed, step, 7])
        n_q = int(rng.integers(1, self.model.n_codebooks + 1))
        if self.focus_prob > 0 and rng.random() < self.focus_prob:
            return self.focus_codebooks
        return n_q


class CropSampler:
    """Random fixed-length crops; which file and where is decided by (seed, step) alone.

    Every file is checked before training starts (missing or unreadable ones are an error
    naming them, or left out and counted with `skip_bad`); a crop that fails later is left
    out of its batch, never replaced by silence or by another file."""

    def __init__(self, manifests: list[str], sr: int, seconds: float, seed: int, preload: bool = False,
                 gain_db: list[float] | None = None, *, skip_bad: bool = False, max_bad_share: float = 0.0):
        self.sr, self.n, self.seed, self.gain_db = sr, int(seconds * sr), seed, gain_db
        self.max_bad_share = max_bad_share
        self.items, self.bad_files, self.short_files, self.listed = [], [], 0, 0
        for m in manifests:
            for r in manifest.iter_records(m):
                self.listed += 1
                if r.duration is None or not os.path.isfile(r.path):
                    try:  # the header says why a file cannot be used (missing, permission, truncated, ...)
                        dur = audio.info(r.path).duration
                    except audio.AudioError as e:
                        self.bad_files.append((r.path, e.reason))
                        continue
                    dur = r.duration if r.duration is not None else dur
                else:
                    dur = r.duration
                if dur >= seconds:
                    self.items.append((r.path, r.offset, dur))
                else:
                    self.short_files += 1
        if self.bad_files and not skip_bad:
            raise UnreadableData(
                f"{len(self.bad_files)} of {self.listed} files in {', '.join(map(str, manifests))} cannot be read: "
                f"{listing(self.bad_files)}. Fix the paths (a manifest's relative paths are relative to its own "
                f"folder), or set skip_missing_files: true to train on the rest")
        if not self.items:
            raise UnreadableData(f"no audio of at least {seconds}s in {manifests} ({self.listed} rows, "
                                 f"{self.short_files} shorter, {len(self.bad_files)} unreadable)")
        self.cache: dict[tuple[str, float], np.ndarray] | None = self._preload() if preload else None

    def _preload(self) -> dict[tuple[str, float], np.ndarray]:
        """Each item's whole window at the model rate; an unreadable file is left out here and
        fails at crop time (counted like a crop read from disk)."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        def read(item):
            path, off, dur = item
            try:
                return (path, off), audio.load(path, self.sr, offset=off, duration=dur)[0]
            except audio.AudioError:
                return (path, off), None

        with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
            loaded = list(tqdm(pool.map(read, self.items), total=len(self.items), desc="preload", unit="file"))
        return {k: v for k, v in loaded if v is not None}

    def _crop(self, path: str, off: float, start: float) -> np.ndarray:
        if self.cache is None:
            return audio.load(path, self.sr, offset=start, duration=self.n / self.sr)[0]
        wav = self.cache.get((path, off))
        if wav is None:
            raise audio.AudioError(path, audio.UNREADABLE, "unreadable at preload")
        i = int(round((start - off) * self.sr))
        return wav[i : i + self.n]

    def batch(self, step: int, size: int) -> tuple[torch.Tensor, list[tuple[str, str]]]:
        """(crops, unreadable): crops that could not be read are left out of the batch and
        returned as (path, reason); more than `max_bad_share` of the batch is an error."""
        rng = np.random.default_rng([self.seed, step])
        out = np.zeros((size, self.n), np.float32)
        ok, bad = [], []
        for b in range(size):
            path, off, dur = self.items[rng.integers(len(self.items))]
            start = off + rng.uniform(0, dur - self.n / self.sr)
            try:
                wav = self._crop(path, off, start)
            except audio.AudioError as e:
                bad.append((path, f"{e.reason}: {e.detail}"))
                continue
            out[b, : len(wav)] = wav[: self.n]
            ok.append(b)
        if len(bad) > self.max_bad_share * size:
            raise UnreadableData(f"step {step}: {len(bad)} of {size} crops could not be read (limit: "
                                 f"max_unreadable_share {self.max_bad_share}): {listing(bad)}")
        if self.gain_db is not None:
            # a separate stream, so crops are the same with and without augmentation
            gains = 10 ** (np.random.default_rng([self.seed, step, 11]).uniform(*self.gain_db, size) / 20)
            peak = np.abs(out).max(axis=1)
            gains = np.minimum(gains, 0.99 / np.maximum(peak, 1e-4))
            out *= gains[:, None].astype(np.float32)
        return torch.from_numpy(out[ok] if bad else out), bad


def train(cfg: CodecTrainConfig, progress: bool = True) -> dict:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model_cfg = CodecConfig(**asdict(cfg.model))
    torch.manual_seed(cfg.seed)  # before building the model: initial weights come from the seed
    model = Codec(model_cfg)
    device = resolve_device(cfg.device)
    model.to(device)  # before the optimizer and any weight loading: both follow the parameters
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.8, 0.99))
    disc = disc_opt = None
    if cfg.adv_weight > 0:
        disc = MultiScaleSTFTDiscriminator(channels=cfg.disc_channels).to(device).train()
        disc_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.lr * cfg.disc_lr_ratio, betas=(0.5, 0.9))
    step = 0
    last = out / "last.pt"
    if last.exists():
        ck = checkpoint.load_training_state(last)
        trained = {**asdict(CodecSpec()), **ck["train_config"]["model"]}  # fields added later: their defaults
        if trained != asdict(cfg.model):
            raise RuntimeError(f"{last} was trained with model {trained}; "
                               f"config asks for {asdict(cfg.model)}: use a new out folder")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if disc is not None and ck.get("disc") is not None:
            disc.load_state_dict(ck["disc"])
            disc_opt.load_state_dict(ck["disc_optimizer"])
        step = ck["step"]
        checkpoint.restore_rng(ck["rng"][0], device)
    elif cfg.init_from:
        init_weights(model, cfg.init_from)
    sampler = CropSampler(cfg.manifests, model_cfg.sample_rate, cfg.segment_seconds, cfg.seed, cfg.preload,
                          cfg.gain_db, skip_bad=cfg.skip_missing_files, max_bad_share=cfg.max_unreadable_share)
    if sampler.bad_files:
        print(f"codec: leaving out {len(sampler.bad_files)} unreadable files (skip_missing_files): "
              f"{listing(sampler.bad_files, 3)}")
    loss_fn = SpectralLoss(model_cfg.sample_rate).to(device)
    model.train()
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc="codec", unit="step", disable=not progress)
    t0 = time.time()
    with open(out / "log.jsonl", "a") as log:
        while step < cfg.steps:
            x, unreadable = sampler.batch(step, cfg.batch_size)
            x = x.to(device, non_blocking=True)
            if unreadable:
                with open(out / "unreadable.jsonl", "a") as f:
                    f.write(json.dumps({"step": step, "crops": [{"path": p, "reason": r} for p, r in unreadable]}) + "\n")
            n_q = cfg.n_q_at(step)
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(step)
            y, _, commit = model(x, n_q)
            stft, mel = loss_fn(y, x)
            loss = stft + mel + cfg.commit_weight * commit
            gan = {}
            if disc is not None and step >= cfg.adv_start:
                for group in disc_opt.param_groups:
                    group["lr"] = cfg.lr_at(step) * cfg.disc_lr_ratio
                d_loss = discriminator_loss(disc, x, y)
                disc_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                disc_opt.step()
                adv, feat = generator_losses(disc, x, y)
                loss = loss + cfg.adv_weight * adv + cfg.feat_weight * feat
                gan = {"d_loss": d_loss, "adv": adv, "feat": feat}
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step}: stft={stft} mel={mel} commit={commit}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = {"step": step, "loss": float(loss.detach()), "stft": float(stft.detach()),
                       "mel": float(mel.detach()), "commit": float(commit.detach()), "n_q": n_q,
                       **{k: float(v.detach()) for k, v in gan.items()},
                       "lr": opt.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2)}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{rec['loss']:.3f}", mel=f"{rec['mel']:.3f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save(out, model, opt, step, cfg, disc, disc_opt)
    bar.close()
    write_model_card(out, cfg, sampler, step, device)
    return {"step": step, "checkpoint": str(last)}


def init_weights(model: Codec, path: str) -> None:
    """Load a codec checkpoint's weights into `model` (same architecture). Inference checkpoints
    carry no codebook EMA state: it restarts from the codebooks, as after k-means init."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"init_from: codec checkpoint not found: {path}")
    ck = checkpoint.load(path)
    src = Codec.from_checkpoint(ck)
    if asdict(src.config) != asdict(model.config):
        raise RuntimeError(f"init_from {path}: its codec config {asdict(src.config)} differs from the "
                           f"config's model {asdict(model.config)}")
    state = src.state_dict()
    for i in range(len(model.quantizer.layers)):
        key = f"quantizer.layers.{i}."
        if key + "ema_sum" not in ck["model"]:
            state[key + "ema_sum"] = state[key + "codebook"].clone()
            state[key + "ema_count"] = torch.ones_like(state[key + "ema_count"])
    model.load_state_dict(state)  # copies into the parameters' device


def write_model_card(out: Path, cfg: CodecTrainConfig, sampler: CropSampler, step: int,
                     device: torch.device | None = None) -> Path:
    """OUT/MODEL_CARD.md: data, steps, command, final losses. Quality is appended by
    `benchmarks/codec_quality.py --card`."""
    import sys

    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    bad_crops = 0
    if (out / "unreadable.jsonl").exists():
        bad_crops = sum(len(json.loads(line)["crops"]) for line in (out / "unreadable.jsonl").read_text().splitlines()
                        if line.strip())
    tail = log[-10:]
    mean = {k: sum(r[k] for r in tail) / len(tail) for k in ("loss", "stft", "mel")} if tail else {}
    hours = sum(d for _, _, d in sampler.items) / 3600
    c = cfg.model
    schedule = (f"warm-up {cfg.warmup_steps} steps, cosine to x{cfg.min_lr_ratio} at step {cfg.lr_decay_steps}"
                if cfg.lr_decay_steps else f"warm-up {cfg.warmup_steps} steps, then constant")
    dropout = f"quantizer dropout n_q ~ U(1..{c.n_codebooks})" + (
        f", n_q = {cfg.focus_codebooks} with probability {cfg.focus_prob}" if cfg.focus_prob else "")
    if cfg.gain_db is not None:
        dropout += f"; random gain {cfg.gain_db[0]:+g}..{cfg.gain_db[1]:+g} dB per crop"
    if cfg.adv_weight > 0:
        dropout += (f"; adversarial: multi-scale STFT discriminator (width {cfg.disc_channels}) from step "
                    f"{cfg.adv_start}, hinge weight {cfg.adv_weight}, feature matching weight {cfg.feat_weight}")
    text = f"""# uniaudio-codec model card

- **Model**: SEANet-style encoder, {c.decoder} decoder, residual VQ, {c.n_codebooks} codebooks x {c.codebook_size} codes,
  latent {c.latent_dim}, base width {c.channels}, 16 kHz, 50 Hz frames (3 codebooks = 1.5 kbps).
- **Data**: {len(sampler.items)} files, {hours:.2f} h, from {', '.join(cfg.manifests)} ({sampler.listed} listed; {sampler.short_files} shorter than a crop; {len(sampler.bad_files)} unreadable and left out; {bad_crops} crops unreadable during training, left out of their batches).
- **Training**: {step} steps, batch {cfg.batch_size} x {cfg.segment_seconds} s crops, AdamW lr {cfg.lr} ({schedule}), {dropout}, seed {cfg.seed}{f", on {torch.cuda.get_device_name(device)}" if device is not None and device.type == "cuda" else ""}.
- **Decoder**: {c.decoder}{f" (width {c.decoder_dim}, {c.decoder_layers} ConvNeXt blocks, iSTFT head)" if c.decoder == "istft" else " (transposed convolutions 8,5,4,2)"}{f"; initialised from {cfg.init_from}" if cfg.init_from else ""}.
- **Command**: `uniaudio train codec` ({' '.join(sys.argv[1:]) or 'API'})
- **Final losses** (mean of the last {len(tail)} logged steps): {', '.join(f'{k} {v:.3f}' for k, v in mean.items())}
- **Held-out test set**: ljspeech-mini was not used for training.

## Measured quality
"""
    card = out / "MODEL_CARD.md"
    card.write_text(text)
    return card


def save(out: Path, model: Codec, opt, step: int, cfg: CodecTrainConfig, disc=None, disc_opt=None) -> None:
    """codec.pt (weights + config only, for inference) and last.pt (the training state,
    `checkpoint.training_state`), saved as one: codec.pt first."""
    state = model.checkpoint()
    resume = checkpoint.training_state(
        state["model"], opt.state_dict(), step, asdict(cfg), [checkpoint.rng_state(next(model.parameters()).device)],
        config=state["config"], disc=None if disc is None else disc.state_dict(),
        disc_optimizer=None if disc_opt is None else disc_opt.state_dict())
    inference = {**model.checkpoint(inference=True), "step": step, "train_config": asdict(cfg)}
    checkpoint.save_all([(inference, out / "codec.pt"), (resume, out / "last.pt")])
