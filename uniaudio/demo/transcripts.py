"""Seeded sentence generator: varied, plausible English sentences in words only (no digits or
punctuation that a TTS voice would read differently from the transcript).

Every person can do every action, so any combination is a sentence a person might say: the
offline ASR (Whisper tiny.en) reads espeak-ng speech of such sentences at 7-11% WER, against
15-44% for the earlier word-salad templates ("the curious bridges waited quickly"), where its
language model fought the words and every speech leaderboard of the demo looked broken."""

from __future__ import annotations

import random
import re

PEOPLE = ("the old man|my sister|the children|our teacher|the doctor|my father|the young woman|his brother|the farmer|"
          "her friends|the little boy|the driver|our neighbors|my mother|the students|the captain|john|mary|peter|"
          "sarah|david|emma|the baker|my uncle").split("|")
ACTIONS = ("opened the window|closed the front door|bought a new car|read the first chapter|painted the kitchen|"
           "cleaned the whole house|fixed the old radio|baked a loaf of bread|wrote a long letter|washed the dishes|"
           "planted a tree in the garden|found a small cat|lost the keys to the office|sold the house by the lake|"
           "cooked dinner for the family|carried the heavy boxes upstairs|called the police|visited an old friend|"
           "waited for the train|walked to the market|stayed at home|went to the city|sat by the fire|"
           "talked about the weather|listened to the radio|looked out of the window|came home late|"
           "fell asleep on the sofa|played in the park|worked in the field|drove to the station|"
           "swam across the river|climbed the hill behind the school|watched a film about the sea|"
           "told us a story about the war|asked for a glass of water|ate lunch in the garden|"
           "forgot to lock the door|moved to a small town|taught the class to sing").split("|")
TIMES = ("this morning|last week|after dinner|in the spring|on sunday|before breakfast|yesterday|every evening|"
         "last summer|at night|in the afternoon|two days ago|early in the morning|during the holidays").split("|")
REASONS = ("because it was raining|because the room was too warm|while the others were sleeping|before the sun went "
           "down|because the shop was closed|after the long meeting|when the bus was late|because it was too cold "
           "outside").split("|")

TEMPLATES = (
    "{s} {a} {t}",
    "{t} {s} {a}",
    "{s} {a} {r}",
    "{s} {a} and {s2} {a2}",
    "{s} said that {s2} {a} {t}",
    "when {s} {a} {s2} {a2}",
    "{t} {s} {a} {r}",
    "{s} {a} but {s2} {a2}",
)


def sentences(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        tpl = rng.choice(TEMPLATES)
        (s, s2), (a, a2) = rng.sample(PEOPLE, 2), rng.sample(ACTIONS, 2)
        out.append(tpl.format(s=s, s2=s2, a=a, a2=a2, t=rng.choice(TIMES), r=rng.choice(REASONS)))
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
