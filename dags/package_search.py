"""
### Package search: which instances, in which accounts, have a package installed

Triggered from the form. It searches the SSM inventory that `governance_collection` stores every day
(`software_inventory`, see `docs/inventory.md`), so it answers for the whole organization without calling AWS.

1. **validate_query**: refuses a bad query before anything is read or sent, naming the field: a `pattern` outside
   the safe glob (letters, digits, space, `. _ + : @ / ( ) -` and the wildcards `*` `?`; at most 4 `*`; at least
   2 literal characters), a `versions` constraint that is not PEP 440 (`<2.17.1`, `>=2.0,<3`, `==3.0.*`, or a bare
   version), malformed account ids or OU names, an invalid `mail_to` address or one outside the allowed recipient
   domains (settings `mail.allowed_recipient_domains`).
2. **search_inventory**: reads the latest collected day (or `day`), keeps the accounts and OUs asked for, matches
   name and version, writes the answer to the store under `package_search/<run id>/` (`results.html`, an
   autoescaped table; `results.csv`; `results.txt`; `query.json`) and logs a summary. Accounts and regions whose
   inventory could not be read that day are listed as not searched.
3. **mail_results** (only with `mail_to`): sends the answer (HTML, text, CSV attached) through the configured
   transport (SES or SMTP, `mail.py`), once: the outcome is recorded next to the answer (`mail.json`), so a retry
   never mails it twice; a refused address fails the task without retries, a transient failure is retried.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from airflow.sdk import Param, dag, get_current_context, task

from include.awsgov.airflow_conn import AWS_POOL, DEFAULT_ARGS, fail_now
from include.awsgov.software.search import CONSTRAINT_CHARS, OU_CHARS, PATTERN_CHARS

log = logging.getLogger(__name__)



@dag(
    dag_id="package_search",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["governance", "security"],
    params={
        "pattern": Param("log4j*", type="string", pattern=PATTERN_CHARS, minLength=1, maxLength=128,
                         title="Package name", description="Glob on the application name, case-insensitive: "
                         "* any characters, ? one character (e.g. log4j*, openssl, telnet-server*)."),
        "versions": Param(None, type=["null", "string"], pattern=CONSTRAINT_CHARS, title="Version constraint",
                          description="Optional PEP 440 comparison, e.g. <2.17.1, >=2.0,<3, ==3.0.*; "
                          "a bare version means =="),
        "accounts": Param([], type="array", items={"type": "string", "pattern": r"^\d{12}\Z"}, title="Accounts",
                          description="Only these account ids (empty: every account)."),
        "ous": Param([], type="array", items={"type": "string", "pattern": OU_CHARS}, title="OUs",
                     description="Only accounts in these OUs, by name (e.g. Prod); empty: every OU."),
        "day": Param(None, type=["null", "string"], format="date", title="Inventory day",
                     description="Search the inventory collected on this day (YYYY-MM-DD); empty: the latest."),
        "mail_to": Param(None, type=["null", "string"], maxLength=254, title="Mail the answer to",
                         description="Optional e-mail address of the requester."),
    },
    default_args=DEFAULT_ARGS,
)
def package_search():
    @task(retries=0)
    def validate_query(params: dict | None = None) -> dict:
        """Refuse a bad query (pattern, constraint, accounts, OUs, address) before anything is read or sent."""
        from include.awsgov.airflow_conn import settings
        from include.awsgov.core import mail
        from include.awsgov.software.search import QueryError, SearchQuery

        params = params or {}
        try:
            query = SearchQuery.from_params(params)
            mail_to = None
            if params.get("mail_to"):
                domains = mail.allowed_recipient_domains(settings())
                mail_to = mail.check_recipient_allowed(mail.validate_address(params["mail_to"]), domains)
        except (QueryError, mail.InvalidHeader) as exc:
            fail_now(exc)
        return {"query": query.to_dict(), "mail_to": mail_to}

    @task
    def search_inventory(request: dict) -> dict:
        """Search the stored inventory, archive the answer (HTML, CSV) in the store and log a summary."""
        from include.awsgov.airflow_conn import settings
        from include.awsgov.core.render import oneline
        from include.awsgov.core.store import Store
        from include.awsgov.software import search as ps

        context = get_current_context()
        cfg = settings()
        store = Store(cfg["store_url"])
        query = ps.SearchQuery(**request["query"])
        try:
            result = ps.search(store, query)
        except ps.NoInventoryError as exc:
            fail_now(exc)
        sid = ps.search_id(context["run_id"])
        paths = ps.archive(store, sid, query, result)
        log.info("%s", ps.summary_text(query, result))
        for row in result["rows"][:20]:
            log.info("  %s %s %s %s %s", row["account_id"], row["region"], row["instance_id"],
                     oneline(row["name"], 80), oneline(row["version"], 40))
        log.info("answer: %s (and .csv, .txt) in the store %s", paths["html"], cfg["store_url"])
        return {"search_id": sid, "summary": result["summary"], "paths": paths}

    @task(pool=AWS_POOL)
    def mail_results(request: dict, answer: dict) -> dict:
        """Mail the answer to the requester through the configured transport (skipped without mail_to)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from include.awsgov.airflow_conn import mailer, settings
        from include.awsgov.core.store import Store
        from include.awsgov.software import search as ps

        if not request.get("mail_to"):
            raise AirflowSkipException("no mail_to: the answer is in the store only")
        cfg = settings()
        store = Store(cfg["store_url"])
        query = ps.SearchQuery(**request["query"])
        result = {"day": answer["summary"]["day"], "summary": answer["summary"]}
        msg = ps.message(store, answer["search_id"], query, result, cfg["mail"]["sender"], request["mail_to"])
        context = get_current_context()
        outcome = ps.mail_once(store, answer["search_id"], msg, lambda: mailer(cfg, context))
        if outcome["status"] == "refused":
            fail_now(RuntimeError(f"the answer was not mailed to {outcome['to']}: {outcome['error']}"))
        if outcome["status"] == "failed":  # recorded; a retry sends it (and only it)
            raise RuntimeError(f"mailing the answer to {outcome['to']} failed, retrying: {outcome['error']}")
        log.info("answer %s %s (message %s)", "was already mailed to" if outcome["already"] else "mailed to",
                 outcome["to"], outcome["message_id"])
        return {"to": outcome["to"], "message_id": outcome["message_id"]}

    request = validate_query()
    answer = search_inventory(request)
    mail_results(request, answer)


package_search()
