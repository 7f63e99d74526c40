#!/usr/bin/env python3
"""PyTorch peer for `diffactor bench train-step`: times one full SiT training step on CPU in float32
with the official-layout model of test/fixtures/sit_reference.py run through the fast forward of
scripts/torch_sit_fast.py (--model reference: the reference's own forward), the same step diffactor times
(src/bench/trainStepCore.ts): linear-interpolant flow matching on a fixed synthetic batch
(x_t = (1 - t) x + t eps, target eps - x), forward in training mode (label dropout on), per-sample
mean squared error averaged over the batch, backward, AdamW (lr 1e-4, weight decay 0, foreach),
EMA update (decay 0.9999, foreach) and gradients set to None. It only measures; the TypeScript side
compares.

It is driven step by step over stdin/stdout (one JSON object per line), so the caller can
alternate its own steps with these and both see the same load on a shared machine:
  after building the model and `--warmup` steps it prints
    {"ready": true, "torch", "threads", "blas": {library, corename, config, coretype_env, ...}}
  then for every line "step" on stdin it runs one step and prints {"seconds": s, "loss": l};
  it exits at end of input.

Usage: torch_train_step_peer.py --config '<SiTConfig JSON>' --batch 64 [--warmup 3] [--threads 2]
         [--model fast|reference] [--autocast bf16]
--autocast bf16 runs the forward and loss under torch.autocast('cpu', dtype=torch.bfloat16) (PyTorch's
CPU mixed precision: matmuls in bf16 through oneDNN, fp32 master weights, AdamW and EMA in fp32).
--check: no timing; builds both forwards on one set of weights, runs one step's forward and
backward with each and prints the largest differences (output, loss, every gradient) as JSON;
exits 1 when a relative difference exceeds 1e-4 (float32 summation order only).
The caller sets the BLAS environment (OPENBLAS_CORETYPE, OMP_NUM_THREADS, LD_LIBRARY_PATH for
Debian's OpenMP OpenBLAS); this script reports which library and kernel actually ran.
"""
import argparse
import contextlib
import ctypes
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sit_reference import SiT  # noqa: E402
import torch_sit_fast  # noqa: E402


def blas_info():
    """The OpenBLAS shared object this process mapped, its kernel (core) name and build config."""
    lib = None
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "openblas" in path and path.endswith(".so") or "openblas" in path and ".so." in path:
                lib = path
                break
    info = {"library": lib, "coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
            "l2_size_env": os.environ.get("OPENBLAS_L2_SIZE"),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    if lib:
        try:
            so = ctypes.CDLL(lib)
            for fn in ("openblas_get_corename", "openblas_get_config"):
                f = getattr(so, fn)
                f.restype = ctypes.c_char_p
                info[fn.replace("openblas_get_", "")] = f().decode()
            so.openblas_get_num_threads.restype = ctypes.c_int
            info["num_threads"] = so.openblas_get_num_threads()
        except (OSError, AttributeError) as e:
            info["error"] = str(e)
    return info


def check(cfg, batch):
    """Fast forward vs the reference on the same weights and batch: output, loss, gradients."""
    torch.manual_seed(0)
    model = SiT(cfg).train()
    with torch.no_grad():  # the zero-initialised adaLN / final layers would hide most of the math
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn_like(p))
    c, s = cfg["inChannels"], cfg["inputSize"]
    x, eps, t = torch.randn(batch, c, s, s), torch.randn(batch, c, s, s), torch.rand(batch)
    y = torch.randint(0, cfg["numClasses"], (batch,))
    res = {}
    for name, fwd in (("reference", lambda *a: model(*a)[0]), ("fast", lambda *a: torch_sit_fast.forward(model, *a))):
        torch.manual_seed(1)  # the same label dropout draw
        tt = t.view(-1, 1, 1, 1)
        xt, target = (1 - tt) * x + tt * eps, eps - x
        out = fwd(xt, t, y)
        loss = ((out - target) ** 2).mean(dim=(1, 2, 3)).mean()
        model.zero_grad(set_to_none=True)
        loss.backward()
        res[name] = (out.detach(), loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    (ro, rl, rg), (fo, fl, fg) = res["reference"], res["fast"]
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
    worst = {"out": rel(fo, ro), "loss": abs(fl - rl) / abs(rl)}
    if set(rg) != set(fg):
        raise SystemExit(f"gradient sets differ: {sorted(set(rg) ^ set(fg))}")
    worst_grad = max(((rel(fg[n], rg[n]), n) for n in rg), key=lambda v: v[0])
    worst["grad"], worst["grad_param"], worst["params_with_grad"] = worst_grad[0], worst_grad[1], len(rg)
    print(json.dumps(worst))
    return 0 if max(worst["out"], worst["loss"], worst["grad"]) <= 1e-4 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", choices=("fast", "reference"), default="fast")
    ap.add_argument("--autocast", choices=("none", "bf16"), default="none")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = json.loads(args.config)
    if args.check:
        sys.exit(check(cfg, args.batch))
    torch.manual_seed(0)
    model = SiT(cfg).train()
    ema = SiT(cfg).eval()
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    ema_params = [e for e, p in zip(ema.parameters(), model.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, foreach=True)
    b, c, s = args.batch, cfg["inChannels"], cfg["inputSize"]
    x, eps = torch.randn(b, c, s, s), torch.randn(b, c, s, s)
    t = torch.rand(b)
    y = torch.randint(0, cfg["numClasses"], (b,))

    forward = (lambda *a: torch_sit_fast.forward(model, *a)) if args.model == "fast" else (lambda *a: model(*a)[0])
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.autocast == "bf16" else contextlib.nullcontext

    def step():
        tt = t.view(-1, 1, 1, 1)
        xt, target = (1 - tt) * x + tt * eps, eps - x
        with autocast():
            out = forward(xt, t, y)
            loss = ((out.float() - target) ** 2).mean(dim=(1, 2, 3)).mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema_params, 0.9999)
            torch._foreach_add_(ema_params, params, alpha=1 - 0.9999)
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "model": args.model, "autocast": args.autocast,
                      "cpu_capability": torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else None,
                      "blas": blas_info()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            continue
        t0 = time.perf_counter()
        loss = step()
        print(json.dumps({"seconds": time.perf_counter() - t0, "loss": loss}), flush=True)


if __name__ == "__main__":
    main()
