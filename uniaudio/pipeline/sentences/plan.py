"""Plan auditory sentences from a finished token-shard output, from metadata only.

1. `metadata`: DuckDB joins the token output's index (id -> tar, key, frames) with its plan
   rows (speaker, chapter, text, captions) and sorts them by (domain, corpus, speaker,
   chapter, id) under a memory limit (it spills to disk), into OUT/plan/meta.parquet.
2. `write_specs`: one sequential pass over that file in row batches, holding one speaker (or
   one clip) at a time, turns rows into sequence *specs*: which source ids, which frames,
   which text, which task and relation. No token is read here.
3. Each spec goes to the output shard of its primary source's token tar (runs of tars, every
   corpus spread evenly over them, grouped to about `shard_rows` rows; sources from held-out
   splits to `heldout-*` shards of their own), and DuckDB sorts the specs by (shard, stable hash of
   the sequence id) into OUT/plan/specs.parquet: a worker reads its shard's row groups only,
   and packs the tasks mixed rather than all of one task together.
Everything is a pure function of the token output and the config: a rerun plans the same."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ... import storage
from ...files import iter_parquet, sha256_file, sql_literal
from ...prosody import instruction
from ...tokenize import frontends
from ...tokenize.score import ScoreTextError, score_text
from ...tokenize.text import BPETokenizer
from ...tokenize.vocab import Vocabulary
from ..draws import copies, uniform
from .config import TASK_RELATION, SentenceConfig

PLAN_VERSION = 1


SPEC_SCHEMA = pa.schema([
    ("seq", pa.string()), ("task", pa.string()), ("relation", pa.string()), ("primary", pa.string()),
    ("tar", pa.string()), ("segments", pa.string()), ("targets", pa.string()), ("est_rows", pa.int64()),
    ("order", pa.int64()),  # a stable hash of seq: the order a shard's sequences are packed in (tasks mixed)
    ("heldout", pa.bool_()),  # from a held-out split (holdout_splits): packed into held-out bundles only
])
REJECT_SCHEMA = pa.schema([
    ("id", pa.string()), ("seq", pa.string()), ("task", pa.string()), ("reason", pa.string()),
    ("detail", pa.string()), ("stage", pa.string()),
])
SPECIALS_PER_SEQUENCE = 3  # <start> <task> ... <end>
SPECIALS_PER_SEGMENT = 2  # <m_start> ... <m_end>


class TokenOutputError(ValueError):
    """The --shards folder is not a finished token-shard output."""


def token_output(tokens: str | Path) -> dict:
    """What the sentence stage needs from a token output (a folder or an s3:// prefix): its
    tokenizer and files."""
    tokens = storage.absolute(tokens)
    for name in ("index.parquet", "report.json", "config.json"):
        if not storage.exists(storage.join(tokens, name)):
            raise TokenOutputError(f"{tokens} is not a finished token-shard output: {name} is missing "
                                   "(run `uniaudio pipeline run ... --tokenizer NAME` to completion first)")
    cfg = json.loads(storage.read_text(storage.join(tokens, "config.json")))
    if cfg.get("tokenizer", "none") == "none":
        raise TokenOutputError(f"{tokens} holds FLAC audio, not tokens: auditory sentences are built from codec "
                               "tokens (rerun the pipeline with --tokenizer uniaudio-codec, encodec, ...)")
    from ..plan import plan_files

    plans = plan_files(tokens)
    if not plans:
        raise TokenOutputError(f"{tokens}/plan holds no plan files")
    desc = None
    from ..shards import read_tar

    for done in storage.glob(storage.join(tokens, "done", "*.json")):  # the tokenizer as the shards recorded it
        rec = json.loads(storage.read_text(done))
        if rec.get("tar"):
            try:
                _, members = next(read_tar(storage.join(tokens, "shards", rec["tar"])))
                desc = json.loads(members["json"])["tokenizer"]
                break
            except (OSError, KeyError, ValueError, StopIteration):
                continue
    if desc is None:
        raise TokenOutputError(f"{tokens}: no readable shard to learn the tokenizer from")
    sem = storage.join(tokens, "semantic.json")  # `measure: [semantic]`: the content codes' tokenizer (vc)
    semantic = json.loads(storage.read_text(sem)) if storage.exists(sem) else None
    return {"root": tokens, "plans": plans, "tokenizer": desc, "index": storage.join(tokens, "index.parquet"),
            "semantic": semantic}


def metadata(index: str, plans: list[str], work: Path, cfg: SentenceConfig, duplicates: str | None = None) -> Path:
    """WORK/meta.parquet: one row per token-shard sample (`index`, the plan files `plans`: local
    files, DuckDB reads them) with its grouping fields, sorted; the engine's exact duplicates
    (`duplicates`, its duplicates.parquet) are left out: the first copy by id stands for them."""
    import duckdb

    dest = work / "meta.parquet"
    tmp = dest.with_name(".meta.parquet.tmp")
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{cfg.memory_limit}'")
    con.execute(f"SET temp_directory={sql_literal(work / 'duckdb.tmp')}")
    con.execute("SET preserve_insertion_order=false")
    plans = "[" + ", ".join(sql_literal(p) for p in plans) + "]"
    # the engine's per-item measures (`measure:`), absent from outputs made without (or before) them
    has = "measures" in pq.read_schema(index).names
    measures = "i.measures" if has else "NULL::VARCHAR AS measures"
    # a transcript the engine's `asr` measure wrote where the corpus had none
    text = "coalesce(p.text, json_extract_string(i.measures, '$.asr_text')) AS text" if has else "p.text"
    # the corpus's language, else what the engine's language identification found (`asr.language: auto`)
    language = "coalesce(p.language, json_extract_string(i.measures, '$.language_detected')) AS language" \
        if has else "p.language"
    skip = f"WHERE i.id NOT IN (SELECT id FROM read_parquet({sql_literal(duplicates)}))" if duplicates else ""
    con.execute(f"""
        COPY (
          SELECT i.id, i.shard AS tar, i.key, i.sha256, i.frames, i.seconds, {measures}, p.corpus, p.domain, p.split,
                 {language},
                 coalesce(p.speaker, '') AS speaker,
                 coalesce(json_extract_string(p.extra, '$.chapter'), '') AS chapter,
                 {text}, p.caption, json_extract(p.extra, '$.captions')::VARCHAR AS captions,
                 json_extract_string(p.extra, '$.sim_task') AS sim_task,
                 json_extract_string(p.extra, '$.sim_target') AS sim_target,
                 json_extract_string(p.extra, '$.event_caption') AS sim_event,
                 json_extract(p.extra, '$.notes')::VARCHAR AS notes
          FROM read_parquet({sql_literal(index)}) i
          JOIN read_parquet({plans}, union_by_name=true) p USING (id)
          {skip}
          ORDER BY p.domain, p.corpus, speaker, chapter, i.id
        ) TO {sql_literal(tmp)} (FORMAT parquet, ROW_GROUP_SIZE 8192)""")
    con.close()
    os.replace(tmp, dest)
    return dest


def check_audio_fits(meta: Path, cfg: SentenceConfig, tokenizer: dict) -> None:
    """Refuse a plan in which no audio segment fits the context (e.g. mu-law at 16,000 rows
    per second into 2048 rows): it would end with every audio item left out and only text
    sequences written, which looks like a success. Names the frame rate and the context."""
    import duckdb

    con = duckdb.connect()
    n, shortest = con.execute(f"SELECT count(*), min(frames) FROM read_parquet({sql_literal(meta)})").fetchone()
    con.close()
    overhead = SPECIALS_PER_SEQUENCE + 2 * SPECIALS_PER_SEGMENT
    if n and shortest + overhead > cfg.context:
        rate = float(tokenizer.get("frame_rate") or 0)
        secs = f" ({shortest / rate:.2f} s at {rate:g} rows/s of {tokenizer.get('name')})" if rate else ""
        fits = f"; {(cfg.context - overhead) / rate:.2f} s would fit" if rate else ""
        raise TokenOutputError(f"no audio segment fits the context: the shortest of {n} is {shortest} rows{secs}, "
                               f"the context is {cfg.context} rows{fits}. Use a tokenizer with a lower frame rate "
                               "(e.g. --tokenizer uniaudio-codec, 50 rows/s) or a larger --context")


def iter_meta(path: Path, batch: int = 8192) -> Iterator[dict]:
    for b in iter_parquet(path, batch):
        yield from b.to_pylist()


def texts_of(row: dict) -> list[str]:
    """The non-empty captions of a clip (all of them: AudioCaps/Clotho carry several)."""
    caps = json.loads(row["captions"]) if row.get("captions") else None
    if not isinstance(caps, list) or not caps:
        caps = [row.get("caption")]
    return [c.strip() for c in caps if isinstance(c, str) and c.strip()]


def text_tokenizer(meta: Path, out: str, cfg: SentenceConfig) -> BPETokenizer:
    """The BPE for text segments: trained on the corpus's transcripts and captions (once,
    saved as OUT/text_tokenizer.json) or the given tokenizer.json."""
    dest = storage.join(out, "text_tokenizer.json")
    if storage.exists(dest):
        return BPETokenizer.load(dest)
    if cfg.text_tokenizer != "train":
        bpe = BPETokenizer.load(cfg.text_tokenizer)
    else:
        def texts():
            for r in iter_meta(meta):
                if r["domain"] in ("sound", "music"):
                    yield from texts_of(r)
                elif r.get("text"):
                    front = frontends.for_language(cfg.text_frontends, r.get("language"), cfg.default_language)
                    if front is not None:
                        with contextlib.suppress(frontends.FrontEndError):
                            yield front(r["text"])
                if r.get("notes"):  # a song's score text (svs): its numbers and separators get tokens too
                    with contextlib.suppress(ScoreTextError):
                        yield score_text(r["notes"])

        bpe = BPETokenizer.train(texts(), vocab_size=cfg.text_vocab_size)
    with storage.output_path(dest) as tmp:
        bpe.save(tmp)
    return bpe


def vocabulary(bpe: BPETokenizer, tokenizer: dict, semantic: dict | None = None) -> Vocabulary:
    """The one vocabulary: specials, the text BPE, the audio codec (K codebooks), and the
    content codes when the token output has them (`measure: [semantic]`: vc's condition)."""
    v = Vocabulary()
    v.add("text", bpe.vocab_size)
    v.add("audio", int(tokenizer["codebook_size"]), codebooks=int(tokenizer["n_codebooks"]))
    if semantic:
        v.add("semantic", int(semantic["codebook_size"]), codebooks=int(semantic["codebooks"]))
    return v


class SpecWriter:
    """Streams specs and plan-stage rejects to Parquet; counts rows per primary tar."""

    def __init__(self, work: Path):
        self.path = work / ".specs-unsorted.parquet"
        self.w = pq.ParquetWriter(str(self.path), SPEC_SCHEMA, compression="zstd")
        self.buf: list[dict] = []
        self.rejects: list[dict] = []
        self.rows_per_tar: Counter = Counter()
        self.tasks: Counter = Counter()
        self.script_mismatch: Counter = Counter()  # language -> transcripts written in another script
        self.n = 0

    def add(self, seq: str, task: str, primary: dict, segments: list[dict], targets: list[int]) -> None:
        est = SPECIALS_PER_SEQUENCE + sum(SPECIALS_PER_SEGMENT + _est_rows(s) for s in segments)
        held = bool(primary["heldout"])
        self.buf.append({"seq": seq, "task": task, "relation": TASK_RELATION[task], "primary": primary["id"],
                         "tar": primary["tar"], "segments": json.dumps(segments, ensure_ascii=False),
                         "targets": json.dumps(targets), "est_rows": est,
                         "order": int(uniform("order", seq) * 2**62), "heldout": held})
        self.rows_per_tar[(primary["tar"], held)] += est
        self.tasks[task] += 1
        self.n += 1
        if len(self.buf) >= 8192:
            self.flush()

    def reject(self, uid: str, task: str, reason: str, detail: str) -> None:
        self.rejects.append({"id": uid, "seq": None, "task": task, "reason": reason, "detail": detail, "stage": "plan"})

    def flush(self) -> None:
        if self.buf:
            self.w.write_table(pa.Table.from_pylist(self.buf, schema=SPEC_SCHEMA))
            self.buf = []

    def close(self) -> None:
        self.flush()
        self.w.close()


def _est_rows(seg: dict) -> int:
    """Rows of a segment: frames for audio; for text an upper bound (byte-level BPE never
    gives more tokens than UTF-8 bytes); the builder checks the exact count."""
    if seg["kind"] == "semantic":  # one row per code: codebooks x frames
        return seg["codebooks"] * (seg["end"] - seg["start"])
    return seg["end"] - seg["start"] if seg["kind"] == "audio" else len(seg["text"].encode("utf-8"))


def _audio(row: dict, modality: str = "audio", start: int = 0, end: int | None = None) -> dict:
    return {"kind": "audio", "modality": modality, "id": row["id"], "tar": row["tar"], "key": row["key"],
            "sha256": row["sha256"], "start": start, "end": row["frames"] if end is None else end}


def _text(row: dict, text: str, modality: str = "text") -> dict:
    return {"kind": "text", "modality": modality, "id": row["id"], "text": text}


def _other_utterance(long_enough: list[dict], position: dict, uid: str, u: float) -> dict | None:
    """A drawn utterance of the group other than `uid` (UniAudio's prompt rule), or None."""
    own = position.get(uid)
    n_others = len(long_enough) - (own is not None)
    if not n_others:
        return None
    j = int(u * n_others)
    return long_enough[j + 1 if own is not None and j >= own else j]


def _simulated(derived: list[dict], rows: list[dict], long_enough: list[dict], position: dict, prompt_frames: int,
               cfg: SentenceConfig, w: SpecWriter) -> None:
    """se / dereverb / tse sequences from the engine's derived rows of this speaker group: the
    derived audio as the condition, the utterance it was made from as the target (tse: + an
    enrollment cut from another utterance of the speaker)."""
    by_id = {r["id"]: r for r in rows}
    for d in derived:
        task = d["sim_task"]
        n = copies(cfg.tasks.get(task, 0), cfg.seed, task, d["id"])
        if not n:
            continue
        target = by_id.get(d["sim_target"])
        if target is None:
            w.reject(d["id"], task, "no_target", f"the utterance it was made from ({d['sim_target']}) is not in the "
                                                 "token output (rejected upstream?)")
            continue
        for k in range(n):
            if task != "tse":
                w.add(f"{task}:{d['id']}:{k}", task, target, [_audio(d), _audio(target)], [1])
                continue
            p = _other_utterance(long_enough, position, target["id"], uniform(cfg.seed, "tse-enroll", d["id"], k))
            if p is None:
                w.reject(d["id"], task, "no_enrollment", f"speaker {target['speaker']!r} has no other utterance of "
                                                         f"at least {cfg.prompt_seconds} s")
                break
            start = int(uniform(cfg.seed, "tse-crop", d["id"], k) * (p["frames"] - prompt_frames + 1))
            w.add(f"{task}:{d['id']}:{k}", task, target,
                  [_audio(d), _audio(p, "prompt", start, start + prompt_frames), _audio(target)], [2])


def _style(r: dict) -> dict | None:
    """The pitch and rate bands the engine measured for this utterance (`measure: [prosody]`), or
    None: no instruction can be written without both."""
    m = json.loads(r["measures"]) if r.get("measures") else {}
    return {"pitch": m["pitch"], "rate": m["rate"]} if m.get("pitch") and m.get("rate") else None


def _content(r: dict, long_enough: list[dict], position: dict, prompt_frames: int, semantic: dict,
             cfg: SentenceConfig, w: SpecWriter) -> None:
    """vc, as UniAudio trains it (no parallel data): the utterance's content codes (the factorized
    tokenizer's semantic rows, `measure: [semantic]`) + a 3 s prompt from ANOTHER utterance of the
    speaker -> the utterance. At test time the content is another speaker's."""
    n = copies(cfg.tasks.get("vc", 0), cfg.seed, "vc", r["id"])
    m = json.loads(r["measures"]) if r.get("measures") else {}
    if not n:
        return
    if not m.get("semantic_frames"):
        w.reject(r["id"], "vc", "no_content_codes", "no semantic codes measured for this utterance")
        return
    content = {"kind": "semantic", "modality": "semantic", "id": r["id"], "tar": r["tar"], "key": r["key"],
               "sha256": r["sha256"], "start": 0, "end": int(m["semantic_frames"]),
               "codebooks": int(semantic["codebooks"])}
    for k in range(n):
        p = _other_utterance(long_enough, position, r["id"], uniform(cfg.seed, "vc-prompt", r["id"], k))
        if p is None:
            w.reject(r["id"], "vc", "no_prompt", f"speaker {r['speaker']!r} has no other utterance of at least "
                                                f"{cfg.prompt_seconds} s")
            return
        start = int(uniform(cfg.seed, "vc-crop", r["id"], k) * (p["frames"] - prompt_frames + 1))
        w.add(f"vc:{r['id']}:{k}", "vc", r, [content, _audio(p, "prompt", start, start + prompt_frames), _audio(r)],
              [2])


MASKABLE_SECONDS = 0.15  # a word shorter than this is too short a gap to learn infilling from


def _masked_word(r: dict, text: str, frame_rate: float, cfg: SentenceConfig, w: SpecWriter) -> None:
    """speech_edit as infilling (UniAudio's speech editing; VoiceCraft and A3T train the same way):
    the utterance before and after one word, cut at the word's timing (`measure: [words]`), + the
    transcript -> the whole utterance. At test time the edited transcript stands in for it and
    the old word's span is cut from the input. Not a first or last word: both sides keep speech."""
    n = copies(cfg.tasks.get("speech_edit", 0), cfg.seed, "speech_edit", r["id"])
    m = json.loads(r["measures"]) if r.get("measures") else {}
    if not n or "words" not in m:  # no word timings measured: the task is not made from this output
        return
    cands = [(a, b) for _, a, b in m["words"][1:-1] if b - a >= MASKABLE_SECONDS]
    if not cands:
        w.reject(r["id"], "speech_edit", "no_word_timings", f"{len(m['words'])} timed word(s), none inside the "
                                                            f"utterance of at least {MASKABLE_SECONDS} s")
        return
    for k in range(n):
        a, b = cands[int(uniform(cfg.seed, "speech-edit-word", r["id"], k) * len(cands))]
        fa, fb = max(1, int(a * frame_rate)), min(r["frames"] - 1, int(np.ceil(b * frame_rate)))
        if not 0 < fa < fb < r["frames"]:
            w.reject(r["id"], "speech_edit", "no_word_timings", f"word span {a}-{b} s is outside the "
                                                                f"{r['frames']} frames")
            return
        w.add(f"speech_edit:{r['id']}:{k}", "speech_edit", r,
              [_audio(r, "audio", 0, fa), _audio(r, "audio", fb), _text(r, text), _audio(r)], [3])


def _speaker_group(rows: list[dict], cfg: SentenceConfig, frame_rate: float, w: SpecWriter,
                   semantic: dict | None = None) -> None:
    """Sequences of one speaker's utterances (sorted by chapter, id), and of the pairs the engine
    derived from them."""
    tasks, seed = cfg.tasks, cfg.seed
    prompt_frames = max(1, int(round(cfg.prompt_seconds * frame_rate)))
    derived = [r for r in rows if r.get("sim_task")]
    rows = [r for r in rows if not r.get("sim_task")]
    long_enough = [r for r in rows if r["frames"] >= prompt_frames]
    position = {p["id"]: i for i, p in enumerate(long_enough)}
    if derived:
        _simulated(derived, rows, long_enough, position, prompt_frames, cfg, w)
    for r in rows:
        text = (r.get("text") or "").strip()
        if not text:
            w.reject(r["id"], "asr,tts,interleave,text", "empty_transcript", "no transcript: no text task can use it")
            continue
        front = frontends.for_language(cfg.text_frontends, r.get("language"), cfg.default_language)
        if front is None:
            r["text"] = None  # nor in an interleaved run
            w.reject(r["id"], "asr,tts,interleave,text", "no_text_frontend",
                     f"language {r.get('language') or cfg.default_language!r} has no text front end "
                     f"(text_frontends: {cfg.text_frontends})")
            continue
        if frontends.script_mismatch(text, r.get("language") or cfg.default_language):
            w.script_mismatch[r.get("language") or cfg.default_language] += 1  # counted, the row is kept
        try:
            text = r["text"] = front(text)  # interleave reads the row's text too
        except frontends.FrontEndError as e:
            r["text"] = None
            w.reject(r["id"], "asr,tts,interleave,text", "text_frontend_failed", str(e))
            continue
        for k in range(copies(tasks.get("asr", 0), seed, "asr", r["id"])):
            w.add(f"asr:{r['id']}:{k}", "asr", r, [_audio(r), _text(r, text)], [1])
        for k in range(copies(tasks.get("text", 0), seed, "text", r["id"])):
            w.add(f"text:{r['id']}:{k}", "text", r, [_text(r, text)], [0])
        _masked_word(r, text, frame_rate, cfg, w)
        if semantic:
            _content(r, long_enough, position, prompt_frames, semantic, cfg, w)
        style = _style(r)
        for k in range(copies(tasks.get("instruct_tts", 0), seed, "instruct_tts", r["id"]) if style else 0):
            w.add(f"instruct_tts:{r['id']}:{k}", "instruct_tts", r,
                  [_text(r, instruction(style), "caption"), _text(r, text), _audio(r)], [2])
        n_tts = copies(tasks.get("tts", 0), seed, "tts", r["id"])
        own = position.get(r["id"])
        n_others = len(long_enough) - (own is not None)
        if n_tts and not n_others:
            w.reject(r["id"], "tts", "no_prompt", f"speaker {r['speaker']!r} has no other utterance of at least "
                                                 f"{cfg.prompt_seconds} s")
            continue
        for k in range(n_tts):  # UniAudio's rule: the prompt is cut from ANOTHER utterance of the speaker
            p = _other_utterance(long_enough, position, r["id"], uniform(seed, "tts-prompt", r["id"], k))
            start = int(uniform(seed, "tts-crop", r["id"], k) * (p["frames"] - prompt_frames + 1))
            w.add(f"tts:{r['id']}:{k}", "tts", r,
                  [_text(r, text), _audio(p, "prompt", start, start + prompt_frames), _audio(r)], [2])
    if tasks.get("interleave", 0) > 0:
        _consecutive(rows, cfg, w)


def _consecutive(rows: list[dict], cfg: SentenceConfig, w: SpecWriter) -> None:
    """Runs of consecutive utterances of one chapter, in order, that fit the context."""
    run: list[dict] = []

    def emit():
        if len(run) >= 2:
            first = run[0]
            for k in range(copies(cfg.tasks["interleave"], cfg.seed, "interleave", first["id"])):
                segs = []
                for r in run:
                    segs += [_audio(r), _text(r, r["text"].strip())]
                w.add(f"interleave:{first['id']}:{len(run)}:{k}", "interleave", first, segs, list(range(1, len(segs))))
        run.clear()

    budget = cfg.context - SPECIALS_PER_SEQUENCE
    used = 0
    for r in rows:
        text = (r.get("text") or "").strip()
        cost = 2 * SPECIALS_PER_SEGMENT + r["frames"] + len(text.encode("utf-8"))
        if run and (r["chapter"] != run[-1]["chapter"] or not text or len(run) >= cfg.interleave_max
                    or used + cost > budget):
            emit()
            used = 0
        if text and cost <= budget:
            run.append(r)
            used += cost
    emit()


def _sound_edit(d: dict, recent: dict, cfg: SentenceConfig, w: SpecWriter) -> None:
    """Both edits of an engine-mixed clip: add the event (clip -> mixture) or remove it (mixture ->
    clip), one per copy by a stable draw; the instruction names the event by its caption."""
    n = copies(cfg.tasks.get("sound_edit", 0), cfg.seed, "sound_edit", d["id"])
    if not n:
        return
    clip = recent.get(d["sim_target"])
    if clip is None:
        w.reject(d["id"], "sound_edit", "no_target", f"the clip it was made from ({d['sim_target']}) is not in the "
                                                     "token output (rejected upstream?)")
        return
    event = (d.get("sim_event") or "").strip()
    for k in range(n):
        if uniform(cfg.seed, "sound-edit-op", d["id"], k) < 0.5:
            segs = [_audio(clip), _text(d, f"Add this event: {event}."), _audio(d)]
        else:
            segs = [_audio(d), _text(d, f"Remove this event: {event}."), _audio(clip)]
        w.add(f"sound_edit:{d['id']}:{k}", "sound_edit", clip, segs, [2])


def _song(r: dict, cfg: SentenceConfig, w: SpecWriter) -> None:
    """svs: the song's score as text (tokenize/score.py: lyric, MIDI pitch, seconds per note) ->
    the singing."""
    n = copies(cfg.tasks.get("svs", 0), cfg.seed, "svs", r["id"])
    if not n:
        return
    try:
        score = score_text(r["notes"])
    except ScoreTextError as e:
        w.reject(r["id"], "svs", "no_score", f"a singing row needs extra.notes (its score): {e}")
        return
    for k in range(n):
        w.add(f"svs:{r['id']}:{k}", "svs", r, [_text(r, score), _audio(r)], [1])


def _clip(r: dict, cfg: SentenceConfig, w: SpecWriter) -> None:
    """Sequences of one sound or music clip and its caption(s)."""
    caps = texts_of(r)
    if not caps:
        w.reject(r["id"], "caption,tta,ttm,text", "no_caption", "clip without a caption")
        return
    gen = "ttm" if r["domain"] == "music" else "tta"
    for c, cap in enumerate(caps):
        for k in range(copies(cfg.tasks.get("caption", 0), cfg.seed, "caption", r["id"], c)):
            w.add(f"caption:{r['id']}:{c}:{k}", "caption", r, [_audio(r), _text(r, cap, "caption")], [1])
        for k in range(copies(cfg.tasks.get(gen, 0), cfg.seed, gen, r["id"], c)):
            w.add(f"{gen}:{r['id']}:{c}:{k}", gen, r, [_text(r, cap, "caption"), _audio(r)], [1])
        for k in range(copies(cfg.tasks.get("text", 0), cfg.seed, "text", r["id"], c)):
            w.add(f"text:{r['id']}:{c}:{k}", "text", r, [_text(r, cap, "caption")], [0])


def spread(tars) -> list[str]:
    """Token tar names `{prefix}-{index}.tar` ordered by their relative position within their
    prefix, so that consecutive runs hold every corpus in proportion."""
    by_prefix: dict[str, list[str]] = {}
    for t in sorted(tars):
        by_prefix.setdefault(t.rsplit("-", 1)[0], []).append(t)
    return [t for _, _, t in sorted(((i + 0.5) / len(names), prefix, t) for prefix, names in by_prefix.items()
                                    for i, t in enumerate(names))]


def write_specs(meta: Path, work: Path, cfg: SentenceConfig, tokenizer: dict, semantic: dict | None = None) -> dict:
    """The grouping pass and the shard assignment (into the local plan folder `work`); returns
    the plan summary."""
    import duckdb

    from fnmatch import fnmatchcase

    w = SpecWriter(work)
    recent: OrderedDict = OrderedDict()  # the last clips: an engine-mixed clip's source sorts just before it
    group: list[dict] = []
    key = None
    other = Counter()
    for r in iter_meta(meta):
        r["heldout"] = any(fnmatchcase(r["split"] or "", p) for p in cfg.holdout_splits)
        if r["domain"] == "speech":
            # no speaker: a group of one; held-out and training rows never share a group
            k = (r["corpus"], r["heldout"], r["speaker"] or f"\x00{r['id']}")
            if k != key and group:
                _speaker_group(group, cfg, tokenizer["frame_rate"], w, semantic)
                group = []
            key = k
            group.append(r)
        elif r["domain"] == "singing":
            _song(r, cfg, w)
        elif r["domain"] in ("sound", "music"):
            if r.get("sim_task") == "sound_edit":  # sorted right after the clip it was made from
                _sound_edit(r, recent, cfg, w)
                continue
            _clip(r, cfg, w)
            recent[r["id"]] = r
            if len(recent) > 256:
                recent.popitem(last=False)
        else:
            other[r["domain"]] += 1
    if group:
        _speaker_group(group, cfg, tokenizer["frame_rate"], w, semantic)
    w.close()

    # output shards: runs of token tars grouped to about shard_rows rows each, the tars ordered
    # so that every corpus is spread evenly over the run (a shard of one corpus alone packs badly:
    # all its sequences have about one length)
    tarmap, names, shard = [], [], -1
    for held in (False, True):  # training shards first, then the held-out ones
        tars = [t for t, h in w.rows_per_tar if h == held]
        acc = None
        for tar in spread(tars):
            rows = w.rows_per_tar[(tar, held)]
            if acc is None or acc + rows > cfg.shard_rows:
                shard, acc = shard + 1, 0
                names.append(f"{'heldout' if held else 'sentences'}-{shard:06d}")
            tarmap.append({"tar": tar, "heldout": held, "out_shard": shard})
            acc += rows
    n_shards = len(names)
    dest = work / "specs.parquet"
    tmp = dest.with_name(".specs.parquet.tmp")
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{cfg.memory_limit}'")
    con.execute(f"SET temp_directory={sql_literal(work / 'duckdb.tmp')}")
    con.register("tarmap", pa.Table.from_pylist(tarmap, schema=pa.schema([("tar", pa.string()), ("heldout", pa.bool_()),
                                                                          ("out_shard", pa.int32())])))
    con.execute(f"""
        COPY (SELECT s.*, t.out_shard FROM read_parquet({sql_literal(w.path)}) s JOIN tarmap t USING (tar, heldout)
              ORDER BY t.out_shard, s."order", s.seq)
        TO {sql_literal(tmp)} (FORMAT parquet, ROW_GROUP_SIZE 2048)""")
    per_shard = dict(con.execute(f"SELECT out_shard, count(*) FROM read_parquet({sql_literal(tmp)}) GROUP BY 1").fetchall())
    con.close()
    os.replace(tmp, dest)
    w.path.unlink()
    pq.write_table(pa.Table.from_pylist(w.rejects, schema=REJECT_SCHEMA), str(work / "rejects.parquet"))
    return {"specs": w.n, "shards": n_shards, "shard_names": names,
            "specs_per_shard": [per_shard.get(i, 0) for i in range(n_shards)],
            "tasks_planned": dict(sorted(w.tasks.items())), "plan_rejects": len(w.rejects),
            "skipped_domains": dict(other), "script_mismatch": dict(sorted(w.script_mismatch.items()))}


UPLOADED = ("specs.parquet", "rejects.parquet")  # what the workers and the finalize step read from OUT/plan


def plan(cfg: SentenceConfig, out: str, tok_out: dict) -> dict:
    """Plan once (OUT/plan/sentences.json is written last: its presence means complete). DuckDB
    works on local files: for an output in object storage the plan is made in a temporary
    folder (the token output's index and plan files downloaded there when they are remote too)
    and the files the build reads are uploaded before the record."""
    meta_path = storage.join(out, "plan", "sentences.json")
    if storage.exists(meta_path):
        return json.loads(storage.read_text(meta_path))
    remote = storage.is_uri(out)
    work = Path(tempfile.mkdtemp(prefix="uniaudio-sentences-plan-")) if remote else Path(out) / "plan"
    work.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.ExitStack() as stack:
            index = stack.enter_context(storage.local_file(tok_out["index"]))
            plans = [stack.enter_context(storage.local_file(p)) for p in tok_out["plans"]]
            dups = storage.join(tok_out["root"], "duplicates.parquet")
            dups = stack.enter_context(storage.local_file(dups)) if storage.exists(dups) else None
            meta = metadata(index, plans, work, cfg, dups)
            index_sha = sha256_file(index)
        check_audio_fits(meta, cfg, tok_out["tokenizer"])
        bpe = text_tokenizer(meta, out, cfg)
        vocab = vocabulary(bpe, tok_out["tokenizer"], tok_out.get("semantic"))
        storage.write_text(storage.join(out, "vocab.json"), json.dumps(vocab.to_dict(), indent=2))
        # the text front ends the trainer copies into its checkpoint: the generator reads test text the same way
        storage.write_text(storage.join(out, "text_frontends.json"), json.dumps(
            {"text_frontends": cfg.text_frontends, "default_language": cfg.default_language}, indent=2))
        summary = write_specs(meta, work, cfg, tok_out["tokenizer"], tok_out.get("semantic"))
        if remote:
            for name in UPLOADED:
                storage.upload(str(work / name), storage.join(out, "plan", name))
    finally:
        if remote:
            shutil.rmtree(work, ignore_errors=True)
    summary.update(version=PLAN_VERSION, config=cfg.plan_fields(), fingerprint=cfg.fingerprint(),
                   token_index_sha256=index_sha,
                   tokenizer=tok_out["tokenizer"], text_vocab=bpe.vocab_size, vocab_size=vocab.size)
    storage.write_text(meta_path, json.dumps(summary, indent=2))
    return summary
