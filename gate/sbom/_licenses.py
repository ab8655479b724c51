"""Licence strings from package metadata, normalised to SPDX where that is unambiguous.

Each result is either an SPDX licence id, a valid SPDX expression, or (when
neither fits) the original text, which the BOM then carries as a licence name.
Expressions are checked with ``license-expression`` (through
``cyclonedx.spdx``) because the CycloneDX schema does not check their grammar.
"""

from __future__ import annotations

import re
from functools import lru_cache

from cyclonedx import spdx

# Trove classifiers (PEP 301) whose licence is a single SPDX id. Classifiers
# such as "BSD License" name a family, not a licence, and are left out.
_CLASSIFIERS = {
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: Zope Public License": "ZPL-2.1",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "License :: OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
    "License :: OSI Approved :: Academic Free License (AFL)": "AFL-3.0",
    "License :: OSI Approved :: Artistic License": "Artistic-2.0",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}

# Short names of Debian machine-readable copyright files (DEP-5) that differ
# from SPDX ids; a trailing "+" means "or later" there.
_DEP5 = {
    "expat": "MIT",
    "public-domain": "",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "artistic": "Artistic-1.0-Perl",
    "gpl": "GPL-1.0-or-later",
    "lgpl": "LGPL-2.0-or-later",
    "gpl-1": "GPL-1.0-only",
    "gpl-2": "GPL-2.0-only",
    "gpl-3": "GPL-3.0-only",
    "lgpl-2": "LGPL-2.0-only",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-3": "LGPL-3.0-only",
    "gfdl-1.2": "GFDL-1.2-only",
    "gfdl-1.3": "GFDL-1.3-only",
    "apache-2.0": "Apache-2.0",
    "mpl-2.0": "MPL-2.0",
    "zlib": "Zlib",
    "isc": "ISC",
    "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later",
}

# Free-text spellings seen in package metadata that name exactly one licence.
_ALIASES = {
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "mit license": "MIT",
    "the mit license": "MIT",
    "bsd 3-clause": "BSD-3-Clause",
    "bsd-3": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause",
    "mpl 2.0": "MPL-2.0",
    "psf": "PSF-2.0",
    "psf license": "PSF-2.0",
    "isc license": "ISC",
}

_WORD = re.compile(r"\S+")


@lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """Return the SPDX id or expression ``text`` means, else ``text`` itself (stripped).

    Args:
        text: A licence as written in package metadata.

    Returns:
        An SPDX id (``MIT``), a valid SPDX expression (``MIT OR Apache-2.0``) or the
        original text when it is neither (it then becomes a licence name).
    """
    text = " ".join(text.split())
    if not text:
        return ""
    fixed = spdx.fixup_id(text)
    if fixed:
        return fixed
    alias = _ALIASES.get(text.lower())
    if alias:
        return alias
    if len(text) <= 500 and spdx.is_expression(text):
        return _canonical_ids(text)
    return text


def _canonical_ids(expression: str) -> str:
    # Ids inside an expression are matched case-insensitively by the grammar;
    # write them in their registered case so equal expressions compare equal.
    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        core = word.strip("()")
        fixed = spdx.fixup_id(core) if core.upper() not in ("AND", "OR", "WITH") else core.upper()
        return word.replace(core, fixed) if fixed else word

    return _WORD.sub(fix, expression)


@lru_cache(maxsize=4096)
def is_compound(value: str) -> bool:
    """True if ``value`` is an SPDX expression with an operator (not a single id)."""
    return spdx.fixup_id(value) is None and spdx.is_expression(value)


@lru_cache(maxsize=4096)
def is_spdx_id(value: str) -> bool:
    """True if ``value`` is exactly a registered SPDX licence id."""
    return spdx.fixup_id(value) == value


def from_classifier(classifier: str) -> str:
    """The SPDX id of a Trove licence classifier, or ``""`` when it names no single licence."""
    return _CLASSIFIERS.get(classifier.strip(), "")


def from_dep5(short_name: str) -> str:
    """Normalise one DEP-5 licence short name (``GPL-2+``, ``Expat``) to SPDX where known.

    Returns:
        An SPDX id or expression, ``""`` for public domain (no licence), or the
        short name itself when it has no SPDX equivalent.
    """
    name = short_name.strip()
    key = name.lower()
    later = key.endswith("+")
    base = key.rstrip("+")
    mapped = _DEP5.get(base)
    if mapped is not None:
        if later and mapped.endswith("-only"):
            return mapped[: -len("-only")] + "-or-later"
        return mapped
    fixed = spdx.fixup_id(name[:-1] if later else name)
    if fixed:
        if later and fixed.endswith("-only"):
            return fixed[: -len("-only")] + "-or-later"
        return fixed
    return name
