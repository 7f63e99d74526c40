"""The PyTorch 1.13 CPU SiT that `diffactor bench train-step` races against (its peer,
scripts/torch_train_step_peer.py): the same model as test/fixtures/sit_reference.py — same
parameters and state_dict keys, same math (checked by `torch_train_step_peer.py --check`: output,
loss and every gradient against the reference) — written for speed on CPU instead of for
readability:
- the patch embedding as one Linear over (C, p, p) patches (the Conv2d with stride = kernel = p is
  that product; the conv weight is used through a view, the state_dict stays the official one);
- attention as baddbmm(alpha = scale) -> softmax -> bmm on (B*H, N, D) (torch 1.13 has no
  F.scaled_dot_product_attention; this was the fastest composite measured, see
  docs/performance.md), q, k, v taken from the fused qkv Linear by one permute;
- modulate and the gated residuals as addcmul (one kernel each instead of two or three);
- unpatchify as permute + reshape.
Official layout: facebookresearch/DiT models.py, sihyun-yu/REPA models/sit.py (arXiv 2212.09748,
2401.08740, 2410.06940).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from sit_reference import SiT  # noqa: F401  (the reference: same modules, parameters, init)


def modulate(x, shift, scale):
    # x * (1 + scale) + shift, per sample over tokens: addcmul(shift, x, 1 + scale)
    return torch.addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1))


def attention(attn_mod, x):
    B, N, C = x.shape
    H = attn_mod.num_heads
    D = C // H
    qkv = attn_mod.qkv(x).view(B, N, 3, H, D).permute(2, 0, 3, 1, 4).reshape(3, B * H, N, D)
    q, k, v = qkv[0], qkv[1], qkv[2]
    s = torch.baddbmm(torch.empty(B * H, N, N), q, k.transpose(1, 2), beta=0.0, alpha=attn_mod.scale)
    o = torch.bmm(s.softmax(dim=-1), v)  # (B*H, N, D)
    return attn_mod.proj(o.view(B, H, N, D).transpose(1, 2).reshape(B, N, C))


def block_forward(blk, x, c):
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = blk.adaLN_modulation(c).chunk(6, dim=-1)
    h = attention(blk.attn, modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), shift_msa, scale_msa))
    x = torch.addcmul(x, gate_msa.unsqueeze(1), h)
    m = blk.mlp
    h = m.fc2(F.gelu(m.fc1(modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), shift_mlp, scale_mlp)), approximate="tanh"))
    return torch.addcmul(x, gate_mlp.unsqueeze(1), h)


def patch_embed(model, x):
    B, C, Hh, Ww = x.shape
    p = model.patch_size
    h, w = Hh // p, Ww // p
    proj = model.x_embedder.proj
    if p == 1:
        patches = x.reshape(B, C, h * w).transpose(1, 2)  # (B, T, C)
    else:
        patches = x.reshape(B, C, h, p, w, p).permute(0, 2, 4, 1, 3, 5).reshape(B, h * w, C * p * p)
    return F.linear(patches, proj.weight.view(proj.weight.shape[0], -1), proj.bias)


def forward(model, x, t, y):
    """model: a sit_reference.SiT; the same output as model(x, t, y)[0]."""
    x = patch_embed(model, x) + model.pos_embed
    c = model.t_embedder(t * model.cfg["timeScale"]) + model.y_embedder(y, model.training)
    for blk in model.blocks:
        x = block_forward(blk, x, c)
    fl = model.final_layer
    shift, scale = fl.adaLN_modulation(c).chunk(2, dim=-1)
    x = fl.linear(modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), shift, scale))
    B, T, _ = x.shape
    co, p = model.out_channels, model.patch_size
    h = int(math.isqrt(T))
    return x.view(B, h, h, p, p, co).permute(0, 5, 1, 3, 2, 4).reshape(B, co, h * p, h * p)
