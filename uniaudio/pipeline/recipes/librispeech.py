"""LibriSpeech: ROOT/{split}/SPK/CHAP/SPK-CHAP-UTT.flac + SPK-CHAP.trans.txt (+ SPEAKERS.TXT)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...manifest import Record
from .common import REJECT_KEY, decode_lines


def speakers(root: Path) -> dict[str, str]:
    """Speaker id -> sex from SPEAKERS.TXT, when present."""
    for cand in (root / "SPEAKERS.TXT", root.parent / "SPEAKERS.TXT"):
        if cand.is_file():
            out = {}
            for line in cand.read_text(errors="replace").splitlines():
                if line.startswith(";") or "|" not in line:
                    continue
                parts = [p.strip() for p in line.split("|")]
                out[parts[0]] = parts[1]
            return out
    return {}


def recipe(root: Path, split: str | None = None, corpus: str = "librispeech") -> Iterator[Record]:
    sex = speakers(root)
    for trans in sorted(root.rglob("*.trans.txt")):
        spk, chap = trans.parent.parent.name, trans.parent.name
        this_split = trans.parent.parent.parent.name
        if split and this_split != split:
            continue
        for n, (line, raw) in enumerate(decode_lines(trans.read_bytes())):
            extra = {"chapter": chap}
            if spk in sex:
                extra["sex"] = sex[spk]
            if line is None:
                uid = raw.split(b" ", 1)[0].decode("ascii", "replace")
                text, extra[REJECT_KEY] = None, f"invalid_utf8: {trans.name} line {n + 1}"
            elif not line.strip():
                continue
            else:
                uid, _, text = line.strip().partition(" ")
            path = trans.parent / f"{uid}.flac"
            yield Record(id=uid, corpus=corpus, split=this_split, domain="speech", path=str(path),
                         text=text, speaker=spk, language="en", extra=extra)
