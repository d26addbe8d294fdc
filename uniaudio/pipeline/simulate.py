"""Paired training data the corpora do not ship, derived by the data engine (UniAudio made its
noisy/clean, reverberant/dry and mixture/target pairs by simulation):

- `se`: speech + a sound or music clip of another input at an SNR drawn from `snr_db`;
- `dereverb`: speech in a statistical room of an RT60 drawn from `rt60` (`uniaudio.mixing`, the
  room model of the benchmark's dereverb test set);
- `tse`: speech + an utterance of another speaker at an SIR drawn from `sir_db` (the enrollment,
  another utterance of the target speaker, is chosen by the sentence stage, like tts's prompt);
- `sound_edit`: a sound clip + another captioned sound clip (the event) at a background-to-event
  ratio drawn from `event_ratio_db`: the sentence stage makes both edits of the pair, adding the
  event (clip -> mixture) and removing it (mixture -> clip), the instruction naming the event by
  its caption.

How it fits the engine: `build` writes one more manifest, OUT/manifests/simulated.parquet, of
*derived rows* (one per pair): a derived row is its source row (same corpus, split, speaker, so
the sentence stage finds its source in the same group) with `extra` recording the task, the source
id (`sim_target`), the other source (`noise_path` / `interferer_path` / `event_path` with its
offset and duration), the drawn ratio or RT60 and a seed. It is planned, sharded, decoded and tokenized like
any input; the decode step renders its audio (`render`) from the recorded sources, so a rerun
(or a resume after a crash) makes the same pair bytes. Everything drawn is a stable hash of
(seed, task, id): no state, no order dependence.

Bounded memory at any corpus size: the candidate noises and interferers are the `pool` rows with
the smallest stable hash among those eligible (a deterministic sample, the same whatever the
manifest order), kept separately for held-out and training rows, so a pair never joins a held-out
and a training item. An item that cannot be paired (no noise in its split, no other speaker) is
still a derived row, marked as a planned reject (`manifest.PLANNED_REJECT`): decode rejects it with
the reason, without reading audio, counted in rejects."""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Iterator

import numpy as np

from .. import manifest, storage
from ..config import ConfigError
from ..manifest import Record
from .draws import copies, uniform

TASKS = ("se", "dereverb", "tse", "sound_edit")
SPEECH_TASKS = ("se", "dereverb", "tse")  # derived from speech rows; sound_edit from captioned sound clips
SIMULATED = "simulated"  # the derived input's name: its manifest, plan and shard prefix


def _range(where: str, r: list[float], lo: float, hi: float) -> None:
    if len(r) != 2:
        raise ConfigError(where, f"a range is [low, high], got {r!r}")
    if r[0] > r[1]:
        raise ConfigError(where, f"empty range: low {r[0]} > high {r[1]}")
    if r[0] < lo or r[1] > hi:
        raise ConfigError(where, f"must lie within [{lo}, {hi}], got {r!r}")


@dataclass
class NoisySpeech:
    per_item: float = 1.0  # expected pairs per speech item (0.5: half of them, 2: two each)
    snr_db: list[float] = field(default_factory=lambda: [-5.0, 20.0])
    noise_domains: list[str] = field(default_factory=lambda: ["sound", "music"])

    def validate(self) -> None:
        _range("simulate.se.snr_db", self.snr_db, -30, 60)
        bad = sorted(set(self.noise_domains) - set(manifest.DOMAINS))
        if bad or not self.noise_domains:
            raise ConfigError("simulate.se.noise_domains", f"domains among {', '.join(manifest.DOMAINS)}, got "
                                                           f"{self.noise_domains!r}")


@dataclass
class ReverberantSpeech:
    per_item: float = 1.0
    rt60: list[float] = field(default_factory=lambda: [0.3, 1.0])  # seconds

    def validate(self) -> None:
        _range("simulate.dereverb.rt60", self.rt60, 0.05, 3.0)


@dataclass
class SpeakerMixture:
    per_item: float = 1.0
    sir_db: list[float] = field(default_factory=lambda: [-5.0, 5.0])

    def validate(self) -> None:
        _range("simulate.tse.sir_db", self.sir_db, -30, 30)


@dataclass
class SoundEvents:
    per_item: float = 1.0
    # background-to-event power ratio: the event added to (or removed from) a clip
    event_ratio_db: list[float] = field(default_factory=lambda: [-5.0, 5.0])

    def validate(self) -> None:
        _range("simulate.sound_edit.event_ratio_db", self.event_ratio_db, -30, 30)


@dataclass
class SimulateSpec:
    se: NoisySpeech | None = None
    dereverb: ReverberantSpeech | None = None
    tse: SpeakerMixture | None = None
    sound_edit: SoundEvents | None = None
    seed: int = 0
    pool: int = 4096  # candidate noises / interferers kept per split kind (the smallest stable hashes)
    # rows whose split matches (fnmatch) are held out: paired only with held-out sources
    holdout_splits: list[str] = field(default_factory=lambda: ["test*", "dev*", "val*", "eval*"])

    def validate(self) -> None:
        for t in TASKS:
            spec = getattr(self, t)
            if spec is not None and (isinstance(spec.per_item, bool) or not 0 < spec.per_item <= 16):
                raise ConfigError(f"simulate.{t}.per_item", f"must be in (0, 16], got {spec.per_item!r}")
        if not self.enabled():
            raise ConfigError("simulate", f"enable at least one of {', '.join(TASKS)} (or leave simulate out)")
        if self.pool < 1:
            raise ConfigError("simulate.pool", "must be >= 1")

    def enabled(self) -> list[str]:
        return [t for t in TASKS if getattr(self, t) is not None]


class _Pool:
    """The `size` items with the smallest key seen so far (a max-heap of them)."""

    def __init__(self, size: int):
        self.size, self.heap = size, []

    def offer(self, key: float, item: dict) -> None:
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, (-key, item["id"], item))
        elif -self.heap[0][0] > key:
            heapq.heapreplace(self.heap, (-key, item["id"], item))

    def items(self) -> list[dict]:  # ascending key: the order draws index into
        return [it for _, _, it in sorted(self.heap, key=lambda x: (-x[0], x[1]))]


def _source(r: dict) -> dict:
    return {"id": r["id"], "path": r["path"], "offset": r["offset"] or 0.0, "duration": r["duration"],
            "speaker": r.get("speaker") or ""}


def _rows(paths: list[str]) -> Iterator[dict]:
    for p in paths:
        for rec in manifest.iter_records(p, validate_rows=False):
            yield rec.__dict__


def build(spec: SimulateSpec, manifests: list[str], out: str) -> tuple[str, dict]:
    """OUT/manifests/simulated.parquet from the inputs' manifests (written once; a rerun reads it
    back) and its summary (pairs planned and unpaired, per task). Raises ConfigError naming the
    field when an enabled task cannot make a single pair."""
    dest = storage.join(out, "manifests", f"{SIMULATED}.parquet")
    summary_path = storage.join(out, "manifests", f"{SIMULATED}.json")
    if storage.exists(dest) and storage.exists(summary_path):
        return dest, json.loads(storage.read_text(summary_path))

    def held(r: dict) -> bool:
        return any(fnmatchcase(r.get("split") or "", p) for p in spec.holdout_splits)

    pools = {name: {h: _Pool(spec.pool) for h in (False, True)} for name in ("noise", "talker", "event")}
    speakers: dict[bool, set] = {False: set(), True: set()}
    n_speech = n_sound = 0
    for r in _rows(manifests):  # pass 1: the candidate pools
        h = held(r)
        if spec.se and r["domain"] in spec.se.noise_domains:
            pools["noise"][h].offer(uniform(spec.seed, "noise", r["id"]), _source(r))
        if r["domain"] == "speech":
            n_speech += 1
            if spec.tse and r.get("speaker"):
                pools["talker"][h].offer(uniform(spec.seed, "talker", r["id"]), _source(r))
                speakers[h].add(r["speaker"])
        if spec.sound_edit and r["domain"] == "sound" and _caption(r):
            n_sound += 1
            pools["event"][h].offer(uniform(spec.seed, "event", r["id"]), dict(_source(r), caption=_caption(r)))
    if not n_speech and any(getattr(spec, t) for t in SPEECH_TASKS):
        raise ConfigError("simulate", "the inputs hold no speech rows: se, dereverb and tse derive from speech")
    if spec.se and not (pools["noise"][False].heap or pools["noise"][True].heap):
        raise ConfigError("simulate.se.noise_domains", f"no input row of domain {'/'.join(spec.se.noise_domains)}: "
                                                       "noisy speech needs a noise source among the inputs")
    if spec.tse and max(len(s) for s in speakers.values()) < 2:
        raise ConfigError("simulate.tse", "a mixture needs speech of at least two speakers in one split; "
                                          "the inputs have fewer (or no speaker labels)")
    if spec.sound_edit and n_sound < 2:
        raise ConfigError("simulate.sound_edit", "an edit adds one captioned sound clip to another: the inputs "
                                                 f"have {n_sound} sound clip(s) with a caption")
    drawn = {h: {name: pool[h].items() for name, pool in pools.items()} for h in (False, True)}
    counts = {t: {"pairs": 0, "unpaired": 0} for t in spec.enabled()}

    def derived() -> Iterator[Record]:  # pass 2: the pairs
        for r in _rows(manifests):
            if r["domain"] == "speech":
                tasks = [t for t in SPEECH_TASKS if getattr(spec, t)]
            elif r["domain"] == "sound" and spec.sound_edit:
                tasks = ["sound_edit"]
            else:
                continue
            for task in tasks:
                for k in range(copies(getattr(spec, task).per_item, spec.seed, task, r["id"])):
                    rec = _pair(spec, task, r, k, drawn[held(r)])
                    counts[task]["unpaired" if manifest.PLANNED_REJECT in rec.extra else "pairs"] += 1
                    yield rec

    manifest.write_manifest(dest, derived(), strict=False)
    summary = {"tasks": counts, "pool": {name: {"train": len(drawn[False][name]), "heldout": len(drawn[True][name])}
                                         for name in pools}}
    storage.write_text(summary_path, json.dumps(summary, indent=2))
    return dest, summary


def _caption(r: dict) -> str | None:
    caps = (r.get("extra") or {}).get("captions")
    first = caps[0] if isinstance(caps, list) and caps and isinstance(caps[0], str) else None
    text = (r.get("caption") or first or "").strip()
    return text or None


def _pair(spec: SimulateSpec, task: str, r: dict, k: int, pools: dict[str, list[dict]]) -> Record:
    uid = f"{r['id']}+{task}" + (str(k) if k else "")
    seed = int(uniform(spec.seed, "render", uid) * 2**31)
    extra = {"sim_task": task, "sim_target": r["id"], "sim_seed": seed}
    chapter = (r.get("extra") or {}).get("chapter")
    if chapter is not None:
        extra["chapter"] = chapter  # sorted beside its source in the sentence stage
    draw = uniform(spec.seed, task, "value", uid)
    noises, talkers = pools["noise"], pools["talker"]
    if task == "se":
        if not noises:
            extra = manifest.planned_reject(extra, "simulate", "no_noise_source", "no noise row in this split "
                                            "kind (held-out items take held-out noise only)")
        else:
            n = noises[int(uniform(spec.seed, "se-pick", uid) * len(noises))]
            lo, hi = spec.se.snr_db
            extra.update(noise_id=n["id"], noise_path=n["path"], noise_offset=n["offset"],
                         noise_duration=n["duration"], snr_db=round(lo + draw * (hi - lo), 2))
    elif task == "dereverb":
        lo, hi = spec.dereverb.rt60
        extra.update(rt60=round(lo + draw * (hi - lo), 3))
    elif task == "sound_edit":
        e = _probe(pools["event"], uniform(spec.seed, "event-pick", uid), lambda c: c["id"] != r["id"])
        if e is None:
            extra = manifest.planned_reject(extra, "simulate", "no_event",
                                            "no other captioned sound clip in this split kind")
        else:
            lo, hi = spec.sound_edit.event_ratio_db
            extra.update(event_id=e["id"], event_path=e["path"], event_offset=e["offset"],
                         event_duration=e["duration"], event_caption=e["caption"],
                         event_ratio_db=round(lo + draw * (hi - lo), 2))
    else:
        spk = r.get("speaker") or ""
        t = _probe(talkers, uniform(spec.seed, "tse-pick", uid), lambda c: c["speaker"] != spk) if spk else None
        if t is None:
            extra = manifest.planned_reject(extra, "simulate", "no_interferer",
                                            "no utterance of another speaker in this split kind"
                                            if r.get("speaker") else "the target has no speaker label")
        else:
            lo, hi = spec.tse.sir_db
            extra.update(interferer_id=t["id"], interferer_path=t["path"], interferer_offset=t["offset"],
                         interferer_duration=t["duration"], sir_db=round(lo + draw * (hi - lo), 2))
    return Record(id=uid, corpus=r["corpus"], split=r["split"], domain=r["domain"], path=r["path"],
                  offset=r["offset"] or 0.0, duration=r["duration"], sample_rate=r.get("sample_rate"),
                  channels=r.get("channels"), speaker=r.get("speaker"), language=r.get("language"), extra=extra)


def _probe(candidates: list[dict], u: float, ok) -> dict | None:
    """The first candidate that `ok` accepts, looking from a drawn start (usually the first one)."""
    start = int(u * len(candidates))
    for j in range(len(candidates)):
        c = candidates[(start + j) % len(candidates)]
        if ok(c):
            return c
    return None


class SimulationError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of x from a drawn start (x tiled by add_at_ratio when it is shorter)."""
    if len(x) <= n:
        return x
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start:start + n]


def render(extra: dict, target: np.ndarray, sr: int) -> np.ndarray:
    """The derived audio of a row whose `extra` came from `build`, from its target's decoded audio.
    Raises SimulationError (reason, detail) for an item that cannot be made."""
    from .. import audio, mixing

    task, rng = extra["sim_task"], np.random.default_rng(extra["sim_seed"])
    if task == "dereverb":
        return mixing.reverberate(target, float(extra["rt60"]), sr, extra["sim_seed"])[0]
    who = {"se": "noise", "tse": "interferer", "sound_edit": "event"}[task]
    try:
        other, _ = audio.load(extra[f"{who}_path"], sr, offset=extra.get(f"{who}_offset") or 0.0,
                              duration=extra.get(f"{who}_duration"))
    except audio.AudioError as e:
        raise SimulationError(f"{who}_unreadable", f"{extra[f'{who}_id']}: {e.reason}: {e.detail}") from None
    ratio = float(extra[{"se": "snr_db", "tse": "sir_db", "sound_edit": "event_ratio_db"}[task]])
    try:
        return mixing.add_at_ratio(target, _crop(other, len(target), rng), ratio)
    except ValueError as e:
        raise SimulationError(f"{who}_silent", f"{extra[f'{who}_id']}: {e}") from None
