"""The factorized low-rate tokenizer (issue 19): round trip, rates and errors; exact resume after
kill -9; front ends; FiLM; bad data. A tiny model trained once on the demo speech."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from uniaudio import manifest
from uniaudio.config import ConfigError, from_dict
from uniaudio.pipeline.recipes import records
from uniaudio.tokenize import TokenizerError, get
from uniaudio.tokenize.factorized_model import FiLM
from uniaudio.tokenize.front_end import LogMelFrontEnd, WhisperFrontEnd
from uniaudio.train.common import UnreadableData
from uniaudio.train.factorized_trainer import FactorizedTrainConfig, normalize_text, train

BIN = Path(sys.executable).parent
TINY = {"dim": 32, "heads": 2, "pool_layers": 1, "semantic_layers": 1, "vq_dim": 8, "codebook_size": 64,
        "acoustic_blocks": 1, "decoder_dim": 32, "decoder_layers": 1}


@pytest.fixture(scope="module")
def speech(demo_root, tmp_path_factory):
    m = tmp_path_factory.mktemp("fact") / "speech.parquet"
    manifest.write_manifest(m, list(records("librispeech", demo_root / "LibriSpeech", split="train-clean-100")))
    return m


def conf(out, m, steps=6, semantic_steps=3, **kw) -> dict:
    return {"manifests": [str(m)], "out": str(out), "model": {**TINY, **kw.pop("model", {})}, "steps": steps,
            "semantic_steps": semantic_steps, "batch_utterances": 4, "batch_size": 2, "segment_seconds": 0.64,
            "bpe_vocab": 300, "warmup_steps": 2, "vq_warmup": 1, "log_every": 1, "checkpoint_every": 2, "threads": 1,
            "device": "cpu", **kw}


def cfg(*a, **kw) -> FactorizedTrainConfig:
    return from_dict(FactorizedTrainConfig, conf(*a, **kw))


@pytest.fixture(scope="module")
def trained(speech, tmp_path_factory):
    out = tmp_path_factory.mktemp("fact") / "run"
    train(cfg(out, speech), progress=False)
    return out


def test_training_logs_both_phases_and_writes_a_card(trained, speech):
    log = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]
    assert [r["phase"] for r in log] == ["semantic"] * 3 + ["acoustic"] * 3
    assert all(np.isfinite(r["ctc"]) for r in log[:3]) and all(np.isfinite(r["mel"]) for r in log[3:])
    # the first step of each phase runs unquantized (vq_warmup 1), then 2 semantic / 6 acoustic codebooks
    assert [len(r["perplexity"] or []) for r in log] == [0, 2, 2, 0, 6, 6]
    card = (trained / "MODEL_CARD.md").read_text()
    assert "CTC" in card and "Whisper tiny.en" in card and "ljspeech-mini was not used" in card
    assert "| 0 | semantic | 6.25 | 64 | 37.5 |" in card and "| 7 | acoustic | 12.5 | 64 | 75 |" in card
    assert list((trained / "frozen").glob("*.npz"))  # the frozen inputs are cached for a resumed run


def test_round_trip_lengths_ranges_and_semantic_pairs(trained):
    tok = get("uniaudio-factorized", checkpoint=str(trained / "factorized.pt"))
    d = tok.describe()
    assert (d["n_codebooks"], d["frame_rate"], d["codebook_size"]) == (8, 12.5, 64)
    assert [s["role"] for s in d["streams"]] == ["semantic"] * 2 + ["acoustic"] * 6
    assert d["bitrate_bps"] == pytest.approx(2 * 6.25 * 6 + 6 * 12.5 * 6) and d["codes_per_second"] == 87.5
    rng = np.random.default_rng(0)
    for n in (320, 2559, 2560, 2561, 3 * 16000 + 17):
        wav = (0.1 * np.sin(np.arange(n) * 0.05) + 0.01 * rng.standard_normal(n)).astype(np.float32)
        codes = tok.encode(wav, 16000)
        assert codes.shape == (8, 2 * math.ceil(n / 2560)) and codes.dtype == np.int64
        assert codes.min() >= 0 and codes.max() < 64
        assert (codes[:2, ::2] == codes[:2, 1::2]).all()  # each 6.25 Hz code fills two 12.5 Hz rows
        y = tok.decode(codes)
        assert y.dtype == np.float32 and np.isfinite(y).all()
        assert 0 <= len(y) - n < 2560  # within one frame of the lowest rate
    wav = (0.1 * np.sin(np.arange(22050) * 0.07)).astype(np.float32)  # wrong rate: resampled
    assert tok.encode(wav, 22050).shape == (8, 2 * math.ceil(16000 / 2560))


@pytest.mark.parametrize("wav,why", [(np.zeros(0, np.float32), "non-empty"),
                                     (np.full(4000, np.nan, np.float32), "NaN"),
                                     (np.zeros(100, np.float32), "at least 320 samples")])
def test_bad_audio_gets_clear_errors(trained, wav, why):
    tok = get("uniaudio-factorized", checkpoint=str(trained / "factorized.pt"))
    with pytest.raises(TokenizerError, match=why):
        tok.encode(wav, 16000)


def test_bad_codes_get_clear_errors(trained):
    tok = get("uniaudio-factorized", checkpoint=str(trained / "factorized.pt"))
    codes = tok.encode((0.1 * np.sin(np.arange(8000) * 0.05)).astype(np.float32), 16000)
    bad = codes.copy()
    bad[4, 1] = 64
    with pytest.raises(TokenizerError, match="out of range"):
        tok.decode(bad)
    with pytest.raises(TokenizerError, match="pairs"):
        tok.decode(codes[:, :-1])
    bad = codes.copy()
    bad[1, 3] = (bad[1, 2] + 1) % 64
    with pytest.raises(TokenizerError, match="frames 2-3 differ"):
        tok.decode(bad)
    with pytest.raises(TokenizerError, match=r"\[8, frames\]"):
        tok.decode(codes[:7])


@pytest.mark.slow
def test_kill_then_resume_gives_the_same_losses_and_weights(speech, trained, tmp_path):
    killed = tmp_path / "killed"
    path = tmp_path / "fact.yaml"
    path.write_text(yaml.safe_dump(conf(killed, speech)))
    cmd = [str(BIN / "uniaudio"), "train", "factorized", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (killed / "log.jsonl").exists() or '"step": 4,' not in (killed / "log.jsonl").read_text():
        assert proc.poll() is None, "finished before the kill"
        assert time.time() - t0 < 300
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # after step 4's log line: in the acoustic phase, checkpoint 4 or none yet
    proc.wait()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-2000:]

    def losses(out):
        return {r["step"]: r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())}

    a, b = losses(trained), losses(killed)
    assert a == b and sorted(b) == [1, 2, 3, 4, 5, 6]  # each step once, the same numbers
    wa = torch.load(trained / "last.pt", weights_only=True)["model"]
    wb = torch.load(killed / "last.pt", weights_only=True)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_log_mel_front_end_trains_and_tokenizes(speech, tmp_path):
    out = tmp_path / "mel"
    train(cfg(out, speech, steps=2, semantic_steps=1, model={"front_end": "log-mel"}), progress=False)
    assert "log-mel" in (out / "MODEL_CARD.md").read_text()
    tok = get("uniaudio-factorized", checkpoint=str(out / "factorized.pt"))
    assert tok.describe()["front_end"] == "log-mel"
    assert tok.encode((0.1 * np.sin(np.arange(6000) * 0.05)).astype(np.float32), 16000).shape == (8, 6)


def test_front_ends_give_one_frame_per_320_samples():
    rng = np.random.default_rng(1)
    wav = (0.1 * rng.standard_normal(320 * 100)).astype(np.float32)
    mel = LogMelFrontEnd().features(wav)
    assert mel.shape == (100, 80) and np.isfinite(mel).all()
    whisper = WhisperFrontEnd(threads=1)
    long = (0.1 * rng.standard_normal(WhisperFrontEnd.piece + 320 * 7)).astype(np.float32)  # two pieces
    f = whisper.features(long)
    assert f.shape == (len(long) // 320, 384) and np.isfinite(f).all()
    with pytest.raises(ValueError, match="multiple of 320"):
        whisper.features(wav[:1000])


def test_film_is_the_identity_without_a_condition_and_uses_it_otherwise():
    torch.manual_seed(0)
    film = FiLM(8, 16, 0.1)
    torch.nn.init.normal_(film.beta.weight)
    x = torch.randn(2, 16, 10)
    assert torch.equal(film(x, torch.zeros(2, 5, 8)), x)
    c = 10 * torch.randn(2, 5, 8)  # large enough to saturate tanh
    y = film(x, c)
    assert not torch.allclose(y, x)
    torch.nn.init.zeros_(film.beta.weight)
    ratio = film(x, c) / x  # the multiplicative part alone
    assert ratio.min() >= 0.9 - 1e-6 and ratio.max() <= 1.1 + 1e-6 and (ratio - 1).abs().max() > 0.05
    with pytest.raises(ValueError, match="whole multiple"):
        film(x, torch.zeros(2, 3, 8))


@pytest.mark.parametrize("bad,field", [({"model": {"front_end": "hubert"}}, "model.front_end"),
                                       ({"semantic_steps": 9}, "semantic_steps"),
                                       ({"bpe_vocab": 100}, "bpe_vocab"),
                                       ({"cond_dropout": 1.0}, "cond_dropout"),
                                       ({"segment_seconds": 0.1}, "segment_seconds"),
                                       ({"semantic_steps": 0}, "semantic_steps"),
                                       ({"spectral_weight": 0}, "spectral_weight"),
                                       ({"model": {"decoder": "codec"}, "spectral_weight": 0, "latent_weight": 0},
                                        "latent_weight"),
                                       ({"model": {"decoder": "vocos"}}, "model.decoder")])
def test_config_errors_name_the_field(tmp_path, speech, bad, field):
    with pytest.raises(ConfigError, match=field):
        cfg(tmp_path / "x", speech, **bad)


def test_codec_decoder_run_starts_from_a_trained_semantic_branch(trained, speech, tmp_path):
    """decoder codec + init_from + no semantic phase: the semantic branch and the BPE come from the
    first run unchanged, the SEANet decoder is the shipped codec's; a latent-only run decodes no
    waveform and keeps that decoder frozen, a spectral run with train_codec_decoder changes it."""
    from uniaudio import checkpoint
    from uniaudio.train.factorized_trainer import DEFAULT_CODEC

    first = checkpoint.load(trained / "last.pt")
    codec_dec = {k[len("decoder."):]: v for k, v in checkpoint.load(DEFAULT_CODEC)["model"].items()
                 if k.startswith("decoder.")}
    latent_only = tmp_path / "latent"
    train(cfg(latent_only, speech, steps=2, semantic_steps=0, init_from=str(trained / "last.pt"), spectral_weight=0,
              model={"decoder": "codec"}), progress=False)
    log = [json.loads(line) for line in (latent_only / "log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["acoustic"] * 2
    assert all(np.isfinite(r["latent"]) and "mel" not in r for r in log)
    ck = checkpoint.load(latent_only / "last.pt")
    assert ck["bpe"] == first["bpe"]
    sem = [k for k in first["model"] if k.startswith("semantic.")]
    assert sem and all(torch.equal(ck["model"][k], first["model"][k]) for k in sem)
    assert all(torch.equal(ck["model"][f"codec_decoder.{k}"], v) for k, v in codec_dec.items())
    card = (latent_only / "MODEL_CARD.md").read_text()
    assert "SEANet decoder" in card and "frozen, as pretrained" in card and "Initialised from" in card

    tuned = tmp_path / "tuned"
    train(cfg(tuned, speech, steps=2, semantic_steps=0, init_from=str(latent_only / "last.pt"),
              train_codec_decoder=True, model={"decoder": "codec"}), progress=False)
    log = [json.loads(line) for line in (tuned / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["mel"]) and np.isfinite(r["latent"]) for r in log)
    ck = checkpoint.load(tuned / "last.pt")
    assert not all(torch.equal(ck["model"][f"codec_decoder.{k}"], v) for k, v in codec_dec.items())
    tok = get("uniaudio-factorized", checkpoint=str(tuned / "factorized.pt"))
    wav = (0.1 * np.sin(np.arange(6000) * 0.05)).astype(np.float32)
    codes = tok.encode(wav, 16000)
    out = tok.decode(codes)
    assert codes.shape == (8, 6) and out.shape == (6 * 1280,) and np.isfinite(out).all()


def test_unreadable_files_are_named_or_left_out_and_counted(tmp_path, speech):
    rows = list(manifest.iter_records(speech))
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio at all")
    rows.append(manifest.Record(id="broken", corpus="x", split="train", domain="speech", path=str(broken),
                                text="a b c"))
    m = tmp_path / "with-broken.parquet"
    manifest.write_manifest(m, rows)
    with pytest.raises(UnreadableData, match="broken.flac"):
        train(cfg(tmp_path / "a", m, steps=1, semantic_steps=1), progress=False)
    train(cfg(tmp_path / "b", m, steps=1, semantic_steps=1, skip_missing_files=True), progress=False)
    assert "1 unreadable and left out" in (tmp_path / "b/MODEL_CARD.md").read_text()


def test_semantic_phase_needs_transcripts(tmp_path, demo_root):
    m = tmp_path / "sound.parquet"
    manifest.write_manifest(m, list(records("audiocaps", demo_root / "audiocaps")))
    with pytest.raises(UnreadableData, match="needs transcripts"):
        train(cfg(tmp_path / "x", m), progress=False)


def test_resume_with_another_model_is_refused(trained, speech):
    with pytest.raises(RuntimeError, match="use a new out folder"):
        train(cfg(trained, speech, model={"dim": 64}), progress=False)


def test_transcripts_are_normalised_for_ctc():
    assert normalize_text("NOBODY'S  here, Mr. Smith -- 42!") == "nobody's here mr smith 42"


@pytest.mark.slow
def test_pipeline_sentences_and_lm_take_the_factorized_tokenizer_by_name(trained, demo_root, tmp_path, ray_local):
    """Token shards (Ray pipeline) -> multistream bundles (S = 8 + 1) -> two LM steps -> generated
    codes whose semantic rows are held in pairs (copied, not sampled) -> decoded audio."""
    import io
    import tarfile

    from pipeline_helpers import config
    from uniaudio.pipeline.run import run as run_pipeline
    from uniaudio.pipeline.sentences import SentenceConfig
    from uniaudio.pipeline.sentences import run as run_sentences
    from uniaudio.train.lm import LMTrainConfig
    from uniaudio.train.lm import train as train_lm

    tokens = tmp_path / "tokens"
    inputs = [{"recipe": "librispeech", "root": str(demo_root / "LibriSpeech")}]
    report = run_pipeline(config(tokens, inputs, tokenizer="uniaudio-factorized",
                                 tokenizer_options={"checkpoint": str(trained / "factorized.pt")}), progress=False)
    assert report["samples"] > 0 and report["rejected"] == 0 and report["tokenizer"] == "uniaudio-factorized"
    with tarfile.open(sorted((tokens / "shards").glob("*.tar"))[0]) as t:
        files = {m.name.rsplit(".", 1)[-1] if not m.name.endswith(".npy") else "npy": t.extractfile(m).read()
                 for m in t.getmembers()}
    desc = json.loads(files["json"])["tokenizer"]
    assert (desc["frame_rate"], desc["n_codebooks"], desc["bitrate_bps"]) == (12.5, 8, 525)
    codes = np.load(io.BytesIO(files["npy"]))
    assert codes.shape[0] == 8 and codes.shape[1] % 2 == 0 and (codes[:2, ::2] == codes[:2, 1::2]).all()
    sent = tmp_path / "sent"
    run_sentences(from_dict(SentenceConfig, {"tokens": str(tokens), "output": str(sent), "layout": "multistream"}),
                  progress=False)
    tar = sorted((sent / "shards").glob("*.tar"))[0]
    with tarfile.open(tar) as t:
        member = next(m for m in t.getmembers() if m.name.endswith("tokens.npy"))
        rows = np.load(io.BytesIO(t.extractfile(member).read()))
    assert rows.shape[1] == 8 + 1  # 8 audio streams + the text stream
    lm = from_dict(LMTrainConfig, {"data": str(sent), "out": str(tmp_path / "lm"), "steps": 2, "batch_rows": 2048,
                                   "warmup_steps": 1, "val_fraction": 0.1, "val_every": 2, "log_every": 1,
                                   "checkpoint_every": 2, "threads": 1, "device": "cpu",
                                   "model": {"kind": "multistream", "d_model": 48, "n_layers": 1, "bottom_layers": 1,
                                             "top_layers": 1, "n_heads": 4, "n_kv_heads": 2, "local_layers": 1}})
    assert train_lm(lm, progress=False)["step"] == 2
    from uniaudio.train.generate import LMGenerator, Sampling

    gen = LMGenerator(tmp_path / "lm" / "model.pt", device="cpu")
    assert (gen.audio.held_rows, gen.audio.hold) == ((0, 1), 2)
    prefix = gen.prefix("tts", [("text", "text", gen.text_ids("a short test"))])
    codes = gen.continue_audio(prefix, 9, Sampling(temperature=1.0, top_k=0), min_frames=2,
                               held_rows=gen.audio.held_rows, hold=2)
    assert codes.shape[0] == 8 and codes.shape[1] in (2, 4, 6, 8)  # whole pairs: 9 cut to 8 at most
    assert (codes[:2, ::2] == codes[:2, 1::2]).all() and not (codes[2:, ::2] == codes[2:, 1::2]).all()
    wav = gen.tts("a short test", None, 16000, Sampling(seed=1), max_seconds=0.8)
    assert len(wav) % 2560 == 0 and 0 < len(wav) <= 10 * 1280 and np.isfinite(wav).all()


def test_inference_checkpoint_is_half_size_and_decodes_alike(trained):
    from uniaudio import checkpoint
    from uniaudio.tokenize.factorized_model import FactorizedCodec

    full = FactorizedCodec.from_checkpoint(checkpoint.load(trained / "last.pt"))
    small = checkpoint.load(trained / "factorized.pt")
    assert all(v.dtype == torch.float16 for v in small["model"].values() if v.is_floating_point())
    assert not any(k.startswith("ctc.") or k.endswith(".ema_sum") for k in small["model"])
    half = FactorizedCodec.from_checkpoint(small)
    assert all(p.dtype == torch.float32 for p in half.parameters())
    codes = full.encode(torch.zeros(1, 5120) + 0.05 * torch.sin(torch.arange(5120.0) * 0.05),
                        torch.randn(1, 16, 384))
    a, b = full.decode(codes), half.decode(codes)
    assert (a - b).abs().max() <= 1e-2 * a.abs().max()  # float16 weights: a per-mille-level change


def test_shipped_checkpoint_is_a_trained_factorized_tokenizer(demo_root):
    from uniaudio import audio
    from uniaudio.benchmark.metrics.intrusive import log_mel
    from uniaudio.tokenize.factorized import DEFAULT_CHECKPOINT

    assert DEFAULT_CHECKPOINT.stat().st_size <= 25 * 2**20
    card = DEFAULT_CHECKPOINT.with_name("FACTORIZED_MODEL_CARD.md").read_text()
    assert "ljspeech-mini was not used" in card and "CTC" in card and "875" in card
    tok = get("uniaudio-factorized")
    assert tok.describe()["bitrate_bps"] == 875 and tok.describe()["front_end"] == "whisper-tiny.en"
    utts = sorted(records("librispeech", demo_root / "LibriSpeech"), key=lambda r: r.id)[:2]
    wav, other = (audio.load(r.path, 16000)[0] for r in utts)
    codes = tok.encode(wav, 16000)
    assert len(np.unique(codes[0])) >= 3 and all(len(np.unique(c)) >= 10 for c in codes[2:])  # codebooks in use
    out = tok.decode(codes)
    n = min(len(out), len(wav), len(other))
    own = np.abs(log_mel(wav[:n]) - log_mel(out[:n])).mean()
    wrong = np.abs(log_mel(other[:n]) - log_mel(out[:n])).mean()
    assert own < 0.6 * wrong, (own, wrong)  # the output is this utterance, not just speech-like sound
