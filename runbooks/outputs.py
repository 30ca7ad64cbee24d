"""Results written next to the executed notebook: one JSON document, CSV tables, PNG figures."""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Decimals become floats, NaN becomes null, datetimes ISO 8601: what a test or jq can read."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_jsonable(value.item())
    return value


class Outputs:
    """A run's output folder: ``result.json``, ``<table>.csv`` and ``<figure>.png``; it remembers what it wrote."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.written: list[str] = []

    def path(self, name: str) -> Path:
        return self.directory / name

    def json(self, name: str, document: Any) -> Path:
        target = self.path(name)
        target.write_text(json.dumps(to_jsonable(document), indent=2, sort_keys=False) + "\n")
        self.written.append(target.name)
        return target

    def csv(self, name: str, frame: Any) -> Path:
        """``frame`` is a pandas DataFrame (kept untyped: pandas is a runbook-only dependency)."""
        target = self.path(name)
        frame.to_csv(target, index=False)
        self.written.append(target.name)
        return target

    def figure(self, name: str, figure: Any, *, show: bool = True) -> Path:
        """Save ``figure`` as a PNG and, inside a kernel, show that PNG inline.

        Showing the saved file (not the Figure object) puts exactly one ``image/png`` output per
        figure in the notebook, whatever matplotlib backend the kernel runs, so the HTML report and
        JupyterLab show what the folder holds.
        """
        target = self.path(name)
        figure.savefig(target, dpi=100, bbox_inches="tight")
        self.written.append(target.name)
        if show:
            titles = [ax.get_title() for ax in getattr(figure, "axes", []) if ax.get_title()]
            _show_png(target, "; ".join(titles) or target.stem.replace("_", " "))
        return target

    @property
    def figures(self) -> list[str]:
        return [name for name in self.written if name.endswith(".png")]


def _show_png(path: Path, alt: str) -> None:
    """The PNG inline: ``image/png`` for any front end, and an ``<img>`` with alternative text for HTML ones."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # the analysis library also runs outside a kernel (unit tests, scripts)
        return
    if get_ipython() is None:
        return
    data = base64.b64encode(path.read_bytes()).decode()
    tag = f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}"/>'
    display({"image/png": data, "text/html": tag, "text/plain": f"<figure: {alt}>"}, raw=True)


class ThresholdError(AssertionError):
    """A runbook's thresholds were broken; the message says which. Raised after the outputs are written."""


def enforce(failures: list[str], what: str) -> None:
    """Fail the run (and so the papermill execution) when ``failures`` is not empty."""
    if failures:
        raise ThresholdError(f"{what}: " + "; ".join(failures))
