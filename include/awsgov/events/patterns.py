"""The alert rules of include/config/events.yaml compiled into one EventBridge event pattern (filter at the bus).

The member accounts' forwarding rule (baseline.yaml) and the central queue rule (central.yaml) carry this pattern, so
the events queue holds alert candidates only, not every API call (account activity is counted from the CloudTrail
log files instead: activity.py). One definition: the rules' ``match`` keys name fields of :func:`ingest.normalise`;
here each field is mapped back to where it sits in the raw EventBridge event, for each kind of event normalise
tells apart:

==============  ==========================================================  ============================================
kind            raw event                                                   fields the rules may use
==============  ==========================================================  ============================================
api             detail-type "AWS API Call via CloudTrail"                   type (eventSource prefix : eventName),
                                                                            actor_type, error_code
signin          source aws.signin, any other detail-type                    type, actor_type, mfa_used, login_result
guardduty       source aws.guardduty, any other detail-type                 type (detail.type), severity
config          source aws.config, any other detail-type                    type, new_compliance, old_compliance, rule
trustedadvisor  source aws.trustedadvisor, any other detail-type            type, ta_status, ta_security (check-name)
organizations   source aws.organizations, any other detail-type (service    type (eventName), create_state
                events: CreateAccountResult)
==============  ==========================================================  ============================================

Two fields cannot be known at the bus and are left to the Python routing: ``environment`` (the account's tag) and
``is_admin_account``. So a pattern match is an *alert candidate*: an event that matches some rule once those two
keys are ignored (:func:`is_candidate`, what the agreement test compares). A rule using a field or a value this
compiler cannot express raises :class:`PatternError` rather than compiling to a wider or narrower pattern.
Every alternative also requires ``source`` to be one of ``sources``, so the queue never carries a source the DAG
would reject (issue #19 item 8).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from include.awsgov.events.ingest import API_CALL, normalise, parse_message, route

#: Fields the Python routing decides alone (not in the event).
BUS_UNKNOWN = frozenset({"environment", "is_admin_account"})
GENERATED_COMMENT = "# Generated from include/config/events.yaml"
#: PutRule's limit on an event pattern's length (EventBridge API Reference, PutRule: EventPattern, max 4096).
MAX_PATTERN_CHARS = 4096

_KIND_SOURCE = {"signin": "aws.signin", "guardduty": "aws.guardduty", "config": "aws.config",
                "trustedadvisor": "aws.trustedadvisor", "organizations": "aws.organizations"}
# normalise's constant type of a kind (None: read from the event, see _type_alternatives).
_KIND_TYPE = {"config": "config:ComplianceChange", "trustedadvisor": "trustedadvisor:CheckItemRefresh"}
_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "api": {"actor_type": ("detail", "userIdentity", "type"), "error_code": ("detail", "errorCode")},
    "signin": {"actor_type": ("detail", "userIdentity", "type"),
               "mfa_used": ("detail", "additionalEventData", "MFAUsed"),
               "login_result": ("detail", "responseElements", "ConsoleLogin")},
    "guardduty": {},
    "config": {"new_compliance": ("detail", "newEvaluationResult", "complianceType"),
               "old_compliance": ("detail", "oldEvaluationResult", "complianceType"),
               "rule": ("detail", "configRuleName")},
    "trustedadvisor": {"ta_status": ("detail", "status")},
    # new_accounts.normalise_detail: CreateAccountResult's state (Organizations API Reference, CreateAccountStatus)
    "organizations": {"create_state": ("detail", "serviceEventDetails", "createAccountStatus", "state")},
}


class PatternError(ValueError):
    """An alert rule that cannot be expressed as an EventBridge pattern."""


def _nest(path: Sequence[str], leaf: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: leaf}
    for key in reversed(path[:-1]):
        out = {key: out}
    return out


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """Both patterns at once (None: they contradict, e.g. two different exact lists on one field)."""
    out = copy.deepcopy(a)
    for key, value in b.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
        elif isinstance(out[key], dict) and isinstance(value, dict):
            merged = _merge(out[key], value)
            if merged is None:
                return None
            out[key] = merged
        elif out[key] == value:
            continue
        else:
            return None
    return out


def _options(expected: Any) -> list[Any]:
    options = expected if isinstance(expected, list) else [expected]
    for option in options:
        if isinstance(option, str) and any(c in option for c in "*?["):
            raise PatternError(f"glob {option!r}: not compiled (EventBridge has no fnmatch)")
    return options


def _type_alternatives(kind: str, options: list[Any]) -> list[dict[str, Any]]:
    """Patterns (one per type option) under which normalise gives ``kind`` events one of these types."""
    out = []
    for option in options:
        service, _, name = str(option).partition(":")
        if kind == "api":
            # normalise: eventSource up to its first "." : eventName
            out.append({"detail": {"eventSource": [{"prefix": f"{service}."}, service], "eventName": [name]}})
        elif kind in _KIND_TYPE:
            if option == _KIND_TYPE[kind]:
                out.append({})
        elif service != kind:
            continue
        elif kind == "signin":  # signin:<eventName, or ConsoleLogin when absent>
            out.append({"detail": {"eventName": [name]}})
            if name == "ConsoleLogin":
                out.append({"detail": {"eventName": [{"exists": False}]}})
        elif kind == "guardduty" and name != "Finding":
            out.append({"detail": {"type": [name]}})
        elif kind == "organizations":  # organizations:<eventName>
            out.append({"detail": {"eventName": [name]}})
        else:
            raise PatternError(f"type {option!r} of {kind} events: not compiled")
    return out


def _field_alternatives(kind: str, key: str, expected: Any, cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Patterns under which the rule key ``key`` (maybe ``<field>_not``) holds for ``kind`` events ([]: never)."""
    negate = key.endswith("_not")
    name = key[:-4] if negate else key
    options = _options(expected)
    if name == "type":
        if negate:
            raise PatternError("type_not: not compiled")
        return _type_alternatives(kind, options)
    if name == "source":
        if negate:
            raise PatternError("source_not: not compiled")
        wanted = [o for o in options if kind == "api" or o == _KIND_SOURCE.get(kind)]
        return [{"source": wanted}] if wanted else []
    if name == "severity":
        if kind == "api" and not negate:  # normalise: every API call is "low"
            return [{}] if "low" in options else []
        if kind != "guardduty" or negate or any(o not in ("high", "medium") for o in options):
            raise PatternError(f"severity {expected!r} of {kind} events: only GuardDuty high/medium is compiled")
        low = min(float(cfg["guardduty_high"] if o == "high" else cfg["guardduty_medium"]) for o in options)
        return [{"detail": {"severity": [{"numeric": [">=", low]}]}}]
    if name == "ta_security":
        if kind != "trustedadvisor" and not negate:
            return []  # not set for other kinds: "" is no boolean
        if kind != "trustedadvisor" or negate or options != [True]:
            raise PatternError("ta_security: only `true` on Trusted Advisor events is compiled")
        return [{"detail": {"check-name": list(cfg["trusted_advisor_security_checks"])}}]
    path = _PATHS[kind].get(name)
    if path is None:
        return []  # normalise never sets this field for this kind: the rule cannot match it ... unless negated
    values = [str(o) for o in options]
    if not negate:
        return [_nest(path, values)]
    # normalise gives "" for a missing field, which differs from every value: missing matches a negation too.
    return [_nest(path, [{"anything-but": values}]), _nest(path, [{"exists": False}])]


def _narrow_api_source(pattern: dict[str, Any], sources: Sequence[str]) -> dict[str, Any]:
    """An API-call pattern whose eventSource is fixed needs only that service's source: CloudTrail's event for a call
    to ``<service>.amazonaws.com`` has source ``aws.<service>`` (EventBridge User Guide, "Events from AWS services":
    CloudTrail). Keeps the compiled pattern under PutRule's size limit."""
    event_sources = (pattern.get("detail") or {}).get("eventSource") or []
    services = {(e.get("prefix") or "").rstrip(".") if isinstance(e, dict) else str(e) for e in event_sources}
    narrowed = [s for s in sources if s.removeprefix("aws.") in services]
    return {**pattern, "source": narrowed} if narrowed and "" not in services else pattern


def rule_alternatives(rule: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The patterns (any of them) that match the raw events the rule matches once BUS_UNKNOWN keys are ignored."""
    match = {k: v for k, v in rule["match"].items() if k.removesuffix("_not") not in BUS_UNKNOWN}
    sources = list(cfg["sources"])
    out: list[dict[str, Any]] = []
    for kind in _PATHS:
        base = ({"detail-type": [API_CALL]} if kind == "api" else
                {"source": [_KIND_SOURCE[kind]], "detail-type": [{"anything-but": API_CALL}]})
        per_key = []
        # source and type first: a kind they exclude is skipped before its other keys are compiled.
        for key in sorted(match, key=lambda k: (k.removesuffix("_not") not in ("source", "type"), k)):
            negate = key.endswith("_not")
            alternatives = _field_alternatives(kind, key, match[key], cfg)
            if not alternatives and negate:
                alternatives = [{}]  # the field is "" for this kind, which differs from every value
            if not alternatives:
                break
            per_key.append(alternatives)
        else:
            per_key = per_key or [[{}]]
        if len(per_key) < len(match):
            continue
        for combo in itertools.product(*per_key):
            pattern: dict[str, Any] | None = {**base, "source": base.get("source", sources)}
            for part in combo:
                pattern = _merge(pattern, part) if pattern is not None else None
            if pattern is not None and kind == "api" and "source" not in match:
                pattern = _narrow_api_source(pattern, sources)
            if pattern is not None and all(s in sources for s in pattern["source"]):
                out.append(pattern)
    if not out:
        raise PatternError(f"rule {rule.get('id')!r} matches no event this compiler knows")
    return out


def compile_pattern(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The one EventBridge pattern of every alert rule (``{"$or": [...]}``), checked against PutRule's size limit.

    :param cfg: events.yaml.
    """
    alternatives: list[dict[str, Any]] = []
    for rule in cfg["alerts"]["rules"]:
        for pattern in rule_alternatives(rule, cfg):
            if pattern not in alternatives:
                alternatives.append(pattern)
    pattern = {"$or": alternatives}
    size = len(json.dumps(pattern, separators=(",", ":")))
    if size > MAX_PATTERN_CHARS:
        raise PatternError(f"compiled pattern is {size} characters, over EventBridge's {MAX_PATTERN_CHARS}")
    return pattern


def is_candidate(message: Mapping[str, str], cfg: Mapping[str, Any]) -> bool:
    """Whether the Python side would alert on this message for some environment and some admin account: it is
    well formed, from a known source, and matches a rule once the BUS_UNKNOWN keys are ignored."""
    event, reject = parse_message(message, cfg)
    if reject is not None:
        return False
    record = normalise(event, cfg)
    rules = [{**rule, "match": {k: v for k, v in rule["match"].items() if k.removesuffix("_not") not in BUS_UNKNOWN}}
             for rule in cfg["alerts"]["rules"]]
    return bool(route(record, admin_account_id="", environment="", rules=rules))


def template_with_pattern(text: str, pattern: Mapping[str, Any]) -> str:
    """A CloudFormation template's text with its one ``EventPattern`` block replaced by ``pattern`` (block YAML,
    everything else of the file untouched)."""
    import yaml

    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == "EventPattern:" or
              line.lstrip().startswith("EventPattern:")]
    # A template with other rules (central.yaml's account events): the one generated before is the one replaced.
    generated = [i for i in starts if i > 0 and lines[i - 1].lstrip().startswith(GENERATED_COMMENT)]
    if len(starts) > 1 and len(generated) == 1:
        starts = generated
    if len(starts) != 1:
        raise PatternError(f"expected one EventPattern in the template, found {len(starts)}")
    start = starts[0]
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    pad = " " * (indent + 2)
    block = [" " * indent + GENERATED_COMMENT + " by include/awsgov/events/patterns.py\n",
             " " * indent + "EventPattern:\n"]
    for key, value in pattern.items():  # "$or": one flow mapping per alternative, wrapped
        block.append(f"{pad}{key}:\n")
        for alternative in value:
            flow = yaml.safe_dump(alternative, default_flow_style=True, sort_keys=False, width=110 - len(pad))
            first, *rest = flow.rstrip("\n").splitlines()
            block.append(f"{pad}  - {first}\n")
            block += [f"{pad}    {line.lstrip()}\n" for line in rest]
    # A comment line generated before stays one comment line.
    if start > 0 and lines[start - 1].lstrip().startswith(GENERATED_COMMENT):
        start -= 1
    return "".join(lines[:start] + block + lines[end:])


if __name__ == "__main__":  # rewrite the EventPattern of the named templates from events.yaml
    import sys
    from pathlib import Path

    from include.awsgov.events.ingest import events_config

    folder = Path(__file__).resolve().parents[2] / "templates" / "cloudformation"
    compiled = compile_pattern(events_config())
    for name in sys.argv[1:]:
        path = folder / name
        path.write_text(template_with_pattern(path.read_text(), compiled))
