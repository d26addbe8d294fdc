"""Metric registry: `get("wer")`, `get("pesq", mode="nb")`, ..."""

from . import (  # noqa: F401  (register themselves)
    accuracy, captioning, clap, fad, intrusive, kl, mos, prosody, speaker, wer, world,
)
from .base import REGISTRY, SET_METRICS, Metric, MetricError, Sample, Value, declared, get

__all__ = ["REGISTRY", "SET_METRICS", "Metric", "MetricError", "Sample", "Value", "declared", "get"]
