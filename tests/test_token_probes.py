"""The understanding probes of benchmarks/tokenizer_compare.py (benchmarks/token_probes.py): they
learn what the codes carry and nothing from padding or the test split."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from token_probes import bucketed, ctc_probe, speaker_probe, speaker_split


def test_bucketed_batches_cover_every_item_once_and_group_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(10, 500, 203))
    batches = bucketed(lengths, 8, np.random.default_rng(1))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(203))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 100  # random batches of 8 from 10..500 spread ~380


def test_speaker_split_is_seeded_disjoint_and_drops_rare_speakers():
    speakers = ["a"] * 10 + ["b"] * 10 + ["c"] * 2 + [None]
    train, test = speaker_split(speakers)
    assert (train, test) == speaker_split(speakers)
    assert not set(train) & set(test)
    assert {speakers[i] for i in train} == {speakers[i] for i in test} == {"a", "b"}
    assert len(test) == 4
    train, test = speaker_split(speakers, max_utts=5)
    assert len(train) == 8 and len(test) == 2 and not set(train) & set(test)


def test_speaker_probe_reads_identity_from_codes_and_chance_from_none():
    rng = np.random.default_rng(0)

    def utt(speaker, informative):
        lo = 0 if speaker == "a" or not informative else 8
        return rng.integers(lo, lo + 8, (1, int(rng.integers(20, 60)))), speaker

    for informative, expect in ((True, lambda acc: acc == 1.0), (False, lambda acc: acc <= 0.8)):
        items = [utt(s, informative) for s in "ab" * 20]
        acc = speaker_probe(items[:30], items[30:], 1, 16, epochs=6, hidden=16, batch=4)
        assert expect(acc), (informative, acc)


def test_ctc_probe_transcribes_codes_that_spell_the_text():
    rng = np.random.default_rng(0)
    spell = {"a": 1, "b": 2, " ": 3}

    def utt():
        text = "".join(rng.choice(list("ab "), int(rng.integers(2, 6)))).strip() or "a"
        codes = [c for ch in text for c in [spell[ch]] * 3 + [0]]
        return np.array([codes]), text

    train = [utt() for _ in range(64)]
    test = [utt() for _ in range(8)]
    hyps = ctc_probe(train, test, 1, 4, epochs=25, hidden=16, batch=8)
    assert sum(h == t for h, (_, t) in zip(hyps, test)) >= 7, hyps
