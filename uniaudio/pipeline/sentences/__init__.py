"""Auditory sentences: token shards -> packed training bundles (`uniaudio pipeline sentences`).

config.py  what to build (tasks and their weights, layout, context)
plan.py    metadata join + sort (DuckDB), one grouping pass -> sequence specs per output shard
build.py   per output shard (a Ray task): specs -> tokens -> rows -> packed bundles -> tar
run.py     the driver: plan, resume, Ray, index/rejects/report
inspect.py a bundle printed for a person"""

from .config import LAYOUTS, TASK_RELATION, SentenceConfig
from .run import run

__all__ = ["LAYOUTS", "TASK_RELATION", "SentenceConfig", "run"]
