"""One row of the report, and the table every figure is printed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

COLUMNS = ("figure", "value", "baseline", "ratio", "bar", "holds")


@dataclass(frozen=True)
class Figure:
    """A measured figure with its bar.

    ``holds`` is ``None`` for a figure reported without a bar. A figure whose measurement broke
    carries the reason in ``error`` and never holds, so a broken benchmark cannot pass silently.
    """

    name: str
    value: str
    bar: str = "-"
    holds: bool | None = None
    baseline: str = "-"
    ratio: str = "-"
    note: str = ""
    error: str = ""

    @classmethod
    def failed(cls, name: str, bar: str, error: str) -> Figure:
        return cls(name=name, value="failed", bar=bar, holds=False, error=error)

    @property
    def verdict(self) -> str:
        if self.holds is None:
            return "n/a"
        return "yes" if self.holds else "no"

    def cells(self) -> tuple[str, str, str, str, str, str]:
        return (self.name, self.value, self.baseline, self.ratio, self.bar, self.verdict)


def milliseconds(value: float) -> str:
    return f"{value:.1f} ms"


def times(value: float) -> str:
    return f"{value:.2f}x"


def per_second(value: float) -> str:
    return f"{value:,.0f}/s"


def megabytes(size_bytes: int) -> str:
    return f"{size_bytes / 1024 / 1024:.2f} MB ({size_bytes:,} bytes)"


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def render_table(figures: Sequence[Figure]) -> str:
    """A Markdown table: readable as plain text on a terminal, rendered as a table in docs/."""
    rows = [COLUMNS, *(tuple(_escape(c) for c in f.cells()) for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), separator, *(line(r) for r in rows[1:])])


def render_notes(figures: Sequence[Figure]) -> str:
    """The notes and errors under the table, one bullet per figure that has any."""
    bullets = []
    for figure in figures:
        if figure.error:
            bullets.append(f"- **{figure.name}** failed: {figure.error}")
        if figure.note:
            bullets.append(f"- **{figure.name}**: {figure.note}")
    return "\n".join(bullets)
