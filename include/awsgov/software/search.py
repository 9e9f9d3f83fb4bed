"""Which instances, in which accounts, have a package installed: a search over the collected SSM inventory.

The daily collection stores every managed instance's applications (``software_inventory``, inventory.py); a search
reads the latest collected day (or a given one) from the store, so it costs no AWS call and answers for the whole
organization in seconds. A query is a name pattern (a glob: ``*`` any run of characters, ``?`` one character,
case-insensitive, matched against the whole name; names longer than :data:`MAX_NAME_LENGTH` never match), an
optional version constraint (PEP 440 specifiers such as ``<2.17.1`` or ``>=2.0,<2.17.1``, or a bare version meaning
``==``), and optionally accounts or OU names. Patterns
outside a small character set, with fewer than two literal characters or more than :data:`MAX_STARS` wildcards, and
unparseable constraints are refused with a message naming the problem, before anything is read.

Package names come from member accounts, so matching must not depend on how hostile a name is: a glob with two or
more ``*`` is matched segment by segment (:func:`glob_fullmatch`: the parts between ``*`` placed leftmost, in order,
each part a fixed-length regex without quantifiers), never as one backtracking regex (``.*a.*a.*a.*a`` against 400
characters took 23 s and grows as n^4); one with at most one ``*`` (a single ``.*``, which cannot backtrack
further) as one regex. Either way the work is at most (name length + 1) x (pattern length + 1) character comparisons.

Package versions are not always PEP 440 (``5.1-6ubuntu1``, ``3.0.2-0ubuntu1.10``): a version that does not parse is
compared by its leading numeric part (``5.1``, ``3.0.2``); one without any (``-1``) never satisfies a constraint.
The answer is rendered as an HTML table (autoescaped) and a CSV (cells that a spreadsheet would run as formulas are
prefixed), archived in the store under ``package_search/<search id>/``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

# Light at import (the DAG file reads the Param patterns at parse time): the store, tables and templates are
# imported where they are used.
if TYPE_CHECKING:
    from include.awsgov.core.store import Store

# The characters a package-name pattern may hold (the DAG's Param enforces the same): letters, digits, space and
# . _ + : @ / ( ) - plus the wildcards * and ?. No brackets, backslashes or quotes: nothing a regex or a shell would
# read as syntax.
PATTERN_CHARS = r"^[A-Za-z0-9 ._+:@/()*?-]{1,128}\Z"
MAX_STARS = 4
MIN_LITERALS = 2
CONSTRAINT_CHARS = r"^[A-Za-z0-9 .,*!=<>~+-]{1,100}\Z"
ACCOUNT_RE = re.compile(r"^\d{12}\Z")
OU_CHARS = r"^[^\x00-\x1f<>]{1,128}\Z"
# Longer installed-application names never match a pattern: real names are far shorter (the longest Windows
# product names are about 150 characters), and the cap bounds the work per name whatever a member account reports.
MAX_NAME_LENGTH = 512
PREFIX = "package_search"
RESULT_COLUMNS = ("account_id", "account_name", "ou", "region", "instance_id", "computer_name", "platform_name",
                  "name", "version", "publisher", "captured_at")
_LEADING_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")
_SEARCH_ID_BAD = re.compile(r"[^A-Za-z0-9_.=-]")
_SEARCH_ID = re.compile(r"[A-Za-z0-9_.=-]{1,120}")


class QueryError(ValueError):
    """A search query that is refused; the message names the field and what is wrong."""


class NoInventoryError(LookupError):
    """Nothing was collected to search (no software_inventory partition on or before the day)."""


def glob_fullmatch(parts: Sequence[str], name: str, at: Callable[[int, int], bool],
                   find: Callable[[int, int, int], int]) -> bool:
    """Whether ``name`` matches a glob given as its parts between ``*`` (``"a*b".split("*")``), without backtracking.

    The first part must match at the start and the last at the end; each middle part is placed at its leftmost
    position after the previous one (a leftmost place never leaves less room for the parts after it, so no other
    place needs trying). Each part is searched once: the work is bounded by len(name) x len(pattern).

    :param parts: the pattern split at ``*`` (a pattern without ``*`` is one part: the whole name).
    :param name: the candidate name.
    :param at: ``at(i, pos)``: whether part ``i`` matches ``name`` at ``pos`` exactly.
    :param find: ``find(i, start, stop)``: the first position >= start where part ``i`` matches and ends by
        ``stop``, or -1.
    """
    if len(parts) == 1:
        return len(name) == len(parts[0]) and at(0, 0)
    last = len(parts) - 1
    pos, end = len(parts[0]), len(name) - len(parts[last])
    if end < pos or not at(0, 0) or not at(last, end):
        return False
    for i in range(1, last):
        found = find(i, pos, end)
        if found < 0:
            return False
        pos = found + len(parts[i])
    return True


@dataclass(frozen=True)
class Glob:
    """A validated package-name glob, matched in linear time (:func:`glob_fullmatch`); from :func:`compile_pattern`.

    :param pattern: the glob as given.
    """

    pattern: str
    parts: tuple[str, ...] = field(init=False, repr=False)
    regexes: tuple[re.Pattern[str], ...] = field(init=False, repr=False)
    whole: re.Pattern[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = tuple(self.pattern.split("*"))
        # Each part is fixed-length (literals and "." only, no quantifier): matching it at a position costs at most
        # its length, whatever the name holds.
        regexes = tuple(re.compile("".join("." if c == "?" else re.escape(c) for c in part), re.IGNORECASE | re.DOTALL)
                        for part in parts)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "regexes", regexes)
        # With at most one "*" the whole-name regex cannot backtrack more than len(name) x len(pattern) either
        # (one ".*" between fixed-length parts: each end position is tried once), and it runs 5 times faster.
        whole = None
        if len(parts) <= 2:
            whole = re.compile(".*".join(r.pattern for r in regexes), re.IGNORECASE | re.DOTALL)
        object.__setattr__(self, "whole", whole)

    def fullmatch(self, name: str) -> bool:
        """Whether the whole ``name`` matches (case-insensitive); False for names over :data:`MAX_NAME_LENGTH`."""
        if len(name) > MAX_NAME_LENGTH:
            return False
        if self.whole is not None:
            return self.whole.fullmatch(name) is not None
        regexes = self.regexes

        def at(i: int, pos: int) -> bool:
            return regexes[i].match(name, pos) is not None

        def find(i: int, start: int, stop: int) -> int:
            found = regexes[i].search(name, start, stop)
            return -1 if found is None else found.start()

        return glob_fullmatch(self.parts, name, at, find)


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Glob:
    """The case-insensitive whole-name matcher of a validated glob, or raise :class:`QueryError`.

    :param pattern: e.g. ``log4j*`` or ``openssl``.
    """
    if not isinstance(pattern, str) or not re.match(PATTERN_CHARS, pattern):
        raise QueryError(f"pattern {pattern!r} is not a safe glob: use 1-128 letters, digits, spaces, . _ + : @ / ( ) -"
                         " and the wildcards * and ? only (no brackets, backslashes, quotes or regex syntax)")
    if pattern.count("*") > MAX_STARS:
        raise QueryError(f"pattern {pattern!r} has {pattern.count('*')} '*' wildcards; at most {MAX_STARS}")
    literals = len(re.sub(r"[*? ]", "", pattern))
    if literals < MIN_LITERALS:
        raise QueryError(f"pattern {pattern!r} is too broad: it needs at least {MIN_LITERALS} characters that are not "
                         "wildcards")
    return Glob(pattern)


@lru_cache(maxsize=256)
def parse_constraint(constraint: str | None) -> SpecifierSet | None:
    """The specifier set of a version constraint (None for none), or raise :class:`QueryError`.

    :param constraint: ``<2.17.1``, ``>=2.0,<3``, ``==3.0.*``, or a bare version ``2.14.1``.
    """
    if constraint is None or not str(constraint).strip():
        return None
    text = str(constraint).strip()
    if not re.match(CONSTRAINT_CHARS, text):
        raise QueryError(f"version constraint {text!r} holds characters a version constraint cannot have")
    if text[0].isdigit():
        text = f"=={text}"
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise QueryError(f"version constraint {constraint!r} is not valid: use PEP 440 comparisons such as "
                         "'<2.17.1', '>=2.0,<3', '==3.0.*' or a bare version") from None


def loose_version(text: Any) -> Version | None:
    """A package version as PEP 440, else its leading numeric part, else None."""
    text = "" if text is None else str(text)
    try:
        return Version(text)
    except InvalidVersion:
        match = _LEADING_VERSION.match(text)
        return Version(match.group(1)) if match else None


def version_matches(spec: SpecifierSet | None, version: Any) -> bool:
    """Whether a package version satisfies a constraint (always, without one)."""
    if spec is None:
        return True
    parsed = loose_version(version)
    return parsed is not None and spec.contains(parsed, prereleases=True)


@dataclass
class SearchQuery:
    """A validated search.

    :param pattern: glob on the application name.
    :param versions: version constraint, or None.
    :param accounts: only these account ids (empty: all).
    :param ous: only accounts in these OUs, by name (empty: all).
    :param day: search this collected day (None: the latest).
    """

    pattern: str
    versions: str | None = None
    accounts: list[str] = field(default_factory=list)
    ous: list[str] = field(default_factory=list)
    day: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SearchQuery:
        """Build and validate from DAG params (or any mapping); raise :class:`QueryError` naming the field."""
        query = cls(pattern=params.get("pattern") or "", versions=params.get("versions") or None,
                    accounts=list(params.get("accounts") or []), ous=list(params.get("ous") or []),
                    day=params.get("day") or None)
        query.validate()
        return query

    def validate(self) -> None:
        if not isinstance(self.pattern, str):
            raise QueryError(f"pattern must be a string, not {type(self.pattern).__name__}")
        if self.versions is not None and not isinstance(self.versions, str):
            raise QueryError(f"versions must be a string, not {type(self.versions).__name__}")
        compile_pattern(self.pattern)
        parse_constraint(self.versions)
        for account in self.accounts:
            if not isinstance(account, str) or not ACCOUNT_RE.match(account):
                raise QueryError(f"accounts: {account!r} is not a 12-digit account id")
        for ou in self.ous:
            if not isinstance(ou, str) or not re.match(OU_CHARS, ou):
                raise QueryError(f"ous: {ou!r} is not an OU name (1-128 characters, no control characters or < >)")
        if self.day:
            try:
                dt.date.fromisoformat(self.day)
            except ValueError:
                raise QueryError(f"day: {self.day!r} is not a date (YYYY-MM-DD)") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _latest_day(store: Store, table: str, day: dt.date | None) -> dt.date | None:
    days = [d for d in store.days(table) if day is None or d <= day]
    return days[-1] if days else None


def _latest_inventory_day(store: Store, day: dt.date | None) -> dt.date | None:
    """The latest day on or before ``day`` whose inventory was read somewhere (an ``ssm_inventory`` coverage row
    that is ok): a day collected with the inventory off, or with every read refused, is not an answer of 0."""
    from include.awsgov.core import tables

    days = [d for d in store.days("software_inventory") if day is None or d <= day]
    for candidate in reversed(days):
        cov = store.read("coverage", candidate, candidate, columns=["source", "status"], schema=tables.COVERAGE)
        if ((cov["source"] == "ssm_inventory") & (cov["status"] == "ok")).any():
            return candidate
    return None


def search(store: Store, query: SearchQuery) -> dict[str, Any]:
    """Run a query over the stored inventory; returns ``{"day", "rows", "summary", "gaps"}``.

    :param store: the history store.
    :param query: a validated query.
    """
    from include.awsgov.core import tables

    glob = compile_pattern(query.pattern)
    spec = parse_constraint(query.versions)
    day = _latest_inventory_day(store, dt.date.fromisoformat(query.day) if query.day else None)
    if day is None:
        raise NoInventoryError(f"no software inventory collected{' on or before ' + query.day if query.day else ''}: "
                               "run governance_collection with inventory.collect enabled first")
    inv = store.read("software_inventory", day, day, schema=tables.SOFTWARE_INVENTORY)
    accounts_day = _latest_day(store, "accounts", day)
    accounts = (store.read("accounts", accounts_day, accounts_day, schema=tables.ACCOUNTS) if accounts_day
                else store.read("accounts", schema=tables.ACCOUNTS))
    names = dict(zip(accounts["account_id"], accounts["name"].fillna(""), strict=True))
    ous = dict(zip(accounts["account_id"], accounts["ou"].fillna(""), strict=True))
    scope = set(inv["account_id"]) | set(accounts["account_id"])
    if query.accounts:
        scope &= set(query.accounts)
    if query.ous:
        wanted = {o.casefold() for o in query.ous}
        scope = {a for a in scope if str(ous.get(a, "")).casefold() in wanted}
    rows = []
    for r in inv[inv["account_id"].isin(scope)].to_dict("records"):
        if glob.fullmatch(str(r["name"] or "")) and version_matches(spec, r["version"]):
            rows.append({**{c: r.get(c) for c in RESULT_COLUMNS if c in r},
                         "account_name": names.get(r["account_id"], ""), "ou": ous.get(r["account_id"], "")})
    rows.sort(key=lambda r: (r["account_id"], r["region"], r["instance_id"], r["name"], r["version"]))
    coverage = store.read("coverage", day, day, schema=tables.COVERAGE)
    coverage = coverage[(coverage["source"] == "ssm_inventory") & coverage["account_id"].isin(scope)]
    gaps = [{k: r[k] for k in ("account_id", "region", "status", "error")}
            for r in coverage[coverage["status"] != "ok"].sort_values(["account_id", "region"]).to_dict("records")]
    searched = inv[inv["account_id"].isin(scope)]
    summary = {
        "day": day.isoformat(), "matches": len(rows), "instances": len({(r["account_id"], r["region"], r["instance_id"])
                                                                        for r in rows}),
        "accounts": len({r["account_id"] for r in rows}), "instances_searched": int(searched["instance_id"].nunique()),
        "accounts_searched": int(searched["account_id"].nunique()), "gaps": len(gaps),
    }
    return {"day": day.isoformat(), "rows": rows, "summary": summary, "gaps": gaps}


def to_csv(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Result rows as UTF-8 CSV with a BOM (spreadsheets then read non-ASCII names right)."""
    from include.awsgov.core.render import csv_cell  # the report's CSV guard against formula cells

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(RESULT_COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in RESULT_COLUMNS])
    return buf.getvalue().encode("utf-8-sig")


def subject(query: SearchQuery, result: Mapping[str, Any]) -> str:
    """One-line mail subject of an answer."""
    from include.awsgov.core.render import oneline

    s = result["summary"]
    versions = f" {query.versions}" if query.versions else ""
    return oneline(f"Package search '{query.pattern}'{versions}: {s['instances']} instance(s) in "
                          f"{s['accounts']} account(s) (inventory of {s['day']})", 200)


def search_id(run_id: str) -> str:
    """A store-safe folder name for a search (from the DAG run id): one path segment, never ``.`` or ``..``.

    Characters outside letters, digits and ``_ . = -`` become ``_``; a name of dots only (which the store would read
    as this folder or its parent: ``..`` wrote at the store root) becomes ``_`` per dot.
    """
    sid = _SEARCH_ID_BAD.sub("_", str(run_id))[:120]
    if not sid.strip("."):
        sid = "_" * len(sid)
    return sid or "search"


def check_search_id(sid: str) -> str:
    """Return ``sid`` if it is one safe path segment (as :func:`search_id` makes), else raise ``ValueError``."""
    if not isinstance(sid, str) or not _SEARCH_ID.fullmatch(sid) or not sid.strip("."):
        raise ValueError(f"search id {sid!r} is not one store folder name (letters, digits, _ . = -; not dots only)")
    return sid


def archive(store: Store, sid: str, query: SearchQuery, result: Mapping[str, Any]) -> dict[str, str]:
    """Render and write the answer (HTML, text, CSV, query) under ``package_search/<sid>/``; return the paths.

    :param store: the history store.
    :param sid: search id (:func:`search_id`).
    :param query: the query.
    :param result: from :func:`search`.
    """
    from include.awsgov.core import render

    check_search_id(sid)
    context = {"query": query.to_dict(), **result}
    base = f"{PREFIX}/{sid}"
    paths = {
        "html": store.put_text(f"{base}/results.html", render.render("package_search", "html", **context)),
        "txt": store.put_text(f"{base}/results.txt", render.render("package_search", "txt", **context)),
        "csv": store.put_bytes(f"{base}/results.csv", to_csv(result["rows"])),
        "query": store.put_text(f"{base}/query.json", json.dumps({"query": query.to_dict(),
                                                                    "summary": result["summary"]})),
    }
    return {k: f"{base}/results.{k}" if k != "query" else f"{base}/query.json" for k in paths}


def message(store: Store, sid: str, query: SearchQuery, result: Mapping[str, Any], sender: str, to: str) -> Any:
    """The answer as a validated e-mail (text, HTML, CSV attachment) for mail.py's transports."""
    from include.awsgov.core import mail

    base = f"{PREFIX}/{check_search_id(sid)}"
    return mail.build_message(sender, [to], subject(query, result), store.get_text(f"{base}/results.txt"),
                              store.get_text(f"{base}/results.html"),
                              [(f"package-search-{result['day']}.csv", store.get_bytes(f"{base}/results.csv"),
                                "text/csv")], {"X-Awsgov-Search": sid})


def summary_text(query: SearchQuery, result: Mapping[str, Any]) -> str:
    """The task log's summary: what was asked, what was found, what could not be searched."""
    s = result["summary"]
    return (f"package search {query.pattern!r}{' ' + query.versions if query.versions else ''}: {s['matches']} "
            f"match(es) on {s['instances']} instance(s) in {s['accounts']} account(s); searched "
            f"{s['instances_searched']} instance(s) in {s['accounts_searched']} account(s), inventory of {s['day']}; "
            f"{s['gaps']} account/region(s) not inventoried")



MAIL_RECORD = "mail.json"  # under package_search/<sid>/: the outcome of mailing the answer


def mail_once(store: Store, sid: str, msg: Any, open_mailer: Callable[[], Any]) -> dict[str, Any]:
    """Mail the answer unless this search's record says it was sent or refused; record the outcome at once.

    A retry of the mailing task therefore never mails the requester twice, and never tries a refused address
    again. ``status`` is ``sent``, ``refused`` (permanent: bad address, 5xx) or ``failed`` (transient: worth a
    retry); ``already`` is True when the record answered without sending.

    :param store: the history store.
    :param sid: search id (:func:`search_id`).
    :param msg: the message (:func:`message`).
    :param open_mailer: opens the transport (mail.py); not called when the record says done.
    """
    from include.awsgov.core import mail

    path = f"{PREFIX}/{check_search_id(sid)}/{MAIL_RECORD}"
    if store.exists(path):
        done = json.loads(store.get_text(path))
        if done.get("status") in ("sent", "refused"):
            return {**done, "already": True}
    outcome = {"to": str(msg["To"]), "status": "sent", "message_id": "", "error": "",
               "at": dt.datetime.now(dt.UTC).isoformat()}
    try:
        with open_mailer() as transport:
            outcome["message_id"] = transport.send(msg)
    except Exception as exc:  # noqa: BLE001 - recorded and classified; the caller decides whether to retry
        if not outcome["message_id"]:  # an error closing the connection after the send changes nothing
            outcome["status"] = "failed" if mail.is_transient(exc) else "refused"
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:500]
    store.put_text(path, json.dumps(outcome))
    return {**outcome, "already": False}
