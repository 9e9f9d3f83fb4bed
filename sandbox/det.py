"""Deterministic pseudo-randomness: every seeded value is a pure function of the seed and a few labels.

Nothing here keeps state, so the truth API and the extension compute the same answer for the same inputs,
in any order and in any process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def digest(*parts: object) -> int:
    """A 64-bit integer hash of ``parts`` (stable across processes, unlike ``hash()``)."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def unit(*parts: object) -> float:
    """A float in [0, 1) determined by ``parts``."""
    return digest(*parts) / 2**64


def between(lo: float, hi: float, *parts: object) -> float:
    """A float in [lo, hi) determined by ``parts``."""
    return lo + (hi - lo) * unit(*parts)


def integer(lo: int, hi: int, *parts: object) -> int:
    """An int in [lo, hi] determined by ``parts``."""
    return lo + digest(*parts) % (hi - lo + 1)


def pick(seq: Sequence[T], *parts: object) -> T:
    """One element of ``seq`` determined by ``parts``."""
    return seq[digest(*parts) % len(seq)]


def hexid(length: int, *parts: object) -> str:
    """A lowercase hex string of ``length`` characters, e.g. for ``i-0123...`` resource ids."""
    out = ""
    salt = 0
    while len(out) < length:
        out += hashlib.blake2b("\x1f".join(str(p) for p in (*parts, salt)).encode(), digest_size=16).hexdigest()
        salt += 1
    return out[:length]


def gauss(*parts: object) -> float:
    """A standard normal variate determined by ``parts`` (Box-Muller on two hashed uniforms)."""
    import math

    u1 = max(unit(*parts, "g1"), 1e-12)
    u2 = unit(*parts, "g2")
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)
