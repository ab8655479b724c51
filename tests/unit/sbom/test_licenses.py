"""Licence strings normalised to SPDX ids and expressions."""

from __future__ import annotations

import pytest

from gate.sbom._licenses import from_classifier, from_dep5, normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mit", "MIT"),
        ("Apache 2.0", "Apache-2.0"),
        ("apache-2.0 or mit", "Apache-2.0 OR MIT"),
        ("(MIT OR Apache-2.0) AND BSD-3-Clause", "(MIT OR Apache-2.0) AND BSD-3-Clause"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-2.0-or-later WITH Classpath-exception-2.0"),
        ("Proprietary licence of Example Corp", "Proprietary licence of Example Corp"),
        ("  MIT  ", "MIT"),
        ("", ""),
    ],
)
def test_normalise_gives_spdx_where_unambiguous(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("short", "expected"),
    [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2", "GPL-2.0-only"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("Expat", "MIT"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("public-domain", ""),
        ("Zlib", "Zlib"),
        ("BSLA", "BSLA"),
    ],
)
def test_debian_short_names_map_to_spdx(short: str, expected: str) -> None:
    assert from_dep5(short) == expected


def test_trove_classifiers_map_only_when_they_name_one_licence() -> None:
    assert from_classifier("License :: OSI Approved :: MIT License") == "MIT"
    assert from_classifier("License :: OSI Approved :: BSD License") == ""
