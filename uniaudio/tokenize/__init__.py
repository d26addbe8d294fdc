"""Tokenizers behind one interface, found by registry name (`get("mulaw")`)."""

from .base import REGISTRY, Tokenizer, TokenizerError, get, register
from . import factorized, hf_codec, mulaw, uniaudio_codec  # noqa: F401  (register themselves)

__all__ = ["REGISTRY", "Tokenizer", "TokenizerError", "get", "register"]
