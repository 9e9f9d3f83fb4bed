"""What each AWS Config rule and Trusted Advisor check means: title, severity, why it matters, where the fix is.

The wording lives in ``include/config/rules_catalog.yaml`` (schema ``schema/rules_catalog.schema.json``, checked at
load with unknown keys rejected); this module looks entries up, falls back to per-source defaults for rules it does
not know, and computes the rank factors (severity, environment, age) and console links the report uses.

Titles and why lines are English, with each other report language's wording beside them (``ja: {title, why}``;
core/i18n.py's languages). A report in that language uses it, falling back to the English of an entry (or field) that
has none; the title of a rule or check the catalog does not know is its own name in every language.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from include.awsgov.core import i18n

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
CATALOG_PATH = CONFIG_DIR / "rules_catalog.yaml"
SCHEMA_PATH = CONFIG_DIR / "schema" / "rules_catalog.schema.json"

TA, CONFIG = "trusted_advisor", "config"
# The closed severity scale, most severe first (the schema enforces the same list).
SEVERITIES = ("critical", "high", "medium", "low", "informational")
# Trusted Advisor console pages are named with dashes where the API's categories have underscores.
_TA_CONSOLE_PAGE = {"cost_optimizing": "cost-optimizing", "fault_tolerance": "fault-tolerance",
                    "service_limits": "service-limits", "security": "security", "performance": "performance"}
# A region goes into the console link's host name: anything that is not a region name falls back to the default.
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d\Z")
DEFAULT_CONSOLE_REGION = "us-east-1"


class CatalogError(ValueError):
    """The catalog file does not match its schema; the message names each offending key."""


@dataclass(frozen=True)
class RuleInfo:
    """How the report words one rule or check.

    :param title: one-line problem statement.
    :param severity: one of :data:`SEVERITIES`.
    :param why: why it matters, one line.
    :param remediation: AWS documentation page of the fix.
    :param known: whether the catalog lists it (False: defaults were used).
    """

    title: str
    severity: str
    why: str
    remediation: str
    known: bool = True


@dataclass
class Catalog:
    """A validated catalog.

    :param data: the parsed YAML document.
    """

    data: Mapping[str, Any]
    _config_cache: dict[str, str | None] = field(default_factory=dict, repr=False)

    # -- lookups ----------------------------------------------------------------------------------------------
    def _config_key(self, rule_name: str) -> str | None:
        """Catalog key of a deployed Config rule name: exact, else the longest catalog name it contains."""
        if rule_name not in self._config_cache:
            rules = self.data["config_rules"]
            if rule_name in rules:
                key = rule_name
            else:
                low = rule_name.casefold()
                hits = [k for k in rules if k.casefold() in low]
                key = max(hits, key=len) if hits else None
            self._config_cache[rule_name] = key
        return self._config_cache[rule_name]

    def info(self, source: str, check: str, *, check_name: str = "", category: str = "", status: str = "",
             lang: str = i18n.SOURCE_LANGUAGE) -> RuleInfo:
        """Wording of one rule or check, from the catalog or the source's defaults.

        :param source: ``config`` or ``trusted_advisor``.
        :param check: the Config rule name or the Trusted Advisor check id.
        :param check_name: Trusted Advisor's own check name (title of an unknown check).
        :param category: Trusted Advisor category (remediation page of an unknown check).
        :param status: Trusted Advisor status error | warning (severity of an unknown check).
        :param lang: report language (:data:`i18n.LANGUAGES`) of the title and why; English where the entry has no
            wording in it.
        """
        if source == CONFIG:
            key = self._config_key(check)
            if key is not None:
                return _info(self.data["config_rules"][key], lang)
            d = self.data["defaults"][CONFIG]
            return RuleInfo(check, d["severity"], _text(d, "why", lang), d["remediation"], known=False)
        entry = self.data["trusted_advisor"].get(check)
        if entry is not None:
            return _info(entry, lang)
        d = self.data["defaults"][TA]
        severity = d["severity_by_status"].get(status, d["severity_by_status"]["warning"])
        remediation = d["remediation_by_category"].get(category, d["remediation"])
        return RuleInfo(check_name or check, severity, _text(d, "why", lang), remediation, known=False)

    def wording(self, source: str, check: str, title: str, why: str, lang: str) -> tuple[str, str]:
        """A finding's (title, why) in ``lang``: each one that is this rule's or check's English catalog wording is
        replaced by the catalog's ``lang`` wording; any other text (a finding's own wording, an unknown check's
        name, wording from an older catalog) is kept as it is.

        :param source: the finding's source; only ``config`` and ``trusted_advisor`` take wording from the catalog.
        :param check: the Config rule name or the Trusted Advisor check id.
        :param title: the finding's title as the week built it (English).
        :param why: the finding's why as the week built it (English).
        :param lang: report language.
        """
        if lang == i18n.SOURCE_LANGUAGE or source not in (CONFIG, TA):
            return title, why
        english, translated = self.info(source, check), self.info(source, check, lang=lang)
        return (translated.title if title == english.title else title,
                translated.why if why == english.why else why)

    # -- rank factors ---------------------------------------------------------------------------------------------
    def severity_weight(self, severity: str) -> float:
        """Rank factor of a severity."""
        return float(self.data["severities"][severity]["weight"])

    def sla_days(self, severity: str) -> int:
        """Days a finding of this severity may stay open before it is overdue."""
        return int(self.data["severities"][severity]["sla_days"])

    def environment_weight(self, environment: str | None) -> float:
        """Rank factor of an account environment (prod first)."""
        envs = self.data["environments"]
        return float(envs.get((environment or "").strip().casefold(), envs["default"]))

    def age_factor(self, age_days: float) -> float:
        """Rank factor of a finding's age, between 1 (new) and 2 (``age_cap_days`` or older)."""
        cap = float(self.data["age_cap_days"])
        return 1.0 + min(max(float(age_days), 0.0), cap) / cap

    def rank(self, severity: str, environment: str | None, age_days: float) -> float:
        """Rank of a finding: severity x environment x age (higher first)."""
        return self.severity_weight(severity) * self.environment_weight(environment) * self.age_factor(age_days)

    # -- links ------------------------------------------------------------------------------------------------
    def console_url(self, source: str, *, region: str = "", resource_type: str = "", resource_id: str = "",
                    category: str = "") -> str:
        """AWS console page of a finding; every value is URL-encoded so that no value can change the link's shape.

        :param source: ``config`` or ``trusted_advisor``.
        :param region: the resource's region (Config).
        :param resource_type: e.g. ``AWS::S3::Bucket`` (Config).
        :param resource_id: the resource id (Config).
        :param category: Trusted Advisor category.
        """
        def q(value: str) -> str:
            return urllib.parse.quote(str(value or ""), safe="")

        if source == CONFIG:
            region = region if _REGION_RE.match(region or "") else DEFAULT_CONSOLE_REGION
            return self.data["console"][CONFIG].format(region=region, resource_type=q(resource_type),
                                                       resource_id=q(resource_id))
        return self.data["console"][TA].format(category_page=q(_TA_CONSOLE_PAGE.get(category, "dashboard")))


def _text(entry: Mapping[str, Any], name: str, lang: str) -> str:
    """An entry's ``name`` field in ``lang``, else its English."""
    if lang != i18n.SOURCE_LANGUAGE:
        if lang not in i18n.LANGUAGES:
            raise ValueError(f"unsupported language {lang!r}; supported: {', '.join(i18n.LANGUAGES)}")
        translated = (entry.get(lang) or {}).get(name)
        if translated:
            return translated
    return entry[name]


def _info(entry: Mapping[str, Any], lang: str) -> RuleInfo:
    return RuleInfo(_text(entry, "title", lang), entry["severity"], _text(entry, "why", lang), entry["remediation"])


def translatable(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], str]]:
    """Every title and why of a parsed catalog that a report language words: (where, its entry, field name), where
    is ``config_rules.<rule>.title``, ``trusted_advisor.<check id>.why``, ``defaults.config.why``...

    :param data: the parsed YAML document (schema-valid).
    """
    out = [(f"{section}.{key}.{name}", entry, name) for section in ("config_rules", "trusted_advisor")
           for key, entry in data[section].items() for name in ("title", "why")]
    return out + [(f"defaults.{source}.why", data["defaults"][source], "why") for source in (CONFIG, TA)]


def untranslated(data: Mapping[str, Any], lang: str) -> list[str]:
    """Where (as :func:`translatable` names it) a parsed catalog has no wording in ``lang``.

    :param data: the parsed YAML document (schema-valid).
    :param lang: a report language other than English.
    """
    return [where for where, entry, name in translatable(data) if not (entry.get(lang) or {}).get(name)]


def validate(data: Any) -> None:
    """Raise :class:`CatalogError` naming every schema violation of a parsed catalog.

    :param data: the parsed YAML document.
    """
    schema = json.loads(SCHEMA_PATH.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        detail = "; ".join(f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors)
        raise CatalogError(f"invalid rules catalog: {detail}")


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog (the packaged one by default, parsed once per process).

    :param path: another catalog file (tests).
    """
    if path is None:
        return _default_catalog()
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    validate(data)
    return Catalog(data)


@lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    data = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))
    validate(data)
    return Catalog(data)
