"""Text BPE with Hugging Face `tokenizers`: byte-level, so any UTF-8 text round-trips.
Train on manifest text/captions or load a tokenizer.json."""

from __future__ import annotations

from pathlib import Path

from .. import storage
from typing import Iterable, Iterator


class BPETokenizer:
    name = "bpe"

    def __init__(self, tokenizer):
        self.tok = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> "BPETokenizer":
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        from tokenizers import Tokenizer

        if not storage.exists(str(path)):
            raise FileNotFoundError(f"BPE tokenizer file not found: {path}")
        return cls(Tokenizer.from_str(storage.read_text(str(path))))

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.tok.save(str(p))
        return p

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"BPE ids out of range [0, {self.vocab_size}): {bad[:5]}")
        return self.tok.decode(list(ids))


def manifest_texts(paths: Iterable[str | Path], fields: tuple[str, ...] = ("text", "caption")) -> Iterator[str]:
    """Text and captions of manifests, streamed."""
    from ..manifest import iter_batches

    for p in paths:
        for batch in iter_batches(p, columns=list(fields)):
            for col in fields:
                for v in batch.column(col).to_pylist():
                    if v:
                        yield v
