"""Metric registry: `get("wer")`, `get("pesq", mode="nb")`, ..."""

from . import accuracy, clap, intrusive, kl, mos, prosody, speaker, wer, world  # noqa: F401  (register themselves)
from .base import REGISTRY, Metric, MetricError, Sample, get

__all__ = ["REGISTRY", "Metric", "MetricError", "Sample", "get"]
