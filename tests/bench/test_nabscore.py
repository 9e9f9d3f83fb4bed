"""Tests of bench/nabscore.py on hand-computed cases of NAB's standard profile."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench import nab, nabscore

TEST_ROWS = 1000
TEST_WINDOW = (400, 499)  # inclusive, width 100


def sigma(y: float) -> float:
    """The scaled sigmoid written out by hand."""
    return 2 / (1 + math.exp(5 * y)) - 1


def flags(*rows: int, n: int = TEST_ROWS) -> np.ndarray:
    det = np.zeros(n, dtype=int)
    det[list(rows)] = 1
    return det


def test_scaled_sigmoid_reference_values():
    assert nabscore.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nabscore.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nabscore.scaled_sigmoid(0.0) == 0.0
    assert nabscore.scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert nabscore.scaled_sigmoid(3.5) == -1.0


@pytest.mark.parametrize(("n", "expected"), [pytest.param(4032, 604, id="14-days"), pytest.param(4730, 709, id="dst"),
                                             pytest.param(1243, 186, id="short"), pytest.param(20000, 750, id="cap")])
def test_probation_rows(n, expected):
    assert nabscore.probation_rows(n) == expected


def test_detection_at_window_start_scores_one():
    res = nabscore.score_file(flags(400), [TEST_WINDOW], probation=0)
    # Row l of [l, r]: position -(r - l + 1) / w = -1, worth sigma(-1) / sigma(-1) = 1.
    assert res.raw == pytest.approx(1.0)
    assert (res.tp_windows, res.fn_windows, res.fp_rows) == (1, 0, 0)


def test_detection_late_in_window_scores_less():
    res = nabscore.score_file(flags(480), [TEST_WINDOW], probation=0)
    assert res.raw == pytest.approx(sigma(-(499 - 480 + 1) / 100) / sigma(-1))
    assert 0 < res.raw < nabscore.score_file(flags(450), [TEST_WINDOW], probation=0).raw < 1


def test_only_earliest_detection_in_window_counts():
    res = nabscore.score_file(flags(420, 430, 490), [TEST_WINDOW], probation=0)
    assert res.raw == pytest.approx(sigma(-(499 - 420 + 1) / 100) / sigma(-1))


def test_no_detection_costs_one_per_window():
    res = nabscore.score_file(flags(), [(100, 199), TEST_WINDOW], probation=0)
    assert res.raw == -2.0
    assert res.fn_windows == 2


def test_false_positive_before_any_window_costs_afp():
    res = nabscore.score_file(flags(50), [TEST_WINDOW], probation=0)
    assert res.fp_score == pytest.approx(-0.11)
    assert res.raw == pytest.approx(-1.11)


def test_false_positive_weight_grows_with_distance_after_window():
    """sigma((i - r') / (w' - 1)) is ~0 right after a window and -1 from 3 widths on: NAB treats a flag just after a
    window as a possibly late detection (the README's wording "penalised most just after" contradicts its formula)."""
    near = nabscore.score_file(flags(500), [TEST_WINDOW], probation=0).fp_score
    mid = nabscore.score_file(flags(560), [TEST_WINDOW], probation=0).fp_score
    far = nabscore.score_file(flags(900), [TEST_WINDOW], probation=0).fp_score
    assert near == pytest.approx(0.11 * sigma(1 / 99))
    assert far == pytest.approx(-0.11)
    assert far < mid < near < 0


def test_probation_rows_ignored():
    res = nabscore.score_file(flags(10, 400, n=TEST_ROWS), [TEST_WINDOW], probation=150)
    assert res.fp_rows == 0
    assert res.raw == pytest.approx(1.0)
    assert nabscore.score_file(flags(10), [TEST_WINDOW]).fp_rows == 0  # default probation: 150 of 1000 rows


def test_normalised_score_null_zero_perfect_hundred():
    assert nabscore.normalised_score(-15.0, 15) == 0.0
    assert nabscore.normalised_score(15.0, 15) == 100.0
    assert nabscore.normalised_score(4.41, 15) == pytest.approx(64.7)


def test_score_corpus_sums_files_then_normalises():
    files = {"a.csv": (flags(400), [TEST_WINDOW]), "b.csv": (flags(), [TEST_WINDOW])}
    score, per_file = nabscore.score_corpus(files)
    assert per_file["a.csv"].raw == pytest.approx(1.0)
    assert per_file["b.csv"].raw == -1.0
    assert score == pytest.approx(100 * (0.0 + 2) / 4)


def test_window_rows_match_first_19_characters():
    stamps = [f"2014-02-14 14:{m:02d}:00" for m in range(0, 60, 5)]
    rows = nabscore.window_rows(stamps, [["2014-02-14 14:10:00.000000", "2014-02-14 14:25:00.000000"]])
    assert rows == [(2, 5)]
    with pytest.raises(KeyError, match="does not match"):
        nabscore.window_rows(stamps, [["2014-02-14 15:10:00.000000", "2014-02-14 15:25:00.000000"]])


# --- bench/nab.py: several folders, steps picked from the data, streaming equals batch ------------------------------


def write_nab_folder(root, name: str = "realSynthetic"):
    """A NAB-style folder: an hourly file with a spike and an irregularly sampled one; windows.json in the parent."""
    folder = root / name
    folder.mkdir()
    rng = np.random.default_rng(0)
    hours = pd.date_range("2024-01-01", periods=24 * 20, freq="h")
    hourly = 100 + 10 * np.sin(2 * np.pi * np.arange(hours.size) / 24) + rng.normal(0, 1, hours.size)
    hourly[24 * 15 + 5] += 60
    pd.DataFrame({"timestamp": hours.strftime("%Y-%m-%d %H:%M:%S"), "value": hourly}).to_csv(
        folder / "hourly.csv", index=False)
    gaps = np.tile([300, 300, 300, 300, 300, 600, 900, 1200], 300)
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.r_[0, np.cumsum(gaps)], "s")
    irregular = 50 + rng.normal(0, 1, stamps.size)
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": irregular}).to_csv(
        folder / "irregular.csv", index=False)
    windows = {
        f"{name}/hourly.csv": [[str(hours[24 * 15]) + ".000000", str(hours[24 * 16]) + ".000000"]],
        f"{name}/irregular.csv": [[str(stamps[1500]) + ".000000", str(stamps[1600]) + ".000000"]],
    }
    (root / "windows.json").write_text(json.dumps(windows))
    return folder


def test_nab_bench_scores_a_folder_with_inferred_steps(tmp_path):
    folder = write_nab_folder(tmp_path)
    res = nab.run_folder(folder, tmp_path / "out", show_files=False)
    assert res["same"] and res["scored"]
    assert res["files"] == 2 and res["windows"] == 2
    assert res["hit"] >= 1  # the hourly spike
    hourly = pd.read_csv(tmp_path / "out" / folder.name / "hourly.csv")
    assert list(hourly.columns) == ["timestamp", "value", "anomaly_score", "is_anomaly"]
    assert len(hourly) == 24 * 20
    assert hourly["is_anomaly"].iloc[24 * 15 + 5] == 1


def test_nab_bench_prints_the_folder_table_with_references(tmp_path, capsys):
    folder = write_nab_folder(tmp_path)
    assert nab.main(["--data", str(folder), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "| folder | this detector | Numenta HTM | ARTime | CAD OSE |" in out
    assert "| realSynthetic (2 files) |" in out and "held out" in out
    assert "streamed results equal the batch results: yes" in out
