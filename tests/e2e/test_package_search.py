"""package_search end to end: the inventory collected from the session sandbox (library call, inventory only), then
the real DAG (``dag.test()``): the answer equals the sandbox's truth, is escaped in HTML and formula-safe in CSV, goes
out through SES when asked; bad queries are refused by the form or the first task, before any AWS call."""

from __future__ import annotations

import csv
import email
import email.policy
import fnmatch
import io
import json
import urllib.request

import pytest
from packaging.version import Version

from tests.conftest import run_dag, task_states

pytestmark = pytest.mark.e2e
DAG_ID = "package_search"


@pytest.fixture
def collected(airflow_sandbox_env, sandbox):
    """The inventory of the sandbox's day in this test's store, through the aggregator (as the daily run does)."""
    from include.awsgov.collection import runner
    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.core.settings import load_settings
    from include.awsgov.core.store import Store

    cfg = load_settings(airflow_sandbox_env["settings"])
    opts = runner.Options.from_settings(cfg)
    opts = runner.Options(regions=opts.regions, sources=(), inventory=opts.inventory,
                              aggregator=opts.aggregator)
    access = AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTPKGSEARCH001",
                                 aws_secret_access_key="test", external_id=sandbox.info["external_id"])
    store = Store(airflow_sandbox_env["store_url"])
    runner.collect_org(access, store, sandbox.today(), opts)
    return store


def _expected(sandbox, pattern, below=None, accounts=None, ous=None):
    """(account, region, instance, name, version) from the truth, matched independently of our code."""
    info = {a["id"]: a for a in sandbox.info["accounts"]}
    out = set()
    for acct, regions in sandbox.truth(sections=["inventory"])["inventory"].items():
        if accounts and acct not in accounts or ous and info[acct]["ou"] not in ous:
            continue
        for region, instances in regions.items():
            for inst in instances:
                for app in inst["applications"]:
                    if not fnmatch.fnmatchcase(app["name"].lower(), pattern.lower()):
                        continue
                    if below and not Version(app["version"]) < Version(below):
                        continue
                    out.add((acct, region, inst["instance_id"], app["name"], app["version"]))
    return out


def _answer(store, run) -> tuple[str, list[dict]]:
    from include.awsgov.software.search import search_id

    base = f"package_search/{search_id(run.run_id)}"
    rows = list(csv.DictReader(io.StringIO(store.get_bytes(f"{base}/results.csv").decode("utf-8-sig"))))
    return store.get_text(f"{base}/results.html"), rows


def test_search_answers_equal_the_seeded_truth(collected, sandbox):
    run = run_dag(DAG_ID, {"pattern": "LOG4J*", "versions": "<2.17.1"})
    assert str(run.state) == "success", task_states(run)
    assert task_states(run)["mail_results"] == "skipped"
    html, rows = _answer(collected, run)
    expected = _expected(sandbox, "log4j*", below="2.17.1")
    assert expected and {(r["account_id"], r["region"], r["instance_id"], r["name"], r["version"])
                         for r in rows} == expected
    assert all(r["instance_id"] in html for r in rows)
    assert "2.17.1" not in {r["version"] for r in rows}


def test_search_by_ou_and_account_scope(collected, sandbox):
    prod = sorted({a["id"] for a in sandbox.info["accounts"] if a["ou"] == "Prod"})
    run = run_dag(DAG_ID, {"pattern": "bash", "ous": ["Prod"]})
    assert str(run.state) == "success", task_states(run)
    _, rows = _answer(collected, run)
    assert {(r["account_id"], r["region"], r["instance_id"], r["name"], r["version"]) for r in rows} == \
        _expected(sandbox, "bash", ous={"Prod"})
    assert {r["account_id"] for r in rows} <= set(prod)
    one = next(iter({r["account_id"] for r in rows}))
    run = run_dag(DAG_ID, {"pattern": "*ssm*agent*", "accounts": [one]})
    _, rows = _answer(collected, run)
    assert rows and {r["account_id"] for r in rows} == {one}
    assert {(r["account_id"], r["region"], r["instance_id"], r["name"], r["version"]) for r in rows} == \
        _expected(sandbox, "*ssm*agent*", accounts={one})


def test_hostile_package_names_are_escaped_and_formula_safe(collected, sandbox):
    run = run_dag(DAG_ID, {"pattern": "*script*"})
    assert str(run.state) == "success", task_states(run)
    html, rows = _answer(collected, run)
    assert rows and all(r["name"] == "<script>alert('pkg')</script>" for r in rows)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img" not in html
    run = run_dag(DAG_ID, {"pattern": "?HYPERLINK*"})  # "=" is not allowed: "?" stands for it
    _, rows = _answer(collected, run)
    assert rows and all(r["name"].startswith("'=HYPERLINK") and r["publisher"].startswith("'+cmd") for r in rows)


def test_answer_is_mailed_to_the_requester(collected, sandbox):
    def sent() -> list[dict]:
        with urllib.request.urlopen(f"{sandbox.endpoint}/moto-api/data.json", timeout=10) as resp:  # noqa: S310
            return [m for m in json.load(resp)["ses"].get("RawMessage", []) if "X-Awsgov-Search" in m["raw_data"]]

    before = len(sent())
    run = run_dag(DAG_ID, {"pattern": "telnet-server*", "mail_to": "requester@example.com"})
    assert str(run.state) == "success", task_states(run)
    mine = sent()[before:]
    assert len(mine) == 1 and set(mine[0]["destinations"]) == {"requester@example.com"}
    msg = email.message_from_string(mine[0]["raw_data"], policy=email.policy.default)
    assert "Package search 'telnet-server*'" in msg["Subject"]
    assert [p.get_filename() for p in msg.iter_attachments()][0].startswith("package-search-")


@pytest.mark.parametrize("conf", [
    pytest.param({"pattern": "log4j[0-9]"}, id="brackets"),
    pytest.param({"pattern": "a|b"}, id="alternation"),
    pytest.param({"pattern": "log4j", "accounts": ["12345"]}, id="short-account"),
    pytest.param({"pattern": "log4j", "versions": "<2'; DROP"}, id="constraint-chars"),
])
def test_the_form_refuses_unsafe_input_before_any_aws_call(airflow_sandbox_env, clean_sandbox, conf):
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):
        run_dag(DAG_ID, conf)
    assert clean_sandbox.calls()["total"] == 0


@pytest.mark.parametrize(("conf", "message"), [
    pytest.param({"pattern": "*"}, "too broad", id="only-wildcard"),
    pytest.param({"pattern": "a*b*c*d*e*f"}, "at most 4", id="too-many-stars"),
    pytest.param({"pattern": "log4j", "versions": "<<2"}, "not valid", id="bad-constraint"),
    pytest.param({"pattern": "log4j", "mail_to": "x@y\nBcc: z@example.com"}, "invalid address", id="header-inject"),
    pytest.param({"pattern": "log4j", "mail_to": "eve@attacker.net"}, "allowed recipient domains",
                 id="mail-to-outside-the-allowed-domains"),
])
def test_validate_query_refuses_with_a_clear_message_before_any_aws_call(airflow_sandbox_env, clean_sandbox,
                                                                           conf, message, capfd):
    run = run_dag(DAG_ID, conf)
    states = task_states(run)
    assert str(run.state) == "failed" and states["validate_query"] == "failed", states
    assert states["search_inventory"] == "upstream_failed" and states["mail_results"] == "upstream_failed"
    out, err = capfd.readouterr()  # the task log (Airflow's structured logger writes to the console in dag.test)
    assert message in out + err
    assert clean_sandbox.calls()["total"] == 0
