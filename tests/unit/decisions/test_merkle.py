"""The Merkle tree of a sealed batch hashes as RFC 6962 does, and its proofs check as RFC 9162 says."""

from __future__ import annotations

import hashlib

import pytest

from gate.decisions._merkle import leaf_hash, root_from_proof, tree

# Certificate Transparency's reference leaves and the roots of their first 1..8 (the same vectors
# every RFC 6962 implementation tests against).
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _definition(data: list[bytes]) -> bytes:
    """RFC 6962's MTH, written as the RFC states it."""
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    split = 1
    while split * 2 < len(data):
        split *= 2
    return hashlib.sha256(b"\x01" + _definition(data[:split]) + _definition(data[split:])).digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_equal_certificate_transparencys_reference_vectors(size: int) -> None:
    leaves = [leaf_hash(bytes.fromhex(leaf)) for leaf in CT_LEAVES[:size]]
    assert tree(leaves)[0].hex() == CT_ROOTS[size - 1]


def test_every_leaf_of_trees_up_to_70_leaves_proves_its_place_and_no_other() -> None:
    for size in range(1, 71):
        data = [f"decision {n}".encode() for n in range(size)]
        root, proofs = tree([leaf_hash(item) for item in data])
        assert root == _definition(data)
        for index, proof in enumerate(proofs):
            assert len(proof) <= max(1, (size - 1).bit_length())
            assert root_from_proof(index, size, leaf_hash(data[index]), proof) == root
            if size > 1:
                other = (index + 1) % size
                try:
                    moved = root_from_proof(other, size, leaf_hash(data[index]), proof)
                except ValueError:
                    continue
                assert moved != root, f"leaf {index} of {size} also proved place {other}"


@pytest.mark.parametrize(
    ("index", "size", "proof_length", "message"),
    [
        (3, 3, 2, "leaf index 3 is outside a tree of 3 leaves"),
        (-1, 3, 2, "leaf index -1 is outside a tree of 3 leaves"),
        (0, 4, 3, "the proof has 3 hashes, more than a tree of 4 leaves needs"),
        (0, 4, 1, "the proof has 1 hashes, fewer than a tree of 4 leaves needs"),
    ],
)
def test_a_proof_that_does_not_fit_its_tree_is_refused(
    index: int, size: int, proof_length: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        root_from_proof(index, size, leaf_hash(b"x"), [bytes(32)] * proof_length)


def test_an_empty_batch_has_no_tree() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        tree([])
