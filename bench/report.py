"""Printing tables: with ``rich`` when it is importable (and not disabled), plain text otherwise."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence


class Report:
    def __init__(self, *, plain: bool = False) -> None:
        self._console = None
        if not plain and not os.environ.get("BENCH_PLAIN"):
            try:
                from rich.console import Console
            except ImportError:  # pragma: no cover - rich is a dev dependency
                pass
            else:
                width = shutil.get_terminal_size((160, 40)).columns if sys.stdout.isatty() else 160
                self._console = Console(width=max(width, 120), highlight=False, soft_wrap=False)

    def heading(self, text: str) -> None:
        if self._console is not None:
            from rich.text import Text

            self._console.rule(Text(text, style="bold"))
        else:
            print()
            print("=" * len(text))
            print(text)
            print("=" * len(text))

    def text(self, text: str = "") -> None:
        if self._console is not None:
            self._console.print(text, markup=False)
        else:
            print(text)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[object]],
        *,
        title: str | None = None,
        right: Sequence[int] = (),
    ) -> None:
        cells = [[_fmt(value) for value in row] for row in rows]
        if self._console is not None:
            from rich import box
            from rich.table import Table
            from rich.text import Text

            table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_lines=False)
            for index, name in enumerate(columns):
                table.add_column(name, justify="right" if index in right else "left", overflow="fold")
            for row in cells:
                table.add_row(*(Text(value) for value in row))  # cells are data, never markup
            self._console.print(table)
            return
        widths = [len(name) for name in columns]
        for row in cells:
            for index, value in enumerate(row):
                widths[index] = max(widths[index], len(value))
        if title:
            print(title)

        def line(values: Sequence[str]) -> str:
            parts = []
            for index, value in enumerate(values):
                parts.append(value.rjust(widths[index]) if index in right else value.ljust(widths[index]))
            return "  ".join(parts).rstrip()

        print(line(list(columns)))
        print("  ".join("-" * width for width in widths))
        for row in cells:
            print(line(row))
        print()


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) or abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
