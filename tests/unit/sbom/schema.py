"""Schema checks for generated SBOMs: the library's own validators, and jsonschema-rs for big documents.

The library's JSON validator runs python-jsonschema, which is quadratic on
``uniqueItems`` and slow on IRI formats (minutes for thousands of
components, per the project's notes); jsonschema-rs validates the same schema
in well under a second, so large documents go through it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import cyclonedx.schema
import jsonschema_rs
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator

RESOURCES = Path(cyclonedx.schema.__file__).parent / "_res"
SUBJECT_DIGEST = "sha256:" + "5" * 64


def library_errors(document: bytes, fmt: OutputFormat) -> str:
    """The library validator's first error for a 1.6 document, or "" if it is valid."""
    error = make_schemabased_validator(fmt, SchemaVersion.V1_6).validate_str(document.decode())
    return "" if error is None else str(error)


def _retrieve(uri: str) -> Any:
    # The 1.6 schema refers to its siblings (spdx, jsf) by relative URI.
    return json.loads((RESOURCES / uri.rsplit("/", 1)[-1]).read_text())


@cache
def _rs_validator() -> Any:
    schema = json.loads((RESOURCES / "bom-1.6.SNAPSHOT.schema.json").read_text())
    return jsonschema_rs.validator_for(schema, retriever=_retrieve, validate_formats=True)


def rs_errors(document: bytes) -> list[str]:
    """Every schema error jsonschema-rs finds in a 1.6 JSON document (empty when valid)."""
    return [f"{e.instance_path}: {e.message}" for e in _rs_validator().iter_errors(json.loads(document))]
