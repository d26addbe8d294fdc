"""Sound editing: a sound + an instruction (add or remove an event) -> the edited sound.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

import numpy as np

from ... import audio
from ...manifest import Record
from .base import DemoSuite, Task, metric, output_file, register


def sound_edit_items(seed: int) -> list[dict]:
    """Edit pairs from the demo sound synthesizer: `add` items (background -> background + event)
    and `remove` items (mixture -> background), each background with a different event and seed
    in the two, so the set of inputs differs from the set of targets (FAD compares sets). The same
    generators and seeds make input and target, so the target is exactly the requested edit.
    Dicts: id, op, instruction, caption (of the target), input, target (float32 at 16 kHz)."""
    import random

    from ...demo import sounds

    rng = random.Random(f"sound-edit-{seed}")
    n = int(sounds.CLIP_SECONDS * sounds.SAMPLE_RATE)
    items = []
    combos = [("add", "rain", "bell"), ("add", "rumble", "beeps"), ("add", "hum", "siren"),
              ("remove", "rain", "ticking"), ("remove", "rumble", "chirps"), ("remove", "hum", "beeps")]
    for k, (op, bg, ev) in enumerate(combos):
        g_bg, sample_bg, bg_caps = sounds.BACKGROUNDS[bg]
        g_ev, sample_ev, ev_caps = sounds.EVENTS[ev]
        bp, ep = sample_bg(rng), sample_ev(rng)
        back = g_bg(np.random.default_rng(seed * 100 + k), n, bp)
        event = g_ev(np.random.default_rng(seed * 100 + 50 + k), n, ep)
        scale = 0.8 / max(1e-9, float(np.abs(back + event).max()))  # one gain for both: the edit is exact
        both, only_bg = ((back + event) * scale).astype(np.float32), (back * scale).astype(np.float32)
        ev_text, bg_text = ev_caps[0](ep), bg_caps[0]
        if op == "add":
            items.append({"id": f"sound-edit-add-{ev}-to-{bg}", "op": op, "instruction": f"Add this event: {ev_text}.",
                          "caption": sounds._caption(ev_text, bg_text), "input": only_bg, "target": both})
        else:
            items.append({"id": f"sound-edit-remove-{ev}-from-{bg}", "op": op, "instruction": f"Remove the {ev}.",
                          "caption": bg_text[0].upper() + bg_text[1:], "input": both, "target": only_bg})
    return items


def demo(s: DemoSuite) -> list[Record]:
    out = []
    for it in sound_edit_items(s.seed):
        src = audio.save(output_file(s.root / "sound_edit_input", it["id"], ".wav"), it["input"], 16000)
        ref = audio.save(output_file(s.root / "sound_edit_target", it["id"], ".wav"), it["target"], 16000)
        out.append(Record(id=it["id"], corpus="demo-sound-edit", split="test", domain="sound", path=str(ref),
                          caption=it["caption"], language="en",
                          extra={"input_path": str(src), "instruction": it["instruction"], "op": it["op"]}))
    return out


TASK = register(Task("sound_edit", "audio", (metric("lsd"), metric("kl"), metric("clap")),
                     "sound + an instruction (add or remove an event) -> the edited sound (log-spectral "
                     "distance and KL vs the reference edit, CLAP vs the target's caption; FAD over the set)",
                     {"ref_audio": "path", "ref_text": "caption"}, input="extra:input_path",
                     set_metrics=(metric("fad"),),
                     systems=("passthrough", "ground-truth", "shuffled"), demo=demo))
