#!/usr/bin/env python3
"""PyTorch attention peer for `diffactor bench attention`: times softmax(q k^T * scale) v on CPU in
float32, forward (autograd on, as in training) and backward (dq, dk, dv from a fixed dO), and
prints JSON {"torch", "threads", "results": [{"batch","heads","tokens","headDim","fwd_ms","bwd_ms"}]}
on stdout. It only measures; src/bench/attention.ts compares.

The attention is the explicit composite (two matmuls and a softmax): the installed torch may be
older than 2.0 and have no F.scaled_dot_product_attention; when it has one, --sdpa uses it.

Usage: torch_attention_peer.py --shapes 64x3x64x64,16x6x256x64 [--threads 2] [--min-time 0.3] [--reps 3]
Shapes are batch x heads x tokens x headDim. Each time is the best of `reps` runs, each averaging
calls over at least `min-time` seconds.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def attention(q, k, v, scale, sdpa):
    if sdpa:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale, dim=-1)
    return torch.matmul(p, v)


def best_ms(fn, min_time, reps):
    """fn() returns the seconds it spent in the timed part."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(reps):
        spent, calls = 0.0, 0
        while spent < min_time:
            spent += fn()
            calls += 1
        best = min(best, spent / calls)
    return best * 1e3


def time_shape(b, h, n, d, min_time, reps, sdpa):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(b, h, n, d, generator=g).requires_grad_() for _ in range(3))
    dout = torch.randn(b, h, n, d, generator=g)
    scale = d ** -0.5

    def fwd():
        t0 = time.perf_counter()
        attention(q, k, v, scale, sdpa)
        return time.perf_counter() - t0

    def bwd():
        out = attention(q, k, v, scale, sdpa)
        q.grad = k.grad = v.grad = None
        t0 = time.perf_counter()
        out.backward(dout)
        return time.perf_counter() - t0

    return best_ms(fwd, min_time, reps), best_ms(bwd, min_time, reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sdpa", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sdpa = args.sdpa and hasattr(F, "scaled_dot_product_attention")
    results = []
    for s in args.shapes.split(","):
        b, h, n, d = (int(x) for x in s.split("x"))
        fwd_ms, bwd_ms = time_shape(b, h, n, d, args.min_time, args.reps, sdpa)
        results.append({"batch": b, "heads": h, "tokens": n, "headDim": d, "fwd_ms": fwd_ms, "bwd_ms": bwd_ms})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "impl": "sdpa" if sdpa else "composite", "results": results}))


if __name__ == "__main__":
    main()
