"""Sets of entities as Python ints: bit ``i`` stands for entity ``i`` (see ``fleming.kg_index``)."""
from __future__ import annotations

from collections.abc import Iterable


def bits_of(x: int) -> list[int]:
    """Return the indices of the set bits of `x`, ascending."""
    if x.bit_count() > 48:
        import numpy as np

        raw = np.frombuffer(x.to_bytes((x.bit_length() + 7) // 8, "little"), dtype=np.uint8)
        return np.flatnonzero(np.unpackbits(raw, bitorder="little")).tolist()
    out: list[int] = []
    while x:
        low = x & -x
        out.append(low.bit_length() - 1)
        x ^= low
    return out


def bitset(indices: Iterable[int]) -> int:
    """Return the int with bits `indices` set."""
    buf = bytearray(0)
    for i in indices:
        need = (i >> 3) + 1
        if need > len(buf):
            buf.extend(bytes(need - len(buf)))
        buf[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


def bitsets(lists: dict[str, list[int]], size: int) -> dict[str, int]:
    """Return key -> the bitset of its indices (all below `size`)."""
    import numpy as np

    flags = np.zeros(-(-size // 8) * 8, dtype=bool)
    out: dict[str, int] = {}
    for key, idx in lists.items():
        if len(idx) < 8:
            out[key] = sum(1 << i for i in set(idx))
            continue
        flags[:] = False
        flags[idx] = True
        out[key] = int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")
    return out
