"""Text arguments must be UTF-8: every request field they fill is a protobuf string.

Python hands a command-line argument (or an environment variable) holding bytes that are not
UTF-8 over with each such byte as a lone surrogate (``\\xff`` becomes ``\\udcff``); protobuf
then refused to build the request and a traceback came out. File names are left alone: on
Linux they may be any bytes, and ``open`` takes them back as they were.
"""

from __future__ import annotations

from typing import Any

import click

from gate._strict_json import SURROGATE


class Utf8Text(click.types.StringParamType):
    """click's text type, refusing what does not decode as UTF-8 with the byte and its position."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = super().convert(value, param, ctx)
        found = SURROGATE.search(text)
        if found is not None:
            code = ord(found.group())
            # Python's surrogateescape maps byte b to U+DC00 + b (b >= 0x80).
            shown = f"the byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
            self.fail(f"got {shown} at position {found.start()}, expected UTF-8 text", param, ctx)
        return text


UTF8_TEXT = Utf8Text()


def require_utf8_text(command: click.Command) -> None:
    """Give every plain text parameter of ``command`` and its subcommands the UTF-8 type."""
    for param in command.params:
        if type(param.type) is click.types.StringParamType:
            param.type = UTF8_TEXT
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            require_utf8_text(sub)
