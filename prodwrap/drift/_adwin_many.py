"""``ADWIN.update_many``: the decisions of ``update`` over a whole array, a chunk at a time.

Between two detections ADWIN's window is a pure function of how many values it holds: the
``update`` after a detection starts from an empty window, and buckets merge the same way
whatever the values are. So the bucket edges at every check of a chunk are known in
advance, and with prefix sums of the chunk every cut of every check is one cell of a
matrix. One pass over the matrix applies the rejection bound ``dm^2 n0 n1 > bound`` (see
``_adwin._rejection_bound``); the few cells left get ``update``'s exact test. The first
check with a significant cut is the detection: the state is rebuilt as ``update`` would
have left it (buckets, totals, then the oldest buckets dropped while a cut is significant)
and the next chunk starts after it.

The arithmetic differs from ``update``'s running sums in rounding: the window's variance
and means come from prefix sums of the values minus the window's mean instead of one
Welford step per value. On streams whose values are not far from zero relative to their
spread the change points are identical (every seeded and random stream in the tests).
Where the offset dwarfs the spread (a constant 1e10/7, or 1e12 plus N(0, 1)), ``update``'s
running sums (river's arithmetic) lose the spread to rounding and raise false alarms that
``update_many``, working on centred sums, does not; centre such a stream before feeding it.

Chunks start at 256 values after a detection and double up to 6144 while none is found;
a chunk's matrices are kept to 16384 cells (128 KiB, which malloc serves from its heap
without mapping fresh pages), so a stream with rare changes costs a few numpy passes per
value. After two detections less than 1024 values apart the next 512 values go through
``update`` one at a time, which is cheaper than restarting chunks: a stream that keeps
changing costs at most about 1.5 times what ``update`` does (measured with a change every
40 to 3000 values).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prodwrap.drift._adwin import ADWIN, _rejection_bound, _significant
from prodwrap.drift._base import FloatArray, IntArray, require_finite

_FIRST_CHUNK = 256
_MAX_CHUNK = 6144
# After two detections fewer than _SLOW_GAP values apart, the next _SLOW_STRETCH values go
# through update(): restarting chunks costs about as much as 500 updates.
_SLOW_GAP = 1024
_SLOW_STRETCH = 512
_MAX_CELLS = 16_384  # cuts x checks per chunk: matrices of 128 KiB, which malloc serves from its heap
# Up to this many values, prefix sums are kept in one array indexed by position (only the
# bucket edges and the new values are written); beyond it, old edges are searched for.
_DENSE_LIMIT = 1 << 17

Buckets = tuple[FloatArray, FloatArray, FloatArray]  # sizes, totals, squared deviations; oldest first


def update_many(adwin: ADWIN, values: Any) -> IntArray:
    """Feed ``values`` in order; the indices at which ``update`` would have returned True."""
    stream = _as_stream(values)
    found: list[int] = []
    pos, chunk = 0, _FIRST_CHUNK
    last_hit, gap = -_SLOW_GAP, _SLOW_GAP  # the latest detection, and how far the one before it was
    adwin._flush()  # values buffered by update() join the buckets first
    buckets = _buckets(adwin)
    while pos < stream.size:
        if gap < _SLOW_GAP:  # changes this close together: one value at a time is cheaper
            stop = min(pos + _SLOW_STRETCH, stream.size)
            gap = _SLOW_GAP  # unless a change comes again soon
            for i, x in enumerate(stream[pos:stop].tolist(), start=pos):
                if adwin.update(x):
                    found.append(i)
                    gap, last_hit = i - last_hit, i
            adwin._flush()
            buckets = _buckets(adwin)
            pos, chunk = stop, _FIRST_CHUNK
            continue
        if adwin._detected:
            adwin._clear()  # the update after a detection starts from an empty window
            buckets = _buckets(adwin)
        part = stream[pos : pos + _chunk_limit(adwin, chunk)]
        hit = _first_detection(adwin, buckets, part)
        taken = hit or part.size
        due = adwin._due - taken  # values left until the next check, modulo the clock
        buckets = _grow(adwin, buckets, part[:taken])
        pos += taken
        if hit:
            _store(adwin, buckets)
            adwin._due = adwin.clock
            adwin._scan()  # drops the oldest buckets while a cut is significant, as update() does
            adwin._detected = True
            adwin._n_detections += 1
            found.append(pos - 1)
            gap, last_hit = pos - 1 - last_hit, pos - 1
            chunk = _FIRST_CHUNK
        else:
            adwin._due = due % adwin.clock or adwin.clock
            chunk = min(2 * chunk, _MAX_CHUNK)
    if not adwin._detected:
        _store(adwin, buckets)
    return np.asarray(found, dtype=np.int64)


def _as_stream(values: Any) -> FloatArray:
    """``values`` as a 1-D float64 array, or a ValueError saying what is wrong (as update's)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ADWIN: update_many() takes a sequence of real numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"ADWIN: update_many() takes a one-dimensional sequence, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":  # strings, objects, complex: update() refuses them too
        raise ValueError(f"ADWIN: update_many() takes real numbers, got {arr.dtype} values")
    return require_finite(arr.astype(np.float64, copy=False), detector="ADWIN", what="update_many() values")


def _chunk_limit(adwin: ADWIN, chunk: int) -> int:
    """``chunk``, or fewer values if a chunk's cut matrix would exceed ``_MAX_CELLS``."""
    slots = adwin.max_buckets * (int(adwin._width + chunk).bit_length() + 1)
    return min(chunk, max(1, _MAX_CELLS // slots) * adwin.clock)


def row_counts(widths: IntArray, max_buckets: int) -> IntArray:
    """Buckets in each row (columns) of the window after ``widths`` values since it was empty.

    A row that has received ``x`` buckets holds ``x`` while ``x <= max_buckets``; each time it
    would hold one more, its two oldest merge into one bucket of the next row. So row
    ``r + 1`` receives ``max(floor((x_r - max_buckets + 1) / 2), 0)`` buckets, and since
    nested floors of halvings compose, row ``r`` receives
    ``max(floor((w - (max_buckets - 1) * (2**r - 1)) / 2**r), 0)``.
    """
    n_rows = len(_row_counts_of(int(widths.max()), max_buckets))  # the widest window has the most rows
    rows = np.arange(n_rows + 1, dtype=np.int64)
    received = widths[:, None] - (max_buckets - 1) * (np.left_shift(1, rows) - 1)
    received >>= rows
    np.maximum(received, 0, out=received)
    held: IntArray = received[:, :-1]
    held -= 2 * received[:, 1:]
    return held


def _row_counts_of(width: int, max_buckets: int) -> list[int]:
    """``row_counts`` of one width, in plain integers."""
    rows = []
    received = width
    while True:
        merges = max((received - max_buckets + 1) // 2, 0)
        rows.append(received - 2 * merges)
        received = merges
        if not received:
            return rows


def _buckets(adwin: ADWIN) -> Buckets:
    """The window's buckets as arrays, oldest first."""
    sizes: list[float] = []
    totals: list[float] = []
    spreads: list[float] = []
    for r in range(len(adwin._row_totals) - 1, -1, -1):
        row = adwin._row_totals[r]
        sizes += [adwin._sizes[r]] * len(row)
        totals += row
        spreads += adwin._row_variances[r] if r else [0.0] * len(row)
    return np.array(sizes), np.array(totals), np.array(spreads)


def _store(adwin: ADWIN, buckets: Buckets) -> None:
    """Write ``buckets`` (canonical for the window's width) into the detector's rows."""
    _, totals, spreads = buckets
    counts = _row_counts_of(int(adwin._width), adwin.max_buckets)
    adwin._row_totals = []
    adwin._row_variances = []
    stop = totals.size
    for r, count in enumerate(counts):  # row r's buckets end where those of the rows below begin
        start = stop - count
        adwin._row_totals.append(totals[start:stop].tolist())
        adwin._row_variances.append(spreads[start:stop].tolist() if r else [])
        stop = start
    adwin._sizes = [float(2**r) for r in range(len(counts))]
    adwin._buffer.clear()


def _first_detection(adwin: ADWIN, buckets: Buckets, new: FloatArray) -> int:
    """1-based position in ``new`` of the first update that detects a change, or 0."""
    # Values near the float limits overflow to inf and NaN here as update()'s do, silently.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _scan_chunk(adwin, buckets, new)


def _scan_chunk(adwin: ADWIN, buckets: Buckets, new: FloatArray) -> int:
    clock, min_len = adwin.clock, adwin.min_window_length
    old_width = int(adwin._width)
    checks = np.arange(adwin._due, new.size + 1, clock, dtype=np.int64)  # values taken at each check
    widths = old_width + checks
    due = (widths > adwin.grace_period) & (widths >= 2 * min_len)
    checks, widths = checks[due], widths[due]
    if not checks.size:
        return 0

    # Cut positions, oldest bucket first: n0 = values in the older part. Row r is a run of
    # max_buckets slots; a slot past the row's last bucket repeats the cut before it.
    counts = row_counts(widths, adwin.max_buckets)
    n_rows, per_row = counts.shape[1], adwin.max_buckets
    weight = np.left_shift(1, np.arange(n_rows, dtype=np.int64))
    in_row = counts * weight
    above = np.cumsum(in_row[:, ::-1], axis=1)[:, ::-1] - in_row  # values in the rows above
    slot_row = np.repeat(np.arange(n_rows - 1, -1, -1), per_row)
    slot_rank = np.tile(np.arange(1, per_row + 1, dtype=np.int64), n_rows)
    n0 = np.minimum(counts[:, slot_row], slot_rank)
    n0 *= weight[slot_row]
    n0 += above[:, slot_row]

    # Sums of the values minus the window's mean (or the first new value) up to each cut:
    # every cut falls on a bucket edge of the old window or among the new values.
    sizes, totals, _ = buckets
    shift = adwin._total / old_width if old_width else float(new[0])
    moved = new - shift
    old_prefix = np.cumsum(totals - sizes * shift)
    old_sum = float(old_prefix[-1]) if old_prefix.size else 0.0
    old_edges = np.cumsum(sizes).astype(np.int64)
    if old_width <= _DENSE_LIMIT:  # indexed by position; unwritten entries are never read
        prefix = np.empty(old_width + new.size + 1)
        prefix[0] = 0.0
        prefix[old_edges] = old_prefix
        base = 0
    else:  # old edges, then the new values
        prefix = np.concatenate([[0.0], old_prefix, np.empty(new.size)])
        base = old_width - old_edges.size
    np.cumsum(moved, out=prefix[old_width + 1 - base :])
    prefix[old_width + 1 - base :] += old_sum
    window_sum = prefix[widths - base]
    if base:
        index = n0 - base
        old = n0 <= old_width
        index[old] = np.searchsorted(old_edges, n0[old]) + 1
        u0 = prefix[index]
    else:
        u0 = prefix[n0]
    moved *= moved
    squares = np.cumsum(moved)[checks - 1]
    squares += adwin._variance + (old_sum * old_sum / old_width if old_width else 0.0)
    window_var = np.maximum(squares - window_sum * window_sum / widths, 0.0) / widths
    dp = np.log(2.0 * np.log(widths) / adwin.delta)

    # |dm| > eps needs dm^2 n0 n1 > bound, and dm n0 n1 = u0 w - S n0 (S the window's sum):
    # compared as |u0 w - S n0| > sqrt(n0 n1 bound), which stays finite where squares would not.
    cut = n0.astype(np.float64)
    width = widths.astype(np.float64)[:, None]
    lead = u0 * width
    n1 = np.multiply(cut, window_sum[:, None])
    lead -= n1
    np.abs(lead, out=lead)
    np.subtract(width, cut, out=n1)
    reach = n1 * cut
    np.sqrt(reach, out=reach)
    reach *= np.sqrt(_rejection_bound(window_var, dp, width[:, 0], min_len - 1.0))[:, None]
    rows, slots = np.nonzero(lead > reach)
    keep = counts[rows, slot_row[slots]] >= slot_rank[slots]  # a bucket, not a repeat
    a, b = cut[rows, slots], n1[rows, slots]
    keep &= (a >= min_len) & (b >= min_len)
    rows, slots, a, b = rows[keep], slots[keep], a[keep], b[keep]
    u0 = u0[rows, slots]
    total = window_sum[rows]
    for k, row in enumerate(rows.tolist()):  # rows come out of nonzero in check order
        gap = u0[k] / a[k] - (total[k] - u0[k]) / b[k]
        if _significant(gap, a[k] - min_len + 1.0, b[k] - min_len + 1.0, window_var[row], dp[row]):
            return int(checks[row])
    return 0


def _grow(adwin: ADWIN, buckets: Buckets, new: FloatArray) -> Buckets:
    """The buckets of the window after ``new`` values more; sets its width, total and variance."""
    if not new.size:
        return buckets
    with np.errstate(over="ignore", invalid="ignore"):
        return _merged(adwin, buckets, new)


def _merged(adwin: ADWIN, buckets: Buckets, new: FloatArray) -> Buckets:
    old_sizes, old_totals, old_spreads = buckets
    width = int(adwin._width) + new.size
    counts = _row_counts_of(width, adwin.max_buckets)
    rows = np.repeat(np.arange(len(counts) - 1, -1, -1), counts[::-1])  # oldest first
    sizes = np.exp2(rows)
    # Each new bucket is a run of old buckets and new values: find where each run starts.
    edges = np.cumsum(sizes) - sizes
    old_edges = np.cumsum(old_sizes) - old_sizes
    old_count = old_sizes.size
    starts = np.where(
        edges < adwin._width, np.searchsorted(old_edges, edges), old_count + (edges - adwin._width).astype(np.int64)
    )
    parts = np.concatenate([old_totals, new])
    totals = np.add.reduceat(parts, starts)
    means = totals / sizes
    # squared deviations: within each part, plus each part's mean from its bucket's mean
    runs = np.diff(starts, append=parts.size)
    deviation = np.concatenate([old_totals / old_sizes, new])
    deviation -= np.repeat(means, runs)
    deviation *= deviation
    deviation[:old_count] *= old_sizes
    deviation[:old_count] += old_spreads
    spreads = np.add.reduceat(deviation, starts)

    total = float(totals.sum())
    offset = means - total / width
    adwin._width = float(width)
    adwin._total = total
    adwin._variance = float(spreads.sum() + (sizes * offset * offset).sum())
    return sizes, totals, spreads
