#!/usr/bin/env python3
"""numpy/OpenBLAS sgemm peer for `diffactor bench gemm`: times float32 A(m,k) @ B(k,n) and prints
JSON {"numpy", "blas", "results": [{"m","n","k","gflops"}]} on stdout. It only measures; it does
not compare (src/bench/gemm.ts does).

Usage: numpy_gemm_peer.py --shapes 2048x2048x2048,4096x576x192 [--min-time 0.3] [--reps 3]
Shapes are m x n x k. GFLOP/s is 2mnk / (best time of `reps` runs, each averaging calls over at
least `min-time` seconds). Run it with OPENBLAS_CORETYPE unset for OpenBLAS's best kernel here.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def blas_info():
    try:
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            if p.get("user_api") == "blas":
                return {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
    except Exception as e:  # threadpoolctl missing: say so rather than guess
        return {"error": f"threadpoolctl unavailable: {e}"}
    return {}


def time_gemm(m, n, k, min_time, reps):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=c)  # warm-up: threads, pages, caches
    best = float("inf")
    for _ in range(reps):
        calls, t0 = 0, time.perf_counter()
        while True:
            np.matmul(a, b, out=c)
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        best = min(best, dt / calls)
    return 2.0 * m * n * k / best / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    results = []
    for s in args.shapes.split(","):
        m, n, k = (int(v) for v in s.lower().split("x"))
        results.append({"m": m, "n": n, "k": k, "gflops": time_gemm(m, n, k, args.min_time, args.reps)})
    out = {
        "numpy": np.__version__,
        "blas": blas_info(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "results": results,
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
