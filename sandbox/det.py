"""Deterministic pseudo-randomness: every seeded value is a pure function of the seed and a few labels.

Nothing here keeps state, so the truth API and the extension compute the same answer for the same inputs,
in any order and in any process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes
SEP = "\x1f"


def digest(*parts: object) -> int:
    """A 64-bit integer hash of ``parts`` (stable across processes, unlike ``hash()``)."""
    return _from_bytes(_blake2b(SEP.join(map(str, parts)).encode("utf-8"), digest_size=8).digest(), "big")


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
    head = SEP.join(map(str, parts)) + SEP if parts else ""
    out = ""
    salt = 0
    while len(out) < length:
        out += _blake2b(f"{head}{salt}".encode(), digest_size=16).hexdigest()
        salt += 1
    return out[:length]


def gauss(*parts: object) -> float:
    """A standard normal variate determined by ``parts`` (Box-Muller on two hashed uniforms)."""
    import math

    u1 = max(unit(*parts, "g1"), 1e-12)
    u2 = unit(*parts, "g2")
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)


class Prefix:
    """The functions above for parts that all start with the same ``parts``: ``Prefix(a, b).digest(c) ==
    digest(a, b, c)``, with the prefix hashed once (a copy of the blake2b state per value, instead of joining and
    hashing every part again). For the hot loops (Config evaluations: millions of values per realistic day).
    """

    __slots__ = ("_h8", "_h16", "_head")

    def __init__(self, *parts: object) -> None:
        self._head = (SEP.join(map(str, parts)) + SEP).encode("utf-8")
        self._h8 = _blake2b(self._head, digest_size=8)
        self._h16: Any = None

    def digest(self, *more: object) -> int:
        if not more:  # no separator after the last part
            return _from_bytes(_blake2b(self._head[:-1], digest_size=8).digest(), "big")
        h = self._h8.copy()
        h.update(SEP.join(map(str, more)).encode("utf-8"))
        return _from_bytes(h.digest(), "big")

    def text(self, tail: str) -> int:
        """``digest(*more)`` given ``tail == SEP.join(map(str, more))`` (non-empty): for loops that build it once."""
        h = self._h8.copy()
        h.update(tail.encode("utf-8"))
        return _from_bytes(h.digest(), "big")

    def unit(self, *more: object) -> float:
        return self.digest(*more) / 2**64

    def integer(self, lo: int, hi: int, *more: object) -> int:
        return lo + self.digest(*more) % (hi - lo + 1)

    def pick(self, seq: Sequence[T], *more: object) -> T:
        return seq[self.digest(*more) % len(seq)]

    def hexid(self, length: int, *more: object) -> str:
        if self._h16 is None:
            self._h16 = _blake2b(self._head, digest_size=16)
        tail = SEP.join(map(str, more)) + SEP if more else ""
        out = ""
        salt = 0
        while len(out) < length:
            h = self._h16.copy()
            h.update(f"{tail}{salt}".encode())
            out += h.hexdigest()
            salt += 1
        return out[:length]
