"""Stable draws: what the engine and the sentence stage pick (pairs, prompts, copies) is a hash of
(seed, task, id, ...), never a random state, so a rerun or a resume draws the same and no draw
depends on the order rows arrive in."""

from __future__ import annotations

import hashlib
import math


def uniform(*parts) -> float:
    """A stable uniform number in [0, 1) from the parts."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


def copies(weight: float, *parts) -> int:
    """How many a weight gives one eligible item: floor(w), plus one with probability frac(w)."""
    whole = int(math.floor(weight))
    return whole + int(uniform(*parts) < weight - whole)
