"""The Jinja environment of the e-mail templates (``include/templates/email/<name>.<format>.j2``) and its filters.

One environment per report language (i18n.py): the same templates and filters, with that language's gettext
catalogue installed (Jinja's i18n extension: ``{% trans %}`` blocks and ``_()``) and the filters formatting dates
and numbers for its locale. Translated text never turns autoescaping off: a ``{% trans %}`` block's variables are
escaped like any other value.

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
from functools import cache, partial
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

from include.awsgov.core import i18n

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


def _gettext(lang: str, message: str) -> str:
    return i18n.translations(lang).gettext(message)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value: Any, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """``87.5%``, or ``n/a`` when unknown.

    :param value: a percentage (0-100).
    :param lang: report language (number format, the ``n/a`` text).
    """
    if _missing(value):
        return _gettext(lang, "n/a")
    return format_percent(float(value) / 100, "#,##0.#%", locale=i18n.LANGUAGES[lang])


def money(value: Any, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """US dollars without cents in the language's number format: ``$1,234``.

    :param value: an amount in USD (Trusted Advisor's estimates are in USD whatever the reader's language).
    :param lang: report language.
    """
    amount = 0.0 if _missing(value) else float(value)
    return format_currency(amount, "USD", format="¤#,##0", currency_digits=False, locale=i18n.LANGUAGES[lang])


def num(value: Any, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """A count in the language's number format (``12,345``); ``n/a`` when unknown."""
    if _missing(value):
        return _gettext(lang, "n/a")
    return format_decimal(value, locale=i18n.LANGUAGES[lang])


def age(days: Any, capped: bool = False, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """``12 d``, or ``≥ 56 d`` when the finding is older than the history read."""
    if days is None:
        return ""
    message = _gettext(lang, "≥ %(days)s d") if capped else _gettext(lang, "%(days)s d")
    return message % {"days": int(days)}


def number(value: Any, digits: int = 3, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """A metric value with ``digits`` significant digits (``n/a`` when unknown)."""
    if _missing(value):
        return _gettext(lang, "n/a")
    return f"{float(value):.{digits}g}"


def date(value: Any, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """A day in the language's form (``2026-12-06``; Japanese ``2026年12月6日``); other text as it is.

    :param value: a date, a datetime or ISO text (views that went through JSON carry text).
    :param lang: report language.
    """
    day = i18n.as_date(value)
    if day is None:
        return "" if value is None else str(value)
    return format_date(day, i18n.DATE_FORMATS[lang], locale=i18n.LANGUAGES[lang])


def timestamp(value: Any, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """``2026-11-29 06:02 UTC`` for datetimes and ISO text (naive ones are UTC), other text as it is.

    Japanese: ``2026年11月29日 6:02 UTC``.
    """
    if value is None or value == "":
        return _gettext(lang, "n/a")
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
        if lang == i18n.DEFAULT_LANGUAGE:
            return value.strftime("%Y-%m-%d %H:%M UTC")
        loc = i18n.LANGUAGES[lang]
        return (f"{format_date(value.date(), i18n.DATE_FORMATS[lang], locale=loc)} "
                f"{format_datetime(value, i18n.TIME_FORMATS[lang], locale=loc)} UTC")
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


FILTERS = {"oneline": oneline, "spark": spark}
# Filters whose output depends on the report language: bound to it in each language's environment.
LOCALE_FILTERS = {"pct": pct, "money": money, "num": num, "age": age, "number": number, "date": date,
                  "timestamp": timestamp}


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


@cache
def environment(lang: str = i18n.DEFAULT_LANGUAGE) -> jinja2.Environment:
    """The environment of one report language: templates from include/templates/email, autoescape on (off for
    ``*.txt.j2``), the language's catalogue installed and the locale filters bound to it.

    :param lang: a supported language (i18n.LANGUAGES).
    :raises ValueError: the language is not supported.
    """
    translations = i18n.translations(lang)
    env = _Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        auto_reload=False,  # packaged templates do not change while a task runs: no stat per render
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html", "svg.j2"),
                                            disabled_extensions=("txt.j2",), default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # a {% trans %} block's line breaks are layout, not message text
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(FILTERS)
    env.filters.update({name: partial(f, lang=lang) for name, f in LOCALE_FILTERS.items()})
    env.globals["lang"] = lang
    return env


def render(name: str, fmt: str, lang: str = i18n.DEFAULT_LANGUAGE, **context: Any) -> str:
    """Render ``<name>.<format>.j2``.

    :param name: template name, e.g. ``owner_report``.
    :param fmt: ``html``, ``txt`` or ``subject.txt``.
    :param lang: the report language (i18n.LANGUAGES).
    :param context: template variables.
    """
    return environment(lang).get_template(f"{name}.{fmt}.j2").render(**context)


def subject(name: str, lang: str = i18n.DEFAULT_LANGUAGE, **context: Any) -> str:
    """A one-line subject from ``<name>.subject.txt.j2`` (line breaks collapsed, at most 200 characters)."""
    return oneline(render(name, "subject.txt", lang, **context), 200)


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
