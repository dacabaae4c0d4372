"""Aligned text tables for the listings that grow with the repository (``cmfleet list``, ``cmfleet status``).

One line per row, each column padded to its widest cell, the header in bold on a terminal. rich's ``Table``
measures, wraps and styles every cell: 0.4 s for the 1,000 rows of a large fleet, more than reading the
repository; this costs a few milliseconds. A long last column runs on past the terminal's edge rather than being
cut: nothing listed is hidden.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

__all__ = ["echo_table", "render_table"]

_GAP = "  "


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    from rich.cells import cell_len  # wide (East Asian) characters take two cells

    return cell_len(text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def render_table(columns: Sequence[str], rows: Sequence[Sequence[str]], bold_header: bool = False) -> str:
    """The table as text: a header line, then one line per row (no trailing spaces)."""
    widths = [_width(c) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            w = _width(cell)
            if w > widths[i]:
                widths[i] = w
    header = _GAP.join(_pad(c, w) for c, w in zip(columns, widths, strict=True)).rstrip()
    lines = [click.style(header, bold=True) if bold_header else header]
    lines += [_GAP.join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def echo_table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """Print the table (and a title line above it) on stdout."""
    from click.globals import resolve_color_default

    color = resolve_color_default()
    # sys.stdout, not click.get_text_stream (deprecated in click 8.5, gone in 9.0): the same stream, CliRunner's too
    terminal = sys.stdout.isatty() if color is None else color
    text = render_table(columns, rows, bold_header=terminal)
    click.echo(f"{title}\n{text}" if title else text)
