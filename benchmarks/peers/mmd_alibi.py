"""Time alibi-detect's MMDDrift (PyTorch backend) on 2k vs 2k x 32 float32 Gaussian data.

Run with the peer venv made by ``setup.sh`` (alibi-detect needs numpy<2)::

    benchmarks/peers/.venv-alibi/bin/python benchmarks/peers/mmd_alibi.py [--runs 3]

Prints one JSON line: the median wall time in seconds of fit (the detector's construction, which
computes the reference kernel and its median-heuristic width) plus one ``predict`` with
``n_permutations=100`` and ``p_val=0.05``, over ``--runs`` runs after one warm-up run, with the
versions used. The data: reference N(0, 1) from ``default_rng(0)``, current N(0.1, 1) from
``default_rng(1)``, both float32; prodwrap's side of the comparison times ``MMD(seed=0)``'s
``fit`` + ``test`` on the same arrays.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

N_REFERENCE = 2000
N_CURRENT = 2000
N_FEATURES = 32
N_PERMUTATIONS = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is printed")
    args = parser.parse_args()

    import numpy as np
    import torch
    from alibi_detect import __version__ as alibi_version
    from alibi_detect.cd import MMDDrift

    reference = np.random.default_rng(0).standard_normal((N_REFERENCE, N_FEATURES)).astype(np.float32)
    current = (np.random.default_rng(1).standard_normal((N_CURRENT, N_FEATURES)) + 0.1).astype(np.float32)

    def run() -> tuple[float, dict[str, float]]:
        start = time.perf_counter()
        detector = MMDDrift(reference, backend="pytorch", p_val=0.05, n_permutations=N_PERMUTATIONS, device="cpu")
        data = detector.predict(current)["data"]
        return time.perf_counter() - start, data

    run()  # warm-up: torch's first-call initialisation is not part of the comparison
    times, data = [], {}
    for _ in range(args.runs):
        seconds, data = run()
        times.append(seconds)
    print(
        json.dumps(
            {
                "peer": "alibi-detect MMDDrift",
                "backend": "pytorch",
                "case": f"{N_REFERENCE} vs {N_CURRENT} x {N_FEATURES} float32, {N_PERMUTATIONS} permutations",
                "median_seconds": statistics.median(times),
                "times": times,
                "runs": args.runs,
                "distance": float(data["distance"]),
                "p_val": float(data["p_val"]),
                "is_drift": int(data["is_drift"]),
                "alibi_detect": alibi_version,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "torch_threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
