"""Tokenizers behind one interface, found by registry name (`get("mulaw")`)."""

from .base import REGISTRY, Tokenizer, TokenizerError, get, register
from . import mulaw  # noqa: F401  (registers itself)

__all__ = ["REGISTRY", "Tokenizer", "TokenizerError", "get", "register"]
