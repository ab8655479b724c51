"""Revisions of the evidence store schema, oldest first (package so that they ship)."""
