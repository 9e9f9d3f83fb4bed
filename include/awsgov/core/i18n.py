"""The report languages: which are supported, the message catalogues, and per-locale dates and numbers.

Templates are written in English and marked for translation with Jinja's i18n extension (``{% trans %}``, ``_()``);
the other languages' catalogues are ``include/templates/locale/<lang>/LC_MESSAGES/messages.po``, read with Babel
and compiled in memory when first used, so a fresh clone needs no build step (``scripts/i18n_messages.py``
re-extracts the strings and updates the catalogues). A language value from outside (an account's ``Language``
tag, which anyone who can tag the account controls) is only ever mapped onto :data:`LANGUAGES`; anything else
means the default.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import re
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parents[2] / "templates" / "locale"
DOMAIN = "messages"
# Supported report languages -> the Babel locale that formats their dates and numbers. English is the templates'
# own language and has no catalogue.
LANGUAGES = {"en": "en_US", "ja": "ja_JP"}
DEFAULT_LANGUAGE = "en"
SOURCE_LANGUAGE = "en"
# Date patterns per language: English keeps ISO dates (what the reports always showed), Japanese its long form
# (2026年12月6日).
DATE_FORMATS = {"en": "yyyy-MM-dd", "ja": "long"}
TIME_FORMATS = {"en": "HH:mm", "ja": "H:mm"}
# A language tag as BCP 47 / POSIX locales write one (ja, ja-JP, ja_JP, zh-Hant-TW), nothing else.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}\Z")


def language(value: Any) -> str | None:
    """The supported language a value names (``ja``, ``JA``, ``ja-JP``, ``ja_JP`` -> ``ja``), else None.

    :param value: a tag or settings value; anything that is not a short language code of :data:`LANGUAGES` (markup,
        line breaks, other languages) gives None.
    """
    if not isinstance(value, str) or not _LANGUAGE_TAG.match(value.strip()):
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def checked(value: Any) -> str:
    """A supported language: ``value`` when it names one, else :data:`DEFAULT_LANGUAGE`."""
    return language(value) or DEFAULT_LANGUAGE


def catalogue_path(lang: str) -> Path:
    """The ``.po`` catalogue of a language."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def catalogue(lang: str) -> Any:
    """The Babel catalogue of a language, read from its ``.po`` file."""
    with catalogue_path(lang).open("rb") as handle:
        return read_po(handle, locale=LANGUAGES[lang], domain=DOMAIN)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The gettext translations of a supported language (English: none, the templates' own text).

    :param lang: a key of :data:`LANGUAGES`.
    :raises ValueError: the language is not supported.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; supported: {', '.join(LANGUAGES)}")
    if lang == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(lang), use_fuzzy=False)  # a fuzzy (unchecked) entry stays English
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def locale(lang: str) -> Locale:
    """The Babel locale of a supported language."""
    return Locale.parse(LANGUAGES[lang])


def as_date(value: Any) -> dt.date | None:
    """A date from a date, a datetime or ISO text (None for anything else)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


# Extraction: what a catalogue must translate. Babel reads the templates with Jinja's extractor (the same i18n
# options as the rendering environment) and the Python modules whose text reaches a report (render.py's filters).
# The templates: the e-mail reports, and the Governance view's pages (plugins/governance_ui), which share the catalogue.
TEMPLATE_DIRS = (LOCALE_DIR.parent / "email", LOCALE_DIR.parents[2] / "plugins" / "governance_ui" / "templates")
TEMPLATE_GLOB = "*.j2"
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "true", "newstyle_gettext": "true",
                 "trim_blocks": "true", "lstrip_blocks": "true", "keep_trailing_newline": "true"}
PYTHON_SOURCES = ("render.py",)
PYTHON_KEYWORDS = {"_gettext": (2,)}  # render._gettext(lang, message)


def extract_messages() -> Any:
    """A Babel catalogue (the ``.pot``) of every translatable string of the templates and :data:`PYTHON_SOURCES`."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_file
    from jinja2.ext import babel_extract

    catalog = Catalog(domain=DOMAIN, project="awsgov", fuzzy=False)
    sources = [(babel_extract, path, None, JINJA_OPTIONS) for folder in TEMPLATE_DIRS
               for path in sorted(folder.glob(TEMPLATE_GLOB))]
    sources += [("python", Path(__file__).with_name(name), PYTHON_KEYWORDS, {}) for name in PYTHON_SOURCES]
    root = LOCALE_DIR.parents[2]
    for method, path, keywords, options in sources:
        kwargs = {"keywords": keywords} if keywords else {}
        for lineno, message, comments, context in extract_from_file(method, str(path), options=options, **kwargs):
            flags = ("python-format",) if "%" in (message if isinstance(message, str) else message[0]) else ()
            catalog.add(message, None, [(str(path.relative_to(root)), lineno)], auto_comments=comments,
                        context=context, flags=flags)
    return catalog


def untranslated(catalog: Any, template: Any) -> list[str]:
    """The message ids of ``template`` that ``catalog`` lacks, leaves empty (any plural form) or marks fuzzy.

    :param catalog: a language's catalogue (babel.messages.pofile.read_po).
    :param template: from :func:`extract_messages`.
    """
    missing = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, message.context)
        strings = found.string if found is not None else None
        if isinstance(strings, tuple | list):
            ok = all(strings)
        else:
            ok = bool(strings)
        if found is None or not ok or found.fuzzy:
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing
