"""Bundles read back: `decode_bundle` (a bundle -> its sequences and segments with tokens and
text) and `describe` (the same printed for a person, `uniaudio pipeline inspect`)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ...tokenize.text import BPETokenizer
from ...tokenize.vocab import Vocabulary
from ..shards import read_tar


class BundleReader:
    """Decodes bundles of one sentence output with its vocabulary and text tokenizer."""

    def __init__(self, out: str | Path):
        out = Path(out)
        if not (out / "vocab.json").is_file() or not (out / "text_tokenizer.json").is_file():
            raise FileNotFoundError(f"{out} is not a sentence output (no vocab.json / text_tokenizer.json)")
        self.out = out
        self.vocab = Vocabulary.load(out / "vocab.json")
        self.bpe = BPETokenizer.load(out / "text_tokenizer.json")

    def uniaudio_rows(self, members: dict[str, bytes]) -> tuple[np.ndarray, dict]:
        meta = json.loads(members["json"])
        tokens = np.load(io.BytesIO(members["tokens.npy"]))
        if meta["layout"] == "multistream":
            tokens = self.vocab.from_multistream(tokens)
        return tokens, meta

    def decode(self, members: dict[str, bytes]) -> list[dict]:
        """Each sequence of a bundle: task, relation and its segments as (modality, id, tokens
        or text), parsed back from the rows through the vocabulary."""
        tokens, meta = self.uniaudio_rows(members)
        out = []
        for s in meta["sequences"]:
            a, b = s["rows"]
            task, parsed = self.vocab.parse_rows(tokens[a:b])
            segs = [g for g in meta["segments"] if g["sequence"] == s["sequence"]]
            if task != s["task"] or len(parsed) != len(segs):
                raise ValueError(f"bundle {meta['key']}: sequence {s['seq']} does not parse back to its record")
            items = []
            for g, (modality, name, local) in zip(segs, parsed):
                item = dict(g)
                if name == "text":
                    item["text"] = self.bpe.decode(local.tolist())
                else:
                    item["codes"] = local
                items.append(item)
            out.append(dict(s, segments=items))
        return out


def _find(target: str) -> tuple[Path, str | None]:
    """SHARD.tar, or SHARD.tar:KEY."""
    path, key = target.rsplit(":", 1) if ".tar:" in target else (target, "")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such shard (give OUT/shards/NAME.tar or NAME.tar:KEY)")
    return p, key or None


def describe(target: str, limit: int = 3, width: int = 100) -> str:
    """A printable account of bundles: sequences, relations, source ids, durations, text."""
    path, key = _find(target)
    reader = BundleReader(path.parent.parent)
    lines, shown = [], 0
    for k, members in read_tar(path):
        if key is not None and k != key:
            continue
        meta = json.loads(members["json"])
        lines.append(f"bundle {k}: layout {meta['layout']}, {meta['rows']} of {meta['context']} rows "
                     f"({meta['rows'] / meta['context']:.1%}), {len(meta['sequences'])} sequences")
        for s in reader.decode(members):
            lines.append(f"  [{s['rows'][0]:5d}:{s['rows'][1]:5d}] {s['task']:10} {s['relation']:12} {s['seq']}")
            for g in s["segments"]:
                head = f"      {g['modality']:8} rows {g['rows'][0]}-{g['rows'][1]:<6} {g['id']}"
                if "text" in g:
                    text = g["text"].replace("\n", " ")
                    lines.append(f"{head}  \"{text[:width]}{'...' if len(text) > width else ''}\"")
                else:
                    lines.append(f"{head}  {g['seconds']:.2f} s, frames {g['frames'][0]}-{g['frames'][1]}, "
                                 f"codes {tuple(g['codes'].shape)}")
        shown += 1
        if key is None and shown >= limit:
            break
    if key is not None and not shown:
        raise KeyError(f"{path} has no bundle {key!r}")
    return "\n".join(lines)
