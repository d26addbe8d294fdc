"""Bundles read back: `decode_bundle` (a bundle -> its sequences and segments with tokens and
text) and `describe` (the same printed for a person, `uniaudio pipeline inspect`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ... import storage
from ...tokenize.text import BPETokenizer
from ...tokenize.vocab import Vocabulary
from ..shards import read_npy, read_tar


def bundle_meta(members: dict[str, bytes], key: str) -> dict:
    """A sample's KEY.json as a dict, or ValueError naming the member (an extra file in a tar
    is a sample without one: it is reported, not a KeyError)."""
    if "json" not in members:
        raise ValueError(f"{key}: not a bundle (members {', '.join(f'{key}.{e}' for e in sorted(members))}; no "
                         f"{key}.json)")
    try:
        meta = json.loads(members["json"])
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{key}.json is not JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{key}.json is not a JSON object")
    return meta


class BundleReader:
    """Decodes bundles of one sentence output with its vocabulary and text tokenizer."""

    def __init__(self, out: str | Path):
        out = str(out)
        vocab, bpe = storage.join(out, "vocab.json"), storage.join(out, "text_tokenizer.json")
        if not storage.exists(vocab) or not storage.exists(bpe):
            raise FileNotFoundError(f"{out} is not a sentence output (no vocab.json / text_tokenizer.json)")
        self.out = out
        self.vocab = Vocabulary.load(vocab)
        self.bpe = BPETokenizer.load(bpe)

    def uniaudio_rows(self, members: dict[str, bytes], key: str = "?") -> tuple[np.ndarray, dict]:
        meta = bundle_meta(members, key)
        tokens = read_npy(members, "tokens.npy", key)
        if meta.get("layout") == "multistream":
            tokens = self.vocab.from_multistream(tokens)
        return tokens, meta

    def decode(self, members: dict[str, bytes], key: str = "?") -> list[dict]:
        """Each sequence of a bundle: task, relation and its segments as (modality, id, tokens
        or text), parsed back from the rows through the vocabulary. `key` names it in errors."""
        tokens, meta = self.uniaudio_rows(members, key)
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
        try:
            meta = bundle_meta(members, k)
            seqs = reader.decode(members, k)
        except (ValueError, KeyError, TypeError) as e:
            if key is not None:
                raise ValueError(f"{path.name}: bundle {e}") from None
            lines.append(f"bundle {k}: UNREADABLE: {e}" if not str(e).startswith(k) else f"bundle UNREADABLE: {e}")
            shown += 1
            if shown >= limit:
                break
            continue
        lines.append(f"bundle {k}: layout {meta['layout']}, {meta['rows']} of {meta['context']} rows "
                     f"({meta['rows'] / meta['context']:.1%}), {len(meta['sequences'])} sequences")
        for s in seqs:
            lines.append(f"  [{s['rows'][0]:5d}:{s['rows'][1]:5d}] {s['task']:10} {s['relation']:12} {s['seq']}")
            for g in s["segments"]:
                head = f"      {g['modality']:8} rows {g['rows'][0]}-{g['rows'][1]:<6} {g['id']}"
                if "text" in g:
                    text = g["text"].replace("\n", " ")
                    lines.append(f"{head}  \"{text[:width]}{'...' if len(text) > width else ''}\"")
                elif g.get("member") == "semantic.npy":  # content codes (vc): frames of the semantic rows
                    lines.append(f"{head}  content codes, semantic frames {g['frames'][0]}-{g['frames'][1]}, "
                                 f"codes {tuple(g['codes'].shape)}")
                else:
                    lines.append(f"{head}  {g['seconds']:.2f} s, frames {g['frames'][0]}-{g['frames'][1]}, "
                                 f"codes {tuple(g['codes'].shape)}")
        shown += 1
        if key is None and shown >= limit:
            break
    if key is not None and not shown:
        raise KeyError(f"{path} has no bundle {key!r}")
    return "\n".join(lines)
