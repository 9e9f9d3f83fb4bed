"""The onboarding trigger form and its texts: include/config/onboarding.yaml, read at DAG parse time.

Light on purpose (YAML only): the account_onboarding DAG builds its Params from :func:`param_specs` when it is
parsed, and nothing that needs boto3 or pandas may load then.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["INCLUDE", "config", "explain", "param_specs", "required_fields"]

INCLUDE = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def config() -> dict[str, Any]:
    """include/config/onboarding.yaml: the trigger form, defaults and messages."""
    return yaml.safe_load((INCLUDE / "config" / "onboarding.yaml").read_text())


def param_specs() -> dict[str, dict[str, Any]]:
    """Keyword arguments of one Airflow ``Param`` per trigger field (``default`` plus JSON-schema keywords).

    A field with a default is optional: its type also allows ``null``, which is what makes Airflow's trigger form
    show it without the red "required" star (the form stars every field whose type does not allow ``null``).
    """
    specs = {}
    for name, spec in config()["params"].items():
        spec = dict(spec)
        if "default" in spec and isinstance(spec.get("type"), str):
            spec["type"] = ["null", spec["type"]]
        specs[name] = spec
    return specs


def required_fields() -> list[str]:
    """The fields without a default: the form stars them and refuses a run without them."""
    return [name for name, spec in config()["params"].items() if "default" not in spec]


# Plain words for a JSON-schema type.
_TYPE_WORDS = {"array": "a list", "string": "text", "integer": "a whole number", "number": "a number",
               "boolean": "true or false", "object": "an object", "null": "empty"}


def _describe_error(title: str, spec: dict[str, Any], error: Any) -> str:
    """One plain-words sentence for a jsonschema ``ValidationError`` on the field ``title``."""
    value, kind, schema = error.instance, error.validator, error.schema
    examples = spec.get("examples") or []
    hint = f" (for example {examples[0]})" if examples else ""
    if kind == "pattern":
        return f"{title}: {value!r} is not in the expected form - {spec.get('description', '')}{hint}".rstrip(" -")
    if kind == "format":
        words = {"email": "an e-mail address", "date": "a date (YYYY-MM-DD)", "date-time": "a date and time"}
        return f"{title}: {value!r} is not {words.get(schema['format'], schema['format'])}"
    if kind == "enum":
        return f"{title}: {value!r} is not one of {', '.join(map(str, schema['enum']))}"
    if kind in ("minimum", "maximum"):
        return f"{title}: {value!r} must be from {spec.get('minimum')} to {spec.get('maximum')}"
    if kind in ("minLength", "maxLength"):
        return f"{title}: must be {spec.get('minLength', 0)} to {spec.get('maxLength', 'any number of')} characters"
    if kind == "minItems":
        return f"{title}: give at least {schema['minItems']}{hint}"
    if kind == "uniqueItems":
        return f"{title}: an entry is listed more than once"
    if kind == "type":
        wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in wanted if t != "null")
        return f"{title}: a value is required" if value is None else f"{title}: expected {words}, got {value!r}"
    return f"{title}: {value!r} is not valid - {spec.get('description', error.message)}"


def explain(conf: dict[str, Any]) -> list[str]:
    """Every problem of a trigger input ``conf`` against the form's schema, one plain-words line per problem.

    Airflow refuses a bad input with the raw text of the first jsonschema error only; this checks every field
    (with the same validator and format checker as Airflow's ``Param``) and words each error from the field's
    ``title``, ``description``, ``examples``, ``enum`` and bounds.

    :param conf: the run configuration the user submitted.
    """
    from jsonschema import Draft202012Validator, FormatChecker

    problems = []
    for name, spec in param_specs().items():
        title = spec.get("title", name)
        if name not in conf:
            if "default" not in spec:
                problems.append(f"{title}: a value is required")
            continue
        schema = {k: v for k, v in spec.items() if k not in ("default", "title", "description")}
        validator = Draft202012Validator(schema, format_checker=FormatChecker())
        errors = sorted(validator.iter_errors(conf[name]), key=lambda e: list(e.absolute_path))
        problems += list(dict.fromkeys(_describe_error(title, spec, error) for error in errors))
    return problems
