"""Activation memory of MPFNet's CA-I3D at the ``paper`` size, measured on the CPU, and
the peak per training stage it implies.

    python benchmarks/mpfnet_memory.py [--width 1.0] [--size 128] [--length 11]

For one clip (5 x (length - 1) x size x size) it counts the bytes of every tensor autograd
keeps for the backward pass (``saved_tensors_hooks``, each storage once), plain and with
the CA-Inception blocks checkpointed; bf16 autocast halves what it keeps (estimated, as
the CPU run is fp32). Per stage it multiplies by the clips one backward pass holds: the
whole batch (paper batches: triplet 128 x 3 clips, AFE 128, meta 4 episodes x 5-way x
(5 + 5)), or one ``micro_batch`` part (whole triplets, whole episodes: a meta-step part
is at least one 50-clip episode). Parameters, gradients and SGD momentum add
3 x the weights (printed). GPU peaks are measured by ``benchmarks/gpu_smoke.py``.
"""

from __future__ import annotations

import argparse

import torch

from mer_bench.nn.backbones import CAI3D

GIB = 2 ** 30
STAGES = {"GFE triplet batch": (3 * 128, 3), "AFE batch": (128, 1),
          "meta step (4 x 5-way 5+5)": (200, 50)}
"""Stage -> (clips per paper batch, clips per indivisible unit: a triplet, a clip, an
episode, whose prototypes need all its clips at once)."""


def saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd keeps for ``model(x).sum().backward()`` (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.sum().backward()
    return sum(seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--length", type=int, default=11)
    parser.add_argument("--micro-batch", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = CAI3D(5, 512, args.width).train()
    x = torch.randn(2, 5, args.length - 1, args.size, args.size)
    weights = sum(p.numel() * 4 for p in model.parameters())
    per_clip = {}
    for name, checkpointing in (("plain", False), ("checkpointed", True)):
        model.checkpointing = checkpointing
        per_clip[name] = saved_bytes(model, x) / 2
    print(f"CA-I3D width {args.width}, input 5 x {args.length - 1} x {args.size}^2: "
          f"weights {weights / 2**20:.1f} MiB (x3 with gradients and momentum)")
    print("activations kept per clip: " + ", ".join(f"{k} {v / GIB:.3f} GiB (bf16 ~{v / 2 / GIB:.3f})"
                                                  for k, v in per_clip.items()))
    print(f"| stage | clips per batch | plain fp32 | checkpointed + bf16 | "
          f"+ micro-batch {args.micro_batch} |")
    print("|---|---|---|---|---|")
    for stage, (clips, unit) in STAGES.items():
        held = min(clips, unit * max(1, args.micro_batch // unit))
        print(f"| {stage} | {clips} | {per_clip['plain'] * clips / GIB:.1f} GiB | "
              f"{per_clip['checkpointed'] / 2 * clips / GIB:.1f} GiB | "
              f"{per_clip['checkpointed'] / 2 * held / GIB:.1f} GiB |")


if __name__ == "__main__":
    main()
