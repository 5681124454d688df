"""A report as a list of blocks, rendered to Markdown (``render_md``) and HTML (``render_html``) alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True, slots=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Bullets:
    items: Sequence[str]


@dataclass(frozen=True, slots=True)
class Table:
    frame: pd.DataFrame
    caption: str = ""
    max_rows: int = 60


@dataclass(frozen=True, slots=True)
class Figure:
    svg: str
    caption: str = ""


Block = Heading | Text | Bullets | Table | Figure


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


def cell(value: object) -> str:
    """One table cell as text: 3 significant digits for fractions, 1 decimal from 100 up, '-' for missing."""
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number):
            return "-"
        if number.is_integer() and abs(number) < 1e12:
            return str(int(number))
        if abs(number) >= 100:
            return f"{number:.1f}"
        return f"{number:.3g}"
    return str(value)


def rows(table: Table) -> tuple[list[str], list[list[str]], int]:
    """Header, formatted rows (at most ``max_rows``) and how many rows were left out."""
    frame = table.frame
    shown = frame.head(table.max_rows)
    body = [[cell(v) for v in row] for row in shown.itertuples(index=False)]
    return [str(c) for c in frame.columns], body, max(0, len(frame) - len(shown))
