"""CloudWatch alarm semantics on arrays: the two example tables of the AWS docs, M of N, missing-data treatments."""

from __future__ import annotations

import numpy as np
import pytest

from include.awsgov.anomaly.alarm import ALARM, INSUFFICIENT_DATA, OK, alarm_states, breaching, parse_datapoints

TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
RETAIN = "retain"

# "Configuring how CloudWatch alarms treat missing data": N = 3, evaluation range 5, most recent point on the right.
# Columns: MISSING, IGNORE, BREACHING, NOT BREACHING.
DOC_TABLE_3_OF_3 = [
    ("0 - X - X", (OK, OK, OK, OK)),
    ("0 - - - -", (OK, OK, OK, OK)),
    ("- - - - -", (INSUFFICIENT_DATA, RETAIN, ALARM, OK)),
    ("0 X X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("- - X - -", (ALARM, RETAIN, ALARM, OK)),
]
DOC_TABLE_2_OF_3 = [
    ("0 - X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 0 X 0 X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 - X - -", (OK, OK, ALARM, OK)),
    ("- - - - 0", (OK, OK, ALARM, OK)),
    ("- - - X -", (ALARM, RETAIN, ALARM, OK)),
]


def _final(points: str, m: int, treatment: str, initial: str = OK) -> str:
    return str(alarm_states(parse_datapoints(points), "GreaterThanThreshold", 0.5, m, 3, treatment, initial)[-1])


@pytest.mark.parametrize(
    ("m", "points", "expected"),
    [pytest.param(3, p, e, id=f"3of3[{p}]") for p, e in DOC_TABLE_3_OF_3]
    + [pytest.param(2, p, e, id=f"2of3[{p}]") for p, e in DOC_TABLE_2_OF_3],
)
def test_states_match_the_aws_documentation_tables(m, points, expected):
    for treatment, want in zip(TREATMENTS, expected, strict=True):
        if want == RETAIN:
            assert _final(points, m, treatment, initial=OK) == OK, treatment
            assert _final(points, m, treatment, initial=ALARM) == ALARM, treatment
        else:
            assert _final(points, m, treatment) == want, (treatment, points)


def test_m_of_n_needs_m_breaching_among_the_last_n():
    values = np.array([10, 99, 10, 99, 10, 10, 99, 99, 10], dtype=float)
    states = alarm_states(values, "GreaterThanThreshold", 50, 2, 3, "missing")
    # windows of 3 ending at each point: alarm once two of the last three breach
    assert list(states) == [OK, OK, OK, ALARM, OK, OK, OK, ALARM, ALARM]


def test_one_of_one_alarms_on_each_breaching_point_only():
    values = np.array([1, 5, 1, 5], dtype=float)
    states = alarm_states(values, "GreaterThanOrEqualToThreshold", 5, 1, 1, "notBreaching")
    assert list(states) == [OK, ALARM, OK, ALARM]


@pytest.mark.parametrize(
    ("treatment", "expected"),
    [
        pytest.param("missing", [ALARM, ALARM, ALARM, ALARM, INSUFFICIENT_DATA], id="missing"),
        pytest.param("ignore", [ALARM, ALARM, ALARM, ALARM, ALARM], id="ignore"),
        pytest.param("breaching", [ALARM, ALARM, ALARM, ALARM, ALARM], id="breaching"),
        pytest.param("notBreaching", [ALARM, ALARM, ALARM, OK, OK], id="notBreaching"),
    ],
)
def test_metric_that_stops_reporting(treatment, expected):
    # 3 breaching points, then silence: with N=3, M=2 and a range of 5 the last real points age out one by one.
    values = np.array([9, 9, 9] + [np.nan] * 5)
    states = alarm_states(values, "GreaterThanThreshold", 5, 2, 3, treatment)
    assert list(states[3:]) == expected


def test_less_than_comparisons():
    values = np.array([5.0, 4.0, 3.0, np.nan])
    assert list(breaching(values, "LessThanThreshold", 4)) == [False, False, True, False]
    assert list(breaching(values, "LessThanOrEqualToThreshold", 4)) == [False, True, True, False]


def test_vectorised_over_series_equals_one_by_one():
    rng = np.random.default_rng(7)
    matrix = rng.uniform(0, 100, size=(20, 60))
    matrix[rng.uniform(size=matrix.shape) < 0.3] = np.nan
    for treatment in TREATMENTS:
        together = alarm_states(matrix, "GreaterThanThreshold", 60, 2, 4, treatment)
        for row in range(matrix.shape[0]):
            alone = alarm_states(matrix[row], "GreaterThanThreshold", 60, 2, 4, treatment)
            assert list(together[row]) == list(alone), (treatment, row)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"datapoints_to_alarm": 4, "evaluation_periods": 3}, "datapoints_to_alarm", id="m-above-n"),
        pytest.param({"treat_missing_data": "zero"}, "treat_missing_data", id="bad-treatment"),
        pytest.param({"comparison": "GreaterThan"}, "comparison", id="bad-comparison"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, message):
    args = {"comparison": "GreaterThanThreshold", "threshold": 1.0, "datapoints_to_alarm": 1,
            "evaluation_periods": 3, "treat_missing_data": "missing", **kwargs}
    with pytest.raises(ValueError, match=message):
        alarm_states(np.ones(5), **args)
