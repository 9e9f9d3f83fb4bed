"""The e-mail reports' sparkline macro (include/templates/email/_macros.html.j2): a trend needs two weeks of data."""

from __future__ import annotations

import pytest

from include.awsgov.core.render import environment

NOT_ENOUGH = "not enough history yet"


def _sparkline(values: list) -> str:
    template = environment().from_string('{% import "_macros.html.j2" as m %}{{ m.sparkline(values, "Open") }}')
    return template.render(values=values)


@pytest.mark.parametrize("values", [
    pytest.param([None] * 7 + [4], id="one-point-last-week"),
    pytest.param([3] + [None] * 7, id="one-point-first-week"),
    pytest.param([None] * 8, id="no-data"),
    pytest.param([float("nan"), 2.0], id="nan-and-one-point"),
])
def test_fewer_than_two_points_say_not_enough_history(values):
    html = _sparkline(values)
    assert NOT_ENOUGH in html and "<svg" not in html


def test_two_points_draw_the_line():
    html = _sparkline([None] * 6 + [3, 4])
    assert "<svg" in html and "<polyline" in html and NOT_ENOUGH not in html
