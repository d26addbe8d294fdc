"""A singing score as the text the LM reads for svs: one `lyric midi seconds` group per note,
"|" between notes, e.g. "the 52 0.50 | sun 55 0.35". The sentence stage writes it for training
rows (manifest `extra.notes`) and the generator for test items: one format, one place. A score is
a list of notes {"lyric": str, "midi": number, "seconds": number} (UniAudio's SVS condition:
phonemes with note pitch and duration; here the lyric words go to the BPE like any text)."""

from __future__ import annotations


class ScoreTextError(ValueError):
    """Notes that cannot be written as a score text (missing, or a note without its fields)."""


def score_text(notes) -> str:
    if isinstance(notes, str):  # a JSON string (a manifest's extra as read back)
        import json

        try:
            notes = json.loads(notes)
        except ValueError as e:
            raise ScoreTextError(f"notes are not JSON: {e}") from None
    if not isinstance(notes, list) or not notes:
        raise ScoreTextError(f"a score needs a non-empty list of notes, got {notes!r:.60}")
    out = []
    for i, n in enumerate(notes):
        try:
            lyric, midi, sec = str(n["lyric"]).strip(), float(n["midi"]), float(n["seconds"])
        except (TypeError, KeyError, ValueError):
            raise ScoreTextError(f"note {i}: needs lyric, midi and seconds, got {n!r:.60}") from None
        if not lyric or len(lyric.split()) != 1:
            raise ScoreTextError(f"note {i}: the lyric must be one word, got {lyric!r}")
        out.append(f"{lyric} {midi:g} {sec:.2f}")
    return " | ".join(out)
