"""uniaudio: data engine, tokenizers, trainer and benchmark harness for audio foundation models."""

__version__ = "0.1.0"
