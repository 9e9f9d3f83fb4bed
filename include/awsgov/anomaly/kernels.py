"""The detector's per-point loops, compiled with numba (``anomaly.py`` holds the model and the hour-level work).

Each point goes through a dozen steps (residual, median of 3, winsorised running sums, window means, block extremes,
scores per view). As whole-array numpy operations that was some forty passes over every group's arrays; compiled
loops do each step while the point's values are in registers. The arithmetic is that numpy version's, operation for
operation and in float32 where it was float32: its results are reproduced to the last bit (checked on the NAB corpus
and on synthetic series when the loops replaced it; tests/awsgov/anomaly/test_kernels.py checks them against plain
per-point Python). One exception since: the mean views add the whole blocks inside a window first (once per block),
then the partial ones, so windows of three or more blocks may differ from it in the last bit of a float32.

Written for the compiler: inner loops run over contiguous 1-D rows, or accumulate in a local variable, and the number
of views is a tuple length known when compiling. Each of these made a loop 5-20 times faster than 4-D indexing did.

Arrays follow ``anomaly.py``'s layout: values (B, rows, hours), B points per hour block. Functions release the GIL, so
the detector's thread pool runs groups of series on every core.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_F = np.float32
_NAN = np.float32(np.nan)
_NEG_INF = np.float32(-np.inf)
_ZERO = np.float32(0.0)


@njit(nogil=True, cache=True, error_model="numpy")
def by_position_in_hour(X, XT):  # pragma: no cover
    """XT[q, s, j] = X[s, j, q] (one pass; numpy's strided copy took two), infinite values as NaN.

    :param X: (n, nb, B) float64 values of n series, nb blocks of B points.
    :param XT: out (B, n, nb) float64.
    :returns: whether any value was infinite.
    """
    n, nb, B = X.shape
    infinite = False
    for s in range(n):
        for j in range(nb):
            for q in range(B):
                x = X[s, j, q]
                bad = np.isinf(x)
                infinite |= bad
                XT[q, s, j] = np.nan if bad else x
    return infinite


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _median3(a, b, c):  # pragma: no cover
    """The middle one of three values; NaN if any is missing."""
    lo, hi = (a, b) if a < b else (b, a)
    m = hi if hi < c else (lo if lo > c else c)
    return m if (a == a) & (b == b) & (c == c) else _NAN


@njit(nogil=True, cache=True, error_model="numpy")
def _window_means(cum, cnt, view, s, out, kb, total, seen, mid_sum, mid_cnt):  # pragma: no cover
    """view[out, :, s] = mean of the winsorised residuals over the kb blocks ending at each point: the rest of the
    block kb back, the whole blocks between and the head of the point's own block; NaN where under half the window or
    the point itself is missing. The whole blocks between are summed once per block, not once per point (with 6-hour
    windows that loop was most of the detector's time); every sum is anchored on the fixed blocks, so a chunked run
    adds the same numbers in the same order."""
    _, B, _, nb = view.shape
    tb = cum.shape[1] - nb
    half = (kb * B + 1) // 2
    last_sum, last_cnt = cum[B - 1], cnt[B - 1]  # whole-block totals
    for j in range(nb):
        mid_sum[j] = _ZERO
        mid_cnt[j] = 0
    for h in range(1, kb):
        sum_mid, cnt_mid = last_sum[tb - h: tb - h + nb], last_cnt[tb - h: tb - h + nb]
        for j in range(nb):
            mid_sum[j] += sum_mid[j]
            mid_cnt[j] += cnt_mid[j]
    for q in range(B):
        # Rows as 1-D contiguous slices: the loops below then compile to vector instructions.
        sum_from, cnt_from = cum[q, tb - kb: tb - kb + nb], cnt[q, tb - kb: tb - kb + nb]
        sum_to, cnt_to = cum[q, tb:], cnt[q, tb:]
        sum_back, cnt_back = last_sum[tb - kb: tb - kb + nb], last_cnt[tb - kb: tb - kb + nb]
        for j in range(nb):
            total[j] = ((sum_back[j] - sum_from[j]) + sum_to[j]) + mid_sum[j]
            seen[j] = cnt_back[j] - cnt_from[j] + cnt_to[j] + mid_cnt[j]
        point, dest = view[0, q, s], view[out, q, s]
        for j in range(nb):
            mean = total[j] / _F(seen[j])  # error_model numpy: 0 / 0 is NaN, not an exception
            dest[j] = mean if (seen[j] >= half) & (point[j] == point[j]) else _NAN


@njit(nogil=True, cache=True, error_model="numpy")
def views(XT, expected, lim, tail, pre, mean_blocks, J, view, bmax, win_tail, res_tail):  # pragma: no cover
    """Residual views and their per-block extremes, and the state the next call continues from.

    :param XT: (B, n, nb) float64 values, NaN where missing.
    :param expected: (n, nb) float64 expected value per block.
    :param lim: (n, nb) float32 winsorising limit (3 spreads) per block.
    :param tail: (n, 2) float32 last two residuals of earlier calls.
    :param pre: (B, n, tb + nb) float32 scratch; ``pre[:, :, :tb]`` holds earlier winsorised residuals on entry.
    :param mean_blocks: int64 window lengths, in blocks, of the mean views.
    :param J: complete blocks.
    :param view: out (nv, B, n, nb) float32: point residual, median of 3, then one mean per ``mean_blocks``.
    :param bmax: out (2, nv, n, J) float32: per complete block, each view's max and -min (-inf when all missing).
    :param win_tail: out (n, B, tb) float32: winsorised residuals of the last tb complete blocks.
    :param res_tail: out (n, 2) float32: residuals of the last two points of the complete blocks.
    """
    B, n, nb = XT.shape
    tb = pre.shape[2] - nb
    nv = view.shape[0]
    # Inner loops run over 1-D contiguous rows (slices): the compiler vectorises those, not 4-D indexing.
    cum = np.empty((B, tb + nb), dtype=_F)  # running sums within each block (missing counted as 0)
    cnt = np.empty((B, tb + nb), dtype=np.int32)  # running counts of present values (int32 converts in vectors)
    total = np.empty(nb, dtype=_F)  # one row of window sums and counts
    seen = np.empty(nb, dtype=np.int32)
    mid_sum = np.empty(nb, dtype=_F)  # per block, the sums and counts of the whole blocks inside a window
    mid_cnt = np.empty(nb, dtype=np.int32)
    before = np.empty((2, nb), dtype=_F)  # residuals one and two points before the start of each block
    for s in range(n):
        exp_row, lim_row = expected[s], lim[s]
        # Point residual (float64 difference, rounded once) and its winsorised copy.
        for q in range(B):
            x_row, r_row, w_row = XT[q, s], view[0, q, s], pre[q, s, tb:]
            for j in range(nb):
                x = _F(x_row[j] - exp_row[j])
                r_row[j] = x
                w = max(min(x, lim_row[j]), -lim_row[j])
                w_row[j] = w if x == x else _NAN
        # Median of the residual and the two before it (missing if any of the three is).
        before[0, 0], before[1, 0] = tail[s, 1], tail[s, 0]
        for j in range(1, nb):
            before[0, j] = view[0, B - 1, s, j - 1]
            if B > 1:
                before[1, j] = view[0, B - 2, s, j - 1]
            else:
                before[1, j] = view[0, 0, s, j - 2] if j > 1 else tail[s, 1]
        for q in range(B):
            a_row = view[0, q - 2, s] if q >= 2 else (before[0] if q == 1 else before[1])
            b_row = view[0, q - 1, s] if q >= 1 else before[0]
            c_row, m_row = view[0, q, s], view[1, q, s]
            for j in range(nb):
                m_row[j] = _median3(a_row[j], b_row[j], c_row[j])
        for i in range(2):
            t = J * B - 2 + i
            res_tail[s, i] = view[0, t % B, s, t // B] if t >= 0 else tail[s, 2 + t]
        for q in range(B):
            win_tail[s, q] = pre[q, s, J: J + tb]
        # Running sums and counts within each block (the order numpy's cumulative sums took).
        for q in range(B):
            w_row, sum_row, cnt_row = pre[q, s], cum[q], cnt[q]
            for col in range(tb + nb):
                v = w_row[col]
                ok = v == v
                sum_row[col] = v if ok else _ZERO
                cnt_row[col] = np.int32(ok)
            if q:
                sum_prev, cnt_prev = cum[q - 1], cnt[q - 1]
                for col in range(tb + nb):
                    sum_row[col] += sum_prev[col]
                    cnt_row[col] += cnt_prev[col]
        for i in range(mean_blocks.shape[0]):
            _window_means(cum, cnt, view, s, 2 + i, mean_blocks[i], total, seen, mid_sum, mid_cnt)
        # Each complete block's largest excursion above and below the expected value, per view. (Accumulated in
        # registers over the block: with a store per point, the loop ran 20 times slower.)
        for i in range(nv):
            for j in range(J):
                hi, lo_neg = _NEG_INF, _NEG_INF
                for q in range(B):
                    v = view[i, q, s, j]
                    hi = v if v > hi else hi  # a missing value (NaN) never wins
                    lo_neg = -v if -v > lo_neg else lo_neg
                bmax[0, i, s, j] = hi
                bmax[1, i, s, j] = lo_neg


@njit(nogil=True, cache=True, error_model="numpy")
def levels(XT, J, tail, level, ext, tail_out):  # pragma: no cover
    """Mean of the values over the last hour (the B points up to and including each point), and its block extremes.

    The window is the head of the point's own block and the rest of the previous block: both sums are anchored on
    the fixed blocks (never on where a call starts), so a chunked run adds the same numbers in the same order.

    :param XT: (B, n, nb) float64 values, NaN where missing.
    :param J: complete blocks.
    :param tail: (n, B) float64 values of the last complete block of earlier calls (NaN at first).
    :param level: out (B, n, nb) float64: the hour's mean at each point; NaN where the point is missing or under half
        of the hour is present.
    :param ext: out (2, 1, n, J) float64: per complete block, the largest mean and minus the smallest (-inf if none).
    :param tail_out: out (n, B) float64: values of the last complete block (``tail`` when there is none).
    """
    B, n, nb = XT.shape
    half = (B + 1) // 2
    total = np.empty(nb)  # per block: sum and count of its present values
    count = np.empty(nb, dtype=np.int32)
    head = np.empty(nb)  # per block: running sum and count of its present values up to the current position
    head_cnt = np.empty(nb, dtype=np.int32)
    gone = np.empty(nb)  # per block: running sum and count of the previous block up to the current position
    gone_cnt = np.empty(nb, dtype=np.int32)
    prev_total = np.empty(nb)  # per block: sum and count of the previous block
    prev_count = np.empty(nb, dtype=np.int32)
    hi = np.empty(nb)
    lo_neg = np.empty(nb)
    for s in range(n):
        tail_total, tail_count = 0.0, 0
        for q in range(B):
            v = tail[s, q]
            if v == v:
                tail_total += v
                tail_count += 1
        for j in range(nb):
            total[j] = 0.0
            count[j] = 0
            head[j] = 0.0
            head_cnt[j] = 0
            gone[j] = 0.0
            gone_cnt[j] = 0
            hi[j] = -np.inf
            lo_neg[j] = -np.inf
        for q in range(B):
            row = XT[q, s]
            for j in range(nb):
                v = row[j]
                ok = v == v
                total[j] += v if ok else 0.0
                count[j] += np.int32(ok)
        for j in range(nb - 1, 0, -1):  # block j's window reaches into block j - 1
            prev_total[j] = total[j - 1]
            prev_count[j] = count[j - 1]
        prev_total[0], prev_count[0] = tail_total, tail_count
        for q in range(B):
            row, out = XT[q, s], level[q, s]
            pv = tail[s, q]
            # The previous block's value at this position leaves the window; the loop reads rows, so it vectorises.
            gone[0] += pv if pv == pv else 0.0
            gone_cnt[0] += np.int32(pv == pv)
            for j in range(1, nb):
                pv = row[j - 1]
                pok = pv == pv
                gone[j] += pv if pok else 0.0
                gone_cnt[j] += np.int32(pok)
            for j in range(nb):
                v = row[j]
                ok = v == v
                head[j] += v if ok else 0.0
                head_cnt[j] += np.int32(ok)
                c = head_cnt[j] + (prev_count[j] - gone_cnt[j])
                m = (head[j] + (prev_total[j] - gone[j])) / c  # error_model numpy: 0 / 0 is NaN
                m = m if ok & (c >= half) else np.nan
                out[j] = m
                hi[j] = m if m > hi[j] else hi[j]  # a missing mean (NaN) never wins
                lo_neg[j] = -m if -m > lo_neg[j] else lo_neg[j]
        for j in range(J):
            ext[0, 0, s, j] = hi[j]
            ext[1, 0, s, j] = lo_neg[j]
        for q in range(B):
            tail_out[s, q] = XT[q, s, J - 1] if J else tail[s, q]


@njit(nogil=True, cache=True, error_model="numpy")
def _view_score(views, inv_up, neg_inv_lo, i, q, s, j):  # pragma: no cover
    """Score of view i at one point: how far out it is along the side of the band it is on (NaN when missing)."""
    v = views[i][q, s, j]
    up = v * inv_up[i][s, j]
    down = v * neg_inv_lo[i][s, j]
    return up if up > down else down


@njit(nogil=True, cache=True, error_model="numpy")
def scores(views, inv_up, neg_inv_lo, thresholds, score, reason, severity, out_of_band):  # pragma: no cover
    """Score of every point (largest view / band, 0 when no view is known) and, out of band, reason and severity.

    Views and bands come as tuples of arrays, one per view: their number is then known when compiling and the loop
    over them unrolls (with a run-time count, the loops ran ten times slower).

    :param views: nv (B, n, nb) float32 views (:func:`views`).
    :param inv_up: nv (n, nb) float32 1 / upper band per block (0: no band yet).
    :param neg_inv_lo: nv (n, nb) float32 -1 / lower band per block.
    :param thresholds: the three float32 scores at which severities start (ascending).
    :param score: out (n, nb * B) float32.
    :param reason: out (n, nb * B) int8: the view furthest out where the score is >= 1, else 0.
    :param severity: out (n, nb * B) int8: how many thresholds the score reaches.
    :param out_of_band: out, at least n * nb * B int64: flat indices into ``score`` of the points scoring at least
        ``thresholds[0]``, in order.
    :returns: how many points are out of band (the first entries of ``out_of_band``).
    """
    B, n, nb = views[0].shape
    found = 0
    t0, t1, t2 = thresholds[0], thresholds[1], thresholds[2]
    top = np.empty(nb, dtype=_F)
    for s in range(n):
        # The largest view score over the views in order; a missing view (NaN) never wins a comparison and the score
        # is never below 0. Accumulated along contiguous rows of the hours (the compiler vectorises that loop), then
        # written to the points' columns.
        s_row, sev_row, why_row = score[s], severity[s], reason[s]
        for q in range(B):
            top[:] = _ZERO
            for i in range(len(views)):
                v_row, up_row, lo_row = views[i][q, s], inv_up[i][s], neg_inv_lo[i][s]
                for j in range(nb):
                    v = v_row[j]
                    up = v * up_row[j]
                    down = v * lo_row[j]
                    x = up if up > down else down
                    top[j] = x if x > top[j] else top[j]
            for j in range(nb):
                s_row[j * B + q] = top[j]
        for col in range(nb * B):
            x = s_row[col]
            sev_row[col] = (x >= t0) + (x >= t1) + (x >= t2)
        why_row[:] = 0
        for col in range(nb * B):
            if s_row[col] >= t0:  # out of band (rare): the first view at the maximum names the reason
                out_of_band[found] = s * nb * B + col
                found += 1
                j, q = divmod(col, B)
                for i in range(len(views)):
                    if _view_score(views, inv_up, neg_inv_lo, i, q, s, j) == s_row[col]:
                        why_row[col] = i
                        break
    return found
