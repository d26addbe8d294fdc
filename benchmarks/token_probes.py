"""Understanding probes over token sets, DASB-style, for benchmarks/tokenizer_compare.py.

Every probe reads codes already repeated onto one grid (50 Hz), so each token set gets the same
compute: per-codebook embeddings, concatenated, then a BiLSTM.
- `ctc_probe`: 2-layer BiLSTM + CTC on characters -> hypotheses (WER is the caller's).
- `speaker_probe`: 1-layer BiLSTM, mean-pooled over the frames, -> speaker; top-1 accuracy on
  held-out utterances of the same speakers (how much speaker identity the tokens carry: a
  semantic stream should carry little, acoustic streams much).
Batches are length-bucketed, so an epoch costs about its real frames and the backward direction
of the LSTM reads little padding (a packed LSTM would read none, but runs ~10x slower on CPU).
"""

from __future__ import annotations

import numpy as np


def bucketed(lengths: list[int], batch: int, rng: np.random.Generator, pool: int = 32) -> list[list[int]]:
    """Indices in batches of similar length: shuffle, sort within pools of `pool` batches, shuffle batches."""
    order = rng.permutation(len(lengths))
    out = []
    for s in range(0, len(order), batch * pool):
        chunk = sorted(order[s:s + batch * pool], key=lambda i: lengths[i])
        out += [chunk[b:b + batch] for b in range(0, len(chunk), batch)]
    return [out[i] for i in rng.permutation(len(out))]


def _encoder(n_rows: int, size: int, hidden: int, layers: int):
    import torch
    from torch import nn

    class Encoder(nn.Module):
        """[B, rows, T] codes + lengths -> [B, T, 2*hidden] BiLSTM features (zero past each length)."""

        def __init__(self):
            super().__init__()
            self.emb = nn.ModuleList(nn.Embedding(size, 64) for _ in range(n_rows))
            self.lstm = nn.LSTM(64 * n_rows, hidden, num_layers=layers, bidirectional=True, batch_first=True)

        def forward(self, x, lengths):
            e = torch.cat([self.emb[k](x[:, k]) for k in range(n_rows)], -1)
            # padded, not packed: a packed LSTM is ~10x slower on CPU (torch 2.13, 1 thread); batches of
            # similar length keep the padding the backward direction reads small
            out = self.lstm(e)[0]
            return out * (torch.arange(x.shape[-1])[None, :] < lengths[:, None])[..., None]

    return Encoder()


def _stack(codes: list[np.ndarray], n_rows: int):
    import torch

    t = max(c.shape[1] for c in codes)
    x = torch.zeros(len(codes), n_rows, t, dtype=torch.long)
    for b, c in enumerate(codes):
        x[b, :, : c.shape[1]] = torch.from_numpy(c)
    return x, torch.tensor([c.shape[1] for c in codes])


def ctc_probe(train, test, n_rows: int, size: int, epochs: int, hidden: int, batch: int = 16, seed: int = 0,
              progress=lambda it, _desc: it) -> list[str]:
    """train/test: lists of (codes [rows, T] on the grid, text). Returns greedy CTC hypotheses for test."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    chars = sorted({ch for _, t in train for ch in t})
    index = {ch: i + 1 for i, ch in enumerate(chars)}  # 0: blank
    enc = _encoder(n_rows, size, hidden, 2)
    head = nn.Linear(2 * hidden, len(chars) + 1)
    params = [*enc.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3)
    rng = np.random.default_rng(seed)
    lengths = [c.shape[1] for c, _ in train]
    for _ in progress(range(epochs), "ctc probe epochs"):
        for idx in bucketed(lengths, batch, rng):
            x, lens = _stack([train[i][0] for i in idx], n_rows)
            logp = head(enc(x, lens)).log_softmax(-1).transpose(0, 1)
            targets = [torch.tensor([index[ch] for ch in train[i][1] if ch in index]) for i in idx]
            loss = nn.functional.ctc_loss(logp, torch.cat(targets), lens, torch.tensor([len(t) for t in targets]),
                                          zero_infinity=True)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
    hyps = []
    with torch.no_grad():
        for c, _ in test:
            x, lens = _stack([c], n_rows)
            best = head(enc(x, lens)).argmax(-1)[0].tolist()
            prev, text = 0, []
            for i in best:
                if i != prev and i != 0:
                    text.append(chars[i - 1])
                prev = i
            hyps.append("".join(text))
    return hyps


def speaker_split(speakers: list[str], test_fraction: float = 0.2, min_utts: int = 5, max_utts: int | None = None,
                  seed: int = 0):
    """Seeded per-speaker split of utterance indices -> (train, test); speakers with < min_utts are left out,
    and at most max_utts (a seeded sample) of each kept, so that a few large speakers do not dominate."""
    rng = np.random.default_rng(seed)
    by = {}
    for i, s in enumerate(speakers):
        if s:
            by.setdefault(s, []).append(i)
    train, test = [], []
    for s in sorted(by):
        if len(by[s]) < min_utts:
            continue
        idx = list(rng.permutation(by[s]))[:max_utts]
        n_test = max(1, round(test_fraction * len(idx)))
        test += idx[:n_test]
        train += idx[n_test:]
    return sorted(train), sorted(test)


def speaker_probe(train, test, n_rows: int, size: int, epochs: int, hidden: int, batch: int = 16, seed: int = 0,
                  progress=lambda it, _desc: it) -> float:
    """train/test: lists of (codes [rows, T] on the grid, speaker). Returns top-1 accuracy on test."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    labels = sorted({s for _, s in train})
    index = {s: i for i, s in enumerate(labels)}
    enc = _encoder(n_rows, size, hidden, 1)
    head = nn.Linear(2 * hidden, len(labels))
    params = [*enc.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3)
    rng = np.random.default_rng(seed)
    lengths = [c.shape[1] for c, _ in train]

    def logits(codes):
        x, lens = _stack(codes, n_rows)
        h = enc(x, lens).sum(1) / lens[:, None]  # mean over real frames (padding is zero)
        return head(h)

    for _ in progress(range(epochs), "speaker probe epochs"):
        for idx in bucketed(lengths, batch, rng):
            loss = nn.functional.cross_entropy(logits([train[i][0] for i in idx]),
                                               torch.tensor([index[train[i][1]] for i in idx]))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
    with torch.no_grad():
        right = sum(int(logits([c]).argmax(-1)) == index.get(s, -1) for c, s in test)
    return right / len(test)
