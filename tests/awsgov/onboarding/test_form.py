"""Tests of include/awsgov/onboarding/form.py: which trigger fields are optional, and plain-words refusals."""

from __future__ import annotations

import pytest
from airflow.sdk import Param

from include.awsgov.onboarding import form

TEST_GOOD = {"account_ids": ["123456789012"], "owner_email": "team@example.com", "team": "Payments",
             "environment": "prod"}


def test_fields_with_a_default_allow_null_so_the_form_shows_them_optional():
    specs = form.param_specs()
    assert specs["regions"]["type"] == ["null", "array"]
    assert specs["dry_run"]["type"] == ["null", "boolean"]
    assert specs["failure_tolerance_percent"]["type"] == ["null", "integer"]
    for name in form.required_fields():
        assert "null" not in specs[name]["type"]


def test_required_fields_are_the_ones_without_default():
    assert form.required_fields() == ["account_ids", "owner_email", "team", "environment"]


def test_params_still_accept_their_defaults():
    for name, spec in form.param_specs().items():
        if "default" in spec:
            assert Param(**spec).resolve() == spec["default"], name


def test_a_good_request_has_no_problem():
    assert form.explain(TEST_GOOD) == []


def test_every_bad_field_is_reported_at_once_in_plain_words():
    problems = form.explain({**TEST_GOOD, "account_ids": ["12345"], "owner_email": "nobody", "environment": "qa"})
    assert problems == [
        "Account ids: '12345' is not in the expected form - Member accounts to bring under governance, one 12-digit "
        "account id per line (e.g. 123456789012).",
        "Owner e-mail: 'nobody' is not an e-mail address",
        "Environment: 'qa' is not one of prod, dev, sandbox",
    ]
    assert not any("Failed validating" in p or "schema[" in p for p in problems)


@pytest.mark.parametrize(("conf", "expected"), [
    pytest.param({"team": ""}, "Team: must be 1 to 64 characters", id="min-length"),
    pytest.param({"failure_tolerance_percent": 300}, "Failure tolerance (%): 300 must be from 0 to 100", id="maximum"),
    pytest.param({"account_ids": []}, "Account ids: give at least 1", id="min-items"),
    pytest.param({"dry_run": "yes"}, "Dry run: expected true or false, got 'yes'", id="type"),
    pytest.param({"account_ids": ["123456789012", "123456789012"]}, "Account ids: an entry is listed more than once",
                 id="unique"),
])
def test_each_kind_of_problem_has_its_sentence(conf, expected):
    assert form.explain({**TEST_GOOD, **conf}) == [expected]


def test_missing_required_fields_are_named():
    assert form.explain({"account_ids": ["123456789012"]}) == [
        "Owner e-mail: a value is required", "Team: a value is required", "Environment: a value is required"]


def test_an_emptied_optional_field_is_accepted():
    assert form.explain({**TEST_GOOD, "regions": None, "ou_ids": None}) == []
