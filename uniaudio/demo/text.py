"""Seeded sentence generator: varied English sentences in words only (no digits or
punctuation that a TTS voice would read differently from the transcript)."""

from __future__ import annotations

import random
import re

ADJ = "quiet bright old young heavy gentle silver narrow ancient busy golden patient curious hollow distant crowded".split()
NOUN = ("river garden teacher lantern harbor engine window village mountain letter bridge kitchen "
        "market forest captain doctor station painter library island violin orchard").split()
VERB = "carried followed painted noticed repaired visited watched opened crossed remembered described gathered".split()
INTRANS = "waited laughed slept listened wandered arrived trembled vanished".split()
ADV = "slowly quickly carefully quietly suddenly happily rarely nearly".split()
PREP = "near beyond under behind across beside toward".split()
NAMES = "anna marcus elena thomas grace oliver nora samuel".split()
NUM = "two three four five six seven eight nine ten eleven twelve twenty".split()
TIME = "in the morning|at noon|after the storm|before dawn|during the winter|on the last day".split("|")

TEMPLATES = (
    "the {a} {n} {v} the {a2} {n2} {t}",
    "{name} {v} the {n} {p} the {a} {n2}",
    "{num} {a} {n}s {i} {adv} {p} the {n2}",
    "{t} the {n} {i} and {name} {v} the {a} {n2}",
    "nobody {v} the {a} {n} until {name} {i} {adv}",
    "the {n} {p} the {n2} was {a} and {a2} {t}",
    "{name} said that the {a} {n} {i} {p} the {n2}",
    "when the {n} {i} {name} {v} {num} {a} {n2}s",
)


def sentences(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        tpl = rng.choice(TEMPLATES)
        s = tpl.format(
            a=rng.choice(ADJ), a2=rng.choice(ADJ), n=rng.choice(NOUN), n2=rng.choice(NOUN),
            v=rng.choice(VERB), i=rng.choice(INTRANS), adv=rng.choice(ADV), p=rng.choice(PREP),
            name=rng.choice(NAMES), num=rng.choice(NUM), t=rng.choice(TIME),
        )
        out.append(" ".join(s.split()))
    return out


_SPOKEN = re.compile(r"[A-Za-z ,;:'!?.\"-]+")  # what a voice reads as written (no digits, symbols, URLs)
# spelled out letter by letter (NASA, C.I.A., D. C.) or not read at all (alt.cyberpunk): the
# transcript would not say what the voice says (the Russian voice even writes an empty file)
_ACRONYM = re.compile(r"[A-Z]{2,}|\b[A-Z]\.|\.\w")


def sentences_from_text(text: str, min_words: int = 5, max_words: int = 24) -> list[str]:
    """Sentences of any English text (paragraphs split at blank lines or `%` lines, as fortune
    files write them) that a voice reads exactly as the transcript says: letters and plain
    punctuation only, no acronyms or attributions, min_words..max_words words; first
    occurrences, in order."""
    paragraphs = re.split(r"\n\s*(?:%\s*)?\n|\n%\n", text.replace("\r", ""))
    out, seen = [], set()
    for para in paragraphs:
        for sent in re.split(r"(?<=[.!?])\s+", " ".join(para.split())):
            sent = sent.strip().strip('"').strip()
            if "--" in sent or not _SPOKEN.fullmatch(sent) or _ACRONYM.search(sent):
                continue
            n = len(re.findall(r"[A-Za-z']+", sent))
            if min_words <= n <= max_words and sent.lower() not in seen:
                seen.add(sent.lower())
                out.append(sent)
    return out


def transcript(text: str) -> str:
    """LibriSpeech style: upper-case words and apostrophes, single spaces."""
    return " ".join(re.sub(r"[^A-Z' ]+", " ", text.upper()).split())
