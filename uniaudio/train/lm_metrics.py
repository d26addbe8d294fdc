"""What `train lm` measures besides the loss it trains on: the loss per task and per codebook
(`breakdown`, summed over a log window, `means` at its end), the held-out evaluation, and the
unigram bars a validation loss must beat (`unigram_baseline`)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from .data import BundleReader, SentenceData


def unigram_baseline(data: SentenceData, train_refs, val_refs, max_bundles: int = 2000) -> dict:
    """What knowing only token frequencies gives, in nats per token: for audio (averaged over
    the codebooks) and for text rows (every non-audio target token), the entropy of the
    training targets and the cross-entropy of that (add-one smoothed) unigram on the
    validation targets: the bars validation losses must beat."""
    k = data.vocab.audio_range().codebooks
    reader = BundleReader(data.root, data.vocab, 10**9, [np.arange(data.vocab.size)] * k)
    size = data.vocab.size

    def counts(refs):
        c = [np.zeros(size, np.int64) for _ in range(k + 1)]  # K codebooks, then text
        for r in refs[:max_bundles]:
            try:
                b = reader.read(r)
            except ValueError:
                continue
            audio = data.vocab.is_audio_row(b["ids"])
            for s in range(k):
                c[s] += np.bincount(b["ids"][audio & b["loss"], s], minlength=size)
            c[k] += np.bincount(b["ids"][~audio & b["loss"], 0], minlength=size)
        return c

    def bars(tr, va):
        p = tr / max(1, tr.sum())
        nz = p[p > 0]
        q = (tr + 1) / (tr.sum() + len(tr))
        return (float(-(nz * np.log(nz)).sum()) if len(nz) else float("nan"),
                float(-(va * np.log(q)).sum() / va.sum()) if va.sum() else float("nan"))

    tr, va = counts(train_refs), counts(val_refs)
    audio = data.vocab.audio_range()
    ent, cross = [], []
    for s in range(k):
        lo, hi = audio.offset + s * audio.size, audio.offset + (s + 1) * audio.size
        e, x = bars(tr[s][lo:hi], va[s][lo:hi])
        ent.append(e)
        cross.append(x)
    non_audio = np.ones(size, bool)
    non_audio[audio.offset:audio.end] = False
    te, tx = bars(tr[k][non_audio], va[k][non_audio])
    return {"unigram_entropy_train": round(float(np.mean(ent)), 4),
            "unigram_cross_entropy_val": round(float(np.mean(cross)), 4),
            "text_unigram_entropy_train": round(te, 4), "text_unigram_cross_entropy_val": round(tx, 4)}


def breakdown(out, batch, vocab, task_names: dict) -> dict:
    """Summed losses and counts per task and per codebook (audio rows), for the log."""
    bi, ti = out["rows"]
    loss, valid = out["loss"].detach().float().cpu(), out["valid"].cpu()
    bi, ti = bi.cpu(), ti.cpu()
    tasks = batch["task"][bi, ti]
    audio = torch.from_numpy(vocab.is_audio_row(batch["ids"][bi, ti].numpy()))
    acc: dict = defaultdict(float)
    k = vocab.audio_range().codebooks
    # multiscale: [N, K] (a text row: slot 0); multistream: [N, K + 1] (codebooks, then the text stream)
    text_col = k if loss.shape[1] == k + 1 else 0
    row_loss = (loss * valid).sum(1) / valid.sum(1).clamp(min=1)
    for t in tasks.unique().tolist():
        sel = tasks == t
        acc[f"task/{task_names.get(t, t)}/sum"] += float(row_loss[sel].sum())
        acc[f"task/{task_names.get(t, t)}/n"] += int(sel.sum())
    for s in range(k):
        acc[f"codebook/{s}/sum"] += float(loss[audio, s].sum())
        acc[f"codebook/{s}/n"] += int(audio.sum())
    acc["all/sum"] += float((loss * valid).sum())
    acc["all/n"] += int(valid.sum())
    acc["audio/sum"] += float(loss[audio, :k].sum())
    acc["audio/n"] += int(audio.sum()) * k
    acc["text/sum"] += float(loss[~audio, text_col].sum())  # a text row predicts one token (repeated K times)
    acc["text/n"] += int((~audio).sum())
    return acc


def means(acc: dict) -> dict:
    out = {}
    for key in acc:
        if key.endswith("/sum"):
            base = key[:-4]
            n = acc.get(base + "/n", 0)
            out[base] = round(acc[key] / n, 4) if n else None
    return out


@torch.no_grad()
def evaluate(model, batches, ctx, losses, vocab, task_names) -> dict:
    model.eval()
    acc: dict = defaultdict(float)
    for b in batches:
        with ctx:
            _, out = losses(model, b)
        for k, v in breakdown(out, b, vocab, task_names).items():
            acc[k] += v
    model.train()
    return means(acc)
