"""Sound events in the AudioCaps layout, synthesized with numpy.

Every clip is built from named event generators; its captions are written from the same
parameters, so each caption describes what was actually synthesized."""

from __future__ import annotations

import csv
import random
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import audio

SAMPLE_RATE = 16000
CLIP_SECONDS = 5.0
SPLITS = {"train": 12, "val": 3, "test": 3}  # clips per split at scale 1
CAPTIONS_PER_CLIP = {"train": 1, "val": 3, "test": 3}  # AudioCaps: 1 for train, 5 for val/test

COUNT_WORDS = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _env(n: int, attack: float, release: float) -> np.ndarray:
    a, r = max(1, int(attack * SAMPLE_RATE)), max(1, int(release * SAMPLE_RATE))
    e = np.ones(n)
    e[:a] = np.linspace(0, 1, a)
    e[-r:] = np.minimum(e[-r:], np.linspace(1, 0, r))
    return e


def beeps(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    out = np.zeros(n)
    seg = int(0.25 * SAMPLE_RATE)
    for k in range(p["count"]):
        s = int((0.4 + k * 0.7) * SAMPLE_RATE)
        out[s:s + seg] += np.sin(2 * np.pi * p["freq"] * _t(seg)) * _env(seg, 0.01, 0.02)
    return 0.5 * out


def bell(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    out = np.zeros(n)
    length = int(1.6 * SAMPLE_RATE)
    t = _t(length)
    tone = sum(np.sin(2 * np.pi * p["freq"] * h * t) / h for h in (1, 2.76, 5.4)) * np.exp(-3 * t)
    for k in range(p["count"]):
        s = int((0.3 + k * 1.5) * SAMPLE_RATE)
        e = min(n, s + length)
        out[s:e] += tone[: e - s]
    return 0.4 * out


def siren(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    t = _t(n)
    f = 700 + 300 * np.sin(2 * np.pi * p["rate"] * t)
    return 0.35 * np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * _env(n, 0.3, 0.3)


def ticking(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    out = np.zeros(n)
    click = rng.standard_normal(160) * np.exp(-np.arange(160) / 20)
    step = int(SAMPLE_RATE / p["rate"])
    for s in range(int(0.2 * SAMPLE_RATE), n - 160, step):
        out[s:s + 160] += click
    return 0.5 * out


def rain(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    white = rng.standard_normal(n)
    pink = np.cumsum(white)
    pink -= np.convolve(pink, np.ones(400) / 400, mode="same")
    drops = (rng.random(n) < 0.002) * rng.standard_normal(n) * 4
    x = pink / (np.abs(pink).max() + 1e-9) + np.convolve(drops, np.exp(-np.arange(80) / 10), mode="same")
    return 0.25 * x / (np.abs(x).max() + 1e-9)


def rumble(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    t = _t(n)
    noise = np.convolve(rng.standard_normal(n), np.ones(60) / 60, mode="same")
    am = 1 + 0.5 * np.sin(2 * np.pi * p["rate"] * t)
    x = (noise * 8 + 0.3 * np.sin(2 * np.pi * 55 * t)) * am
    return 0.3 * x / (np.abs(x).max() + 1e-9)


def chirps(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    out = np.zeros(n)
    seg = int(0.12 * SAMPLE_RATE)
    t = _t(seg)
    sweep = np.sin(2 * np.pi * (2500 * t + 0.5 * 9000 * t**2)) * np.hanning(seg)
    for _ in range(p["count"]):
        s = int(rng.uniform(0.2, CLIP_SECONDS - 0.3) * SAMPLE_RATE)
        out[s:s + seg] += sweep
    return 0.3 * out


def hum(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    t = _t(n)
    return 0.15 * sum(np.sin(2 * np.pi * p["freq"] * h * t) / h for h in (1, 2, 3))


# name -> (generator, parameter sampler, caption phrasings); phrasings see the params.
EVENTS = {
    "beeps": (beeps, lambda r: {"count": r.choice([2, 3, 4]), "freq": r.choice([440, 880, 1760])},
              [lambda p: f"a {'high-pitched' if p['freq'] > 1000 else 'electronic'} beep sounds {COUNT_WORDS[p['count']]}",
               lambda p: f"an electronic tone beeps {COUNT_WORDS[p['count']]}"]),
    "bell": (bell, lambda r: {"count": r.choice([2, 3]), "freq": r.choice([330, 520])},
             [lambda p: f"a bell rings {COUNT_WORDS[p['count']]}", lambda p: f"a metallic bell chimes {COUNT_WORDS[p['count']]} and rings out"]),
    "siren": (siren, lambda r: {"rate": r.choice([0.5, 1.0])},
              [lambda p: f"a siren wails, {'slowly' if p['rate'] < 1 else 'quickly'} rising and falling", lambda p: "an emergency siren sweeps up and down"]),
    "ticking": (ticking, lambda r: {"rate": r.choice([1, 2])},
                [lambda p: f"a clock ticks {'steadily' if p['rate'] == 1 else 'rapidly'}", lambda p: "regular mechanical ticking"]),
    "chirps": (chirps, lambda r: {"count": r.choice([5, 8])},
               [lambda p: "short high chirps like a small bird", lambda p: "quick rising chirps repeat"]),
}
BACKGROUNDS = {
    "rain": (rain, lambda r: {}, ["rain patters in the background", "with steady rain falling"]),
    "rumble": (rumble, lambda r: {"rate": r.choice([0.3, 0.8])}, ["an engine rumbles in the background", "over a low engine rumble"]),
    "hum": (hum, lambda r: {"freq": r.choice([50, 60])}, ["over a low electrical hum", "while a low hum continues"]),
    "none": (None, lambda r: {}, ["", ""]),
}


@dataclass(frozen=True)
class Clip:
    split: str
    youtube_id: str
    start_time: int
    event: str
    event_params: dict
    background: str
    bg_params: dict
    captions: tuple[str, ...]
    audiocap_ids: tuple[int, ...]
    seed: int

    def path(self, root: Path) -> Path:
        return root / "audio" / self.split / f"{self.youtube_id}.wav"


def _ytid(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(11))


def _caption(fg: str, bg: str) -> str:
    text = f"{fg} {bg}".strip() if bg.startswith(("with", "over", "while")) else (f"{fg} while {bg}" if bg else fg)
    return text[0].upper() + text[1:]


def plan(seed: int, scale: float) -> list[Clip]:
    rng = random.Random(f"sound-{seed}")
    clips, cap_id = [], 100000
    for split, base in SPLITS.items():
        for _ in range(max(1, round(base * scale))):
            ev = rng.choice(sorted(EVENTS))
            bg = rng.choice(sorted(BACKGROUNDS))
            ep, bp = EVENTS[ev][1](rng), BACKGROUNDS[bg][1](rng)
            caps = []
            for k in range(CAPTIONS_PER_CLIP[split]):
                fg_text = EVENTS[ev][2][k % 2](ep)
                bg_text = BACKGROUNDS[bg][2][(k // 2 + k) % 2]
                caps.append(_caption(fg_text, bg_text))
            ids = tuple(range(cap_id, cap_id + len(caps)))
            cap_id += len(caps)
            clips.append(Clip(split, _ytid(rng), rng.randrange(0, 300, 10), ev, ep, bg, bp, tuple(caps), ids, rng.randrange(2**31)))
    return clips


def synthesize(clip: Clip, root: Path) -> Path:
    n = int(CLIP_SECONDS * SAMPLE_RATE)
    rng = np.random.default_rng(clip.seed)
    x = EVENTS[clip.event][0](rng, n, clip.event_params)
    gen = BACKGROUNDS[clip.background][0]
    if gen is not None:
        x = x + gen(rng, n, clip.bg_params)
    x = 0.8 * x / max(1e-9, float(np.abs(x).max()))
    return audio.save(clip.path(root), x.astype(np.float32), SAMPLE_RATE)


def write_csvs(clips: list[Clip], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        with open(root / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
            for c in clips:
                if c.split == split:
                    for cid, cap in zip(c.audiocap_ids, c.captions):
                        w.writerow([cid, c.youtube_id, c.start_time, cap])
