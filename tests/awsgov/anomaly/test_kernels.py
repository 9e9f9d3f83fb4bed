"""The detector's compiled per-point loops against their definitions, written point by point in plain numpy.

The whole detector's behaviour is tested in test_anomaly.py; here each output of the loops is recomputed from what it
means (a median of three residuals, a mean over a window, a block's extremes, a score), with gaps in the data, a
history carried from an earlier call and a partial last block.
"""

from __future__ import annotations

import numpy as np
import pytest

from include.awsgov.anomaly import kernels as kernels

F = np.float32
B, N, NB, TB = 12, 5, 7, 3  # points per block, series, blocks (the last one partial), blocks of carried history
J = NB - 1
MEAN_BLOCKS = (1, 3)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(7)
    XT = rng.normal(10.0, 2.0, (B, N, NB))
    XT[rng.random(XT.shape) < 0.15] = np.nan
    XT[:, 1, 2] = np.nan  # a whole block missing
    expected = rng.normal(10.0, 1.0, (N, NB))
    lim = rng.uniform(1.0, 3.0, (N, NB)).astype(F)
    tail = rng.normal(0.0, 1.0, (N, 2)).astype(F)
    tail[3, 1] = np.nan
    history = rng.normal(0.0, 1.0, (B, N, TB)).astype(F)
    history[rng.random(history.shape) < 0.2] = np.nan
    pre = np.empty((B, N, TB + NB), F)
    pre[:, :, :TB] = history
    nv = 2 + len(MEAN_BLOCKS)
    out = {"view": np.empty((nv, B, N, NB), F), "bmax": np.empty((2, nv, N, J), F),
           "win_tail": np.empty((N, B, TB), F), "res_tail": np.empty((N, 2), F)}
    kernels.views(XT, expected, lim, tail, pre, np.asarray(MEAN_BLOCKS, np.int64), J, out["view"], out["bmax"],
                  out["win_tail"], out["res_tail"])
    # Per series, time-ordered: residuals and winsorised residuals (history blocks first).
    r = F(XT - expected[None]).transpose(1, 2, 0).reshape(N, NB * B)
    w = np.clip(r, -lim.repeat(B, 1), lim.repeat(B, 1))
    wins = np.concatenate([history.transpose(1, 2, 0).reshape(N, TB * B), w], 1)
    return {"XT": XT, "r": r, "wins": wins, "tail": tail, "lim": lim, **out}


def by_time(view_i: np.ndarray) -> np.ndarray:
    """(B, N, NB) -> (N, NB * B), time order."""
    return view_i.transpose(1, 2, 0).reshape(N, NB * B)


def test_point_view_is_the_residual(case):
    np.testing.assert_array_equal(by_time(case["view"][0]), case["r"])


def test_median_view_is_the_median_of_three_residuals_missing_if_any_is(case):
    r = np.concatenate([case["tail"], case["r"]], 1)
    three = np.stack([r[:, :-2], r[:, 1:-1], r[:, 2:]])
    want = np.where(np.isnan(three).any(0), np.nan, np.median(three, 0))
    np.testing.assert_array_equal(by_time(case["view"][1]), want.astype(F))


@pytest.mark.parametrize("i", range(len(MEAN_BLOCKS)))
def test_mean_views_average_the_winsorised_window(case, i):
    kb = MEAN_BLOCKS[i]
    got = by_time(case["view"][2 + i])
    wins, r = case["wins"], case["r"]
    for s in range(N):
        for t in range(NB * B):
            window = wins[s, TB * B + t - kb * B + 1: TB * B + t + 1]
            present = window[~np.isnan(window)]
            if np.isnan(r[s, t]) or present.size < (kb * B + 1) // 2:
                assert np.isnan(got[s, t]), (s, t)
            else:
                assert got[s, t] == pytest.approx(present.mean(dtype=np.float64), rel=1e-5, abs=1e-5), (s, t)


def test_block_extremes_of_every_view(case):
    view, bmax = case["view"][..., :J], case["bmax"]
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):  # all-missing blocks
        hi, lo = np.nanmax(view, 1), np.nanmin(view, 1)
    np.testing.assert_array_equal(bmax[0], np.where(np.isnan(hi), -np.inf, hi))
    np.testing.assert_array_equal(bmax[1], np.where(np.isnan(lo), -np.inf, -lo))
    assert np.isneginf(bmax[0][:, 1, 2]).all()  # the missing block


def test_state_for_the_next_call(case):
    np.testing.assert_array_equal(case["res_tail"], case["r"][:, J * B - 2: J * B])
    want = case["wins"][:, J * B: (J + TB) * B].reshape(N, TB, B).transpose(0, 2, 1)
    np.testing.assert_array_equal(case["win_tail"], want)


def test_scores_reason_and_severity(case):
    rng = np.random.default_rng(3)
    view = case["view"]
    inv_up = rng.uniform(0.0, 1.5, view.shape[:1] + (N, NB)).astype(F)
    neg_inv_lo = -rng.uniform(0.0, 1.5, inv_up.shape).astype(F)
    inv_up[:, 0, :2] = neg_inv_lo[:, 0, :2] = 0.0  # no band yet
    thresholds = np.asarray((1.0, 1.5, 3.0), F)
    score = np.empty((N, NB * B), F)
    reason = np.full(score.shape, -1, np.int8)
    severity = np.full(score.shape, -1, np.int8)
    found = np.empty(score.size, np.int64)
    k = kernels.scores(tuple(view), tuple(inv_up), tuple(neg_inv_lo), thresholds, score, reason, severity, found)
    per_view = np.maximum(view * inv_up[:, None], view * neg_inv_lo[:, None])  # (nv, B, N, NB), NaN when missing
    per_view = np.stack([by_time(v) for v in per_view])
    with np.errstate(invalid="ignore"):
        want = np.fmax(np.nanmax(np.where(np.isnan(per_view), -np.inf, per_view), 0), 0.0)
    np.testing.assert_array_equal(score, want)
    assert (score[0, : 2 * B] == 0).all()
    out = score >= 1.0
    assert out.any() and not out.all()
    np.testing.assert_array_equal(found[:k], np.flatnonzero(out))
    np.testing.assert_array_equal(reason[out], np.argmax(np.nan_to_num(per_view, nan=-1.0), 0)[out])
    assert (reason[~out] == 0).all()
    np.testing.assert_array_equal(severity, np.searchsorted(thresholds, score, "right"))


@pytest.fixture(scope="module")
def level_case(case):
    rng = np.random.default_rng(11)
    tail = rng.normal(10.0, 2.0, (N, B))
    tail[rng.random(tail.shape) < 0.3] = np.nan
    tail[4] = np.nan  # no earlier block
    XT = case["XT"]
    out = {"level": np.empty((B, N, NB)), "ext": np.empty((2, 1, N, J)), "tail_out": np.empty((N, B))}
    kernels.levels(XT, J, tail, out["level"], out["ext"], out["tail_out"])
    x = np.concatenate([tail, XT.transpose(1, 2, 0).reshape(N, NB * B)], 1)  # time order, the tail first
    return {"x": x, "tail": tail, **out}


def test_levels_are_the_mean_of_the_last_hour(case, level_case):
    got, x = by_time(level_case["level"]), level_case["x"]
    for s in range(N):
        for t in range(NB * B):
            window = x[s, t + 1: t + B + 1]  # the B points up to and including point t (x starts B points earlier)
            present = window[~np.isnan(window)]
            if np.isnan(x[s, t + B]) or present.size < (B + 1) // 2:
                assert np.isnan(got[s, t]), (s, t)
            else:
                assert got[s, t] == pytest.approx(present.mean(), rel=1e-12), (s, t)


def test_level_block_extremes_and_state(case, level_case):
    level, ext = level_case["level"][..., :J], level_case["ext"][:, 0]
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):  # all-missing blocks
        hi, lo = np.nanmax(level, 0), np.nanmin(level, 0)
    np.testing.assert_array_equal(ext[0], np.where(np.isnan(hi), -np.inf, hi))
    np.testing.assert_array_equal(ext[1], np.where(np.isnan(lo), -np.inf, -lo))
    np.testing.assert_array_equal(level_case["tail_out"], case["XT"][:, :, J - 1].T)
