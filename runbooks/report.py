"""What a runbook shows a person: its verdict, tables formatted for reading, figures, progress.

The notebooks call these instead of displaying raw pandas objects or printing dicts, so that every
report reads the same way, in JupyterLab and in the HTML that ``runbooks.execute`` renders:

- money with its currency and sensible decimals (``$0.000000230``, ``$1,234.56``), durations in ms,
  never scientific notation, ``no data`` where a value is missing (never ``NaN``);
- wide tables scroll sideways instead of being cut at the page's edge; an empty table says so;
- the verdict first in the HTML (``execute`` moves the cell tagged ``verdict`` up), naming each
  broken threshold with its number;
- progress as a live tqdm bar when a person runs a cell, and a single final line when the run is
  headless (``RUNBOOKS_PROGRESS=final``, set by ``runbooks.execute``).

Column kinds come from the names the runbooks already use: ``*_usd`` and ``cost_per_invocation`` are
US dollars, ``*_ms`` (and ``*_ms_*``) milliseconds, ``*_s`` seconds, ``*_mb`` megabytes, ``*_share`` and
``*_rate`` percentages.
"""

from __future__ import annotations

import html
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

NO_DATA = "no data"
PROGRESS_ENV = "RUNBOOKS_PROGRESS"  # "final": one line when a loop ends (headless runs); unset: tqdm.auto


def _number(value: Any) -> float | None:
    """The value as a float, or None when it is missing (None, NaN, an empty string)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int | float):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _number(value.item())
    return None


def usd(value: Any) -> str:
    """Dollars with two decimals, or three significant digits below a cent: ``$0.000000230``."""
    number = _number(value)
    if number is None:
        return NO_DATA
    if number == 0:
        return "$0.00"
    if abs(number) >= 0.01:
        return f"${number:,.2f}" if number > 0 else f"-${-number:,.2f}"
    decimals = min(14, 2 - math.floor(math.log10(abs(number))))
    return f"${number:.{decimals}f}" if number > 0 else f"-${-number:.{decimals}f}"


def plain(value: Any, decimals: int = 2) -> str:
    """A number for people: thousands separators, no exponent, trailing zeros dropped."""
    number = _number(value)
    if number is None:
        return NO_DATA
    if float(number).is_integer():
        return f"{int(number):,}"
    if abs(number) < 10**-decimals:
        decimals = min(12, decimals - math.floor(math.log10(abs(number))))
    text = f"{number:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def ms(value: Any) -> str:
    number = _number(value)
    return NO_DATA if number is None else f"{plain(number, 0 if abs(number) >= 10 else 1)} ms"


def seconds(value: Any) -> str:
    number = _number(value)
    return NO_DATA if number is None else f"{plain(number, 2)} s"


def megabytes(value: Any) -> str:
    number = _number(value)
    return NO_DATA if number is None else f"{plain(number, 0)} MB"


def cell(column: str, value: Any) -> str:
    """One table cell, formatted by its column's kind."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_DATA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(column, v) for v in value) if value else "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {cell(str(k), v)}" for k, v in value.items()) if value else "none"
    if column.endswith("_usd") or column.startswith("cost_per") or column.endswith("_cost"):
        return usd(value)
    if column.endswith("_ms") or "_ms_" in column:  # duration_ms_p50, duration_ms_trimmed_mean
        return ms(value)
    if column.endswith(("_share", "_rate")) and _number(value) is not None:
        return f"{plain(100 * float(value), 1)} %"
    if column.endswith("_s"):
        return seconds(value)
    if column.endswith("_mb"):
        return megabytes(value)
    if _number(value) is not None:
        return plain(value)
    text = str(value)
    return text if text else "-"


def table_html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, empty: str = "") -> str:
    """An HTML table of ``rows`` in a box that scrolls sideways when it is wider than the page."""
    if not rows:
        return f"<p><em>{html.escape(empty or 'No rows')}</em></p>"
    names = list(columns) if columns else list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(name, row.get(name)))}</td>" for name in names) + "</tr>"
        for row in rows
    )
    return (
        '<div style="overflow-x: auto; max-width: 100%;">'
        f'<table class="dataframe runbook-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def records(data: Any) -> list[dict[str, Any]]:
    """Rows from a list of mappings, a mapping of name to value, or a pandas DataFrame."""
    if data is None:
        return []
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame, kept untyped (runbook-only pandas)
        return [dict(row) for row in data.to_dict(orient="records")]
    if isinstance(data, Mapping):
        return [{"name": str(k), "value": v} for k, v in data.items()]
    return [dict(row) for row in data]


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def table(data: Any, columns: Sequence[str] | None = None, *, empty: str = "", title: str = "") -> None:
    """Display ``data`` as a formatted table (see the module docstring); ``empty`` says why there are no rows."""
    from IPython.display import HTML

    heading = f"<p><strong>{html.escape(title)}</strong></p>" if title else ""
    _display(HTML(heading + table_html(records(data), columns, empty)))


def markdown(text: str) -> None:
    from IPython.display import Markdown

    _display(Markdown(text))


def parameters(values: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    """The run's parameters, each with its meaning; a secret's value is never shown."""
    rows = [
        {
            "parameter": name,
            "value": "(secret, not shown)" if getattr(param, "secret", False) else repr(values[name]),
            "meaning": param.help,
        }
        for name, param in spec.items()
    ]
    table(rows, title="Parameters of this run")


def verdict(failures: Sequence[str], passed: Sequence[str]) -> None:
    """Display the run's verdict: PASS with what was checked, or FAILED with every broken threshold."""
    if failures:
        lines = "\n".join(f"- {f}" for f in failures)
        markdown(f"## Verdict: FAILED\n\n{lines}\n\n" + ("Met: " + "; ".join(passed) if passed else ""))
    else:
        lines = "\n".join(f"- {p}" for p in passed) or "- no threshold applies"
        markdown(f"## Verdict: PASS\n\nEvery threshold met:\n\n{lines}")


class _FinalLine:
    """A tqdm stand-in for headless runs: counts silently and prints one line when the loop ends."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n = total, desc, 0
        self._started = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n

    def __enter__(self) -> _FinalLine:
        return self

    def __exit__(self, *exc: object) -> None:
        print(f"{self.desc}: {self.n}/{self.total} in {time.monotonic() - self._started:.1f} s", file=sys.stdout)


def progress(total: int, desc: str) -> Any:
    """A progress bar to use as ``with progress(n, "requests") as bar: ... bar.update()``."""
    if os.environ.get(PROGRESS_ENV) == "final":
        return _FinalLine(total, desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc)


def tracked(items: Iterable[Any], total: int, desc: str) -> Iterator[Any]:
    """``[work(x) for x in tracked(xs, len(xs), "histories")]``: the items, with progress as each is taken."""
    with progress(total, desc) as bar:
        for item in items:
            yield item
            bar.update(1)
