"""The one Jinja environment of the e-mail templates (``include/templates/email/<name>.<format>.j2``) and its filters.

Autoescaping is on for everything except plain-text templates (``*.txt.j2``): in HTML every value (account names,
tags, resource ids) comes out as text, never as markup. Plain text is not HTML, so escaping it would only garble
it; values that must stay on one line there (subjects, names) go through the ``oneline`` filter. Undefined
variables raise, so a template typo fails a test rather than rendering an empty cell.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "email"
_SPACE = re.compile(r"\s+")


def oneline(value: Any, limit: int | None = None) -> str:
    """Collapse every run of whitespace (line breaks included) to one space; optionally cut to ``limit`` chars.

    :param value: any value.
    :param limit: maximum length (an ellipsis marks a cut).
    """
    text = _SPACE.sub(" ", "" if value is None else str(value)).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


def pct(value: Any) -> str:
    """``87.5%``, or ``n/a`` when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.0f}%" if float(value).is_integer() else f"{float(value):.1f}%"


def money(value: Any) -> str:
    """US dollars without cents: ``$1,234``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "$0"
    return f"${float(value):,.0f}"


def age(days: Any, capped: bool = False) -> str:
    """``12 d``, or ``≥ 56 d`` when the finding is older than the history read."""
    if days is None:
        return ""
    return f"≥ {int(days)} d" if capped else f"{int(days)} d"


def number(value: Any, digits: int = 3) -> str:
    """A metric value with ``digits`` significant digits (``n/a`` when unknown)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.{digits}g}"


def timestamp(value: Any) -> str:
    """``2026-11-29 06:02 UTC`` for datetimes and ISO text (naive ones are UTC), other text as it is."""
    if value is None or value == "":
        return "n/a"
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, str):
        # Views that went through JSON (the org summary's) carry ISO text.
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def spark(values: Sequence[Any], width: int = 120, height: int = 24, lo: float | None = None,
          hi: float | None = None) -> dict[str, Any]:
    """Geometry of an SVG sparkline: polyline segments (gaps where a week has no data) and the last point.

    :param values: one value per week, oldest first; None for a week without data.
    :param width: drawing width in px.
    :param height: drawing height in px.
    :param lo: bottom of the scale (default: the minimum).
    :param hi: top of the scale (default: the maximum).
    """
    nums = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not nums:
        return {"segments": [], "last": None, "width": width, "height": height}
    low = min(nums) if lo is None else lo
    high = max(nums) if hi is None else hi
    span = (high - low) or 1.0
    step = (width - 4) / max(len(values) - 1, 1)
    segments, current, last = [], [], None
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            if current:
                segments.append(" ".join(current))
            current = []
            continue
        x = 2 + i * step
        y = 2 + (height - 4) * (1 - (float(v) - low) / span)
        current.append(f"{x:.1f},{y:.1f}")
        last = (round(x, 1), round(y, 1))
    if current:
        segments.append(" ".join(current))
    return {"segments": segments, "last": last, "width": width, "height": height}


FILTERS = {"oneline": oneline, "pct": pct, "money": money, "age": age, "number": number, "timestamp": timestamp,
           "spark": spark}


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(jinja2.Environment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``row.name`` on a plain dict: Jinja tries the attribute first and takes the item after the AttributeError;
        # a plain dict's only attributes are dict's, so going to the item directly gives the same result without an
        # exception per value (a report reads hundreds of thousands of them).
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment: templates from include/templates/email, autoescape on (off for ``*.txt.j2``)."""
    env = _Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        auto_reload=False,  # packaged templates do not change while a task runs: no stat per render
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html", "svg.j2"),
                                            disabled_extensions=("txt.j2",), default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def render(name: str, fmt: str, **context: Any) -> str:
    """Render ``<name>.<format>.j2``.

    :param name: template name, e.g. ``owner_report``.
    :param fmt: ``html``, ``txt`` or ``subject.txt``.
    :param context: template variables.
    """
    return environment().get_template(f"{name}.{fmt}.j2").render(**context)


def subject(name: str, **context: Any) -> str:
    """A one-line subject from ``<name>.subject.txt.j2`` (line breaks collapsed, at most 200 characters)."""
    return oneline(render(name, "subject.txt", **context), 200)


# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain_value(value: Any) -> Any:
    """Template-friendly value: NaN/NaT -> None, numpy scalars and arrays -> Python, Timestamp -> datetime."""
    if type(value) is str or type(value) is int or type(value) is bool:  # the common case, first
        return value
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.ndarray):
        return [plain_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return plain_value(value.item())
    return value


def csv_cell(value: Any) -> Any:
    """A CSV cell: text a spreadsheet would run as a formula gets a leading quote (CSV injection), dates ISO."""
    if type(value) is str:
        return "'" + value if value.startswith(_FORMULA_START) else value
    value = plain_value(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return "" if value is None else value
