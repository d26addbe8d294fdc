"""Tasks, one module each (what a system reads and writes, its metrics, the built-in systems
scored on it and its demo test set): see base.py. Importing this package registers them, in
the order leaderboards show them; a new task is one more module (or one `register` call)."""

from . import (  # noqa: F401  (each registers itself)
    asr,
    tts,
    instruct_tts,
    svs,
    speech_edit,
    se,
    dereverb,
    vc,
    tse,
    tta,
    ttm,
    sound_edit,
    caption,
    mmlu,
    codec,
)
from .base import TASKS, DemoSuite, Task, metric, output_file, register, row_value

__all__ = ["TASKS", "DemoSuite", "Task", "metric", "output_file", "register", "row_value"]
