"""Bring the report catalogues up to date with the templates: `python scripts/i18n_messages.py [--check]`.

Extracts every translatable string (Babel with Jinja's extractor; include/awsgov/core/i18n.py says from where) and
merges it into include/templates/locale/<lang>/LC_MESSAGES/messages.po for every language but English: new strings
are added untranslated, strings no template uses any more are marked obsolete. Translate the new entries (msgstr),
then run the tests: tests/awsgov/core/test_i18n.py fails while a string has no translation. ``--check`` only reports
what is missing and exits 1 if anything is. The catalogues are compiled in memory when a report is rendered: there
is no .mo file to build.

The rules' titles and why lines are not templates: their translations sit beside the English in
include/config/rules_catalog.yaml (``ja: {title, why}`` per rule). This script reports the ones missing there too
(add them by hand); the same test fails while one is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from babel.messages.catalog import Catalog  # noqa: E402
from babel.messages.pofile import write_po  # noqa: E402

from include.awsgov.core import i18n  # noqa: E402
from include.awsgov.report import catalog as rules_catalog  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report untranslated strings, change nothing")
    args = parser.parse_args(argv)
    template = i18n.extract_messages()
    rules = yaml.safe_load(rules_catalog.CATALOG_PATH.read_text(encoding="utf-8"))
    rules_catalog.validate(rules)
    status = 0
    for lang, loc in i18n.LANGUAGES.items():
        if lang == i18n.SOURCE_LANGUAGE:
            continue
        path = i18n.catalogue_path(lang)
        if path.exists():
            catalog = i18n.catalogue(lang)
        else:
            catalog = Catalog(locale=loc, domain=i18n.DOMAIN, project="awsgov", fuzzy=False)
        missing = i18n.untranslated(catalog, template)
        if not args.check:
            catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                write_po(handle, catalog, width=120, include_previous=False, include_lineno=False)
        print(f"{lang}: {len(template) - len(missing)} of {len(template)} strings translated ({path})")
        for message in missing:
            print(f"  untranslated: {message!r}")
        unworded = rules_catalog.untranslated(rules, lang)
        wordings = len(rules_catalog.translatable(rules))
        print(f"{lang}: {wordings - len(unworded)} of {wordings} rule titles and why lines translated "
              f"({rules_catalog.CATALOG_PATH})")
        for where in unworded:
            print(f"  untranslated: {where} (add it by hand)")
        status = status or int(bool(missing or unworded))
    return status if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
