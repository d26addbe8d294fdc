"""The run's funnel (report.json `funnel`): items and hours into and out of each stage, in the
order the engine applies them, with the reasons of what each stage dropped.

Segmentation turns recordings into segments (and drops the silence between them), so its row
counts recordings in and segments out; every later stage sees items, and drops them only by
rejecting (rejects.parquet, its `stage` column). Simulated pairs join at planning as items of
their own input. `dedup` removes nothing from the shards: it lists copies that sentences skip."""

from __future__ import annotations

STAGES = ("segment", "plan", "decode", "simulate", "filter", "transcribe", "transcript_check", "semantic",
          "speech_rate", "quality", "tokenize")


def _row(stage, items_in, seconds_in, items_out, seconds_out, reasons):
    return {"stage": stage, "items_in": items_in, "hours_in": round(seconds_in / 3600, 4),
            "items_out": items_out, "hours_out": round(seconds_out / 3600, 4),
            "rejected": items_in - items_out if stage != "segment" else sum(reasons.values()),
            "reasons": dict(sorted(reasons.items()))}


ALWAYS = ("plan", "decode", "filter", "tokenize")


def build(segmented: list[dict], by_stage: dict[str, dict], samples: int, seconds: float,
          duplicates: dict | None, active: set[str] = frozenset()) -> list[dict]:
    """segmented: each segmented input's summary (segment.build); by_stage: stage -> {items,
    seconds, reasons} of the rejects; samples / seconds: what the shards hold; active: the
    optional stages the config turned on (shown even when they dropped nothing)."""
    rows = []
    if segmented:
        rec = sum(s["recordings"] for s in segmented)
        reasons: dict[str, int] = {}
        for s in segmented:
            for k, v in s["rejected"].items():
                reasons[k] = reasons.get(k, 0) + v
        rows.append(_row("segment", rec, 3600 * sum(s["hours_in"] for s in segmented),
                         sum(s["segments"] for s in segmented), 3600 * sum(s["hours_out"] for s in segmented),
                         reasons))
    later = {k: v for k, v in by_stage.items() if k != "segment"}
    items = samples + sum(v["items"] for v in later.values())
    secs = seconds + sum(v["seconds"] for v in later.values())
    order = list(STAGES[1:]) + sorted(set(later) - set(STAGES))  # a stage this list lacks still counts
    for stage in order:
        got = later.get(stage, {"items": 0, "seconds": 0.0, "reasons": {}})
        if stage not in ALWAYS and stage not in active and not got["items"]:
            continue
        rows.append(_row(stage, items, secs, items - got["items"], secs - got["seconds"], got["reasons"]))
        items, secs = items - got["items"], secs - got["seconds"]
    if duplicates is not None:
        rows.append(_row("dedup", samples, seconds, samples - duplicates["items"], seconds - duplicates["seconds"],
                         duplicates["by_reason"]))
    return rows
