"""A Merkle tree over a batch of decision records, hashed as RFC 6962 (and RFC 9162) define it.

Leaves and inner nodes are hashed with different prefixes (0x00, 0x01), so a leaf can never be
passed off as a node. The same tree and inclusion proofs as Certificate Transparency and Rekor:
an auditor can check a proof with any implementation of RFC 9162 section 2.1.3.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf."""
    return hashlib.sha256(_LEAF + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1): where RFC 6962 splits."""
    return 1 << ((size - 1).bit_length() - 1)


def tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root over ``leaves`` (leaf hashes) and, for each leaf, its inclusion proof (leaf to root).

    Raises:
        ValueError: no leaves.
    """
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    proofs: list[list[bytes]] = [[] for _ in leaves]

    def root(low: int, high: int) -> bytes:
        if high - low == 1:
            return leaves[low]
        middle = low + _split(high - low)
        left, right = root(low, middle), root(middle, high)
        # Each half's leaves have collected the siblings below this level already.
        for index in range(low, middle):
            proofs[index].append(right)
        for index in range(middle, high):
            proofs[index].append(left)
        return _node(left, right)

    return root(0, len(leaves)), proofs


def root_from_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` at ``index`` of a tree of ``size`` leaves.

    RFC 9162, 2.1.3.2. Compare the result with the signed root.

    Raises:
        ValueError: the index, size and proof length do not fit together.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    position, last = index, size - 1
    hashed = leaf
    for sibling in proof:
        if last == 0:
            raise ValueError(f"the proof has {len(proof)} hashes, more than a tree of {size} leaves needs")
        if position & 1 or position == last:
            hashed = _node(sibling, hashed)
            if not position & 1:
                while position and not position & 1:
                    position >>= 1
                    last >>= 1
        else:
            hashed = _node(hashed, sibling)
        position >>= 1
        last >>= 1
    if last != 0:
        raise ValueError(f"the proof has {len(proof)} hashes, fewer than a tree of {size} leaves needs")
    return hashed
