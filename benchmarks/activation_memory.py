"""Activation memory of the two adapters whose ``paper`` presets are the largest —
MPFNet's CA-I3D and MA2MI's pre-training — measured on the CPU, and the peak per
training stage it implies, whole batches against ``micro_batch`` parts.

    python benchmarks/activation_memory.py mpfnet [--width 1.0] [--size 128] [--length 11]
    python benchmarks/activation_memory.py ma2mi [--micro-batch 8]

For one sample at the ``paper`` size it counts the bytes of every tensor autograd keeps
for the backward pass (``saved_tensors_hooks``, each storage once); bf16 autocast halves
what it keeps (estimated, as the CPU run is fp32). Per stage it multiplies by the
samples one backward pass holds: the whole batch, or one ``micro_batch`` part. Weights,
gradients and optimizer state add 3 x the weights (SGD with momentum, MPFNet) or 4 x
(AdamW, MA2MI), printed beside.

MPFNet: CA-I3D on one clip (5 x (length - 1) x size x size), plain and with the
CA-Inception blocks checkpointed; paper batches: triplet 128 x 3 clips, AFE 128, meta 4
episodes x 5-way x (5 + 5) (a part holds whole triplets and whole episodes: a meta-step
part is at least one 50-clip episode). MA2MI: the autoencoder's step per 256 px image
(32 images a batch), the DiT stage's step per frame pair (E_p, E_a, DiT-B, L_pos; 32
pairs), fine-tuning per clip (16). GPU peaks are measured by ``benchmarks/gpu_bench.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mer_bench.methods import build_method
from mer_bench.nn.backbones import CAI3D

GIB = 2 ** 30
MPFNET_STAGES = {"GFE triplet batch": (3 * 128, 3), "AFE batch": (128, 1),
                 "meta step (4 x 5-way 5+5)": (200, 50)}
"""Stage -> (clips per paper batch, clips per indivisible unit: a triplet, a clip, an
episode, whose prototypes need all its clips at once)."""


def saved_bytes(loss: Callable[[], torch.Tensor]) -> int:
    """Bytes autograd keeps for ``loss().backward()`` (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        value = loss()
    value.backward()
    return sum(seen.values())


def state_bytes(*modules: torch.nn.Module) -> int:
    """fp32 bytes of the modules' weights."""
    return sum(p.numel() * 4 for m in modules for p in m.parameters())


def mpfnet(args) -> None:
    model = CAI3D(5, 512, args.width).train()
    x = torch.randn(2, 5, args.length - 1, args.size, args.size)
    per_clip = {}
    for name, checkpointing in (("plain", False), ("checkpointed", True)):
        model.checkpointing = checkpointing
        per_clip[name] = saved_bytes(lambda: model(x).sum()) / 2
    print(f"CA-I3D width {args.width}, input 5 x {args.length - 1} x {args.size}^2: "
          f"weights {state_bytes(model) / 2**20:.1f} MiB (x3 with gradients and momentum)")
    print("activations kept per clip: " + ", ".join(f"{k} {v / GIB:.3f} GiB (bf16 ~{v / 2 / GIB:.3f})"
                                                  for k, v in per_clip.items()))
    micro = args.micro_batch or 32
    print(f"| stage | clips per batch | plain fp32 | checkpointed + bf16 | "
          f"+ micro-batch {micro} |")
    print("|---|---|---|---|---|")
    for stage, (clips, unit) in MPFNET_STAGES.items():
        held = min(clips, unit * max(1, micro // unit))
        print(f"| {stage} | {clips} | {per_clip['plain'] * clips / GIB:.1f} GiB | "
              f"{per_clip['checkpointed'] / 2 * clips / GIB:.1f} GiB | "
              f"{per_clip['checkpointed'] / 2 * held / GIB:.1f} GiB |")


def ma2mi(args) -> None:
    from mer_bench.methods.ma2mi import MIACNet
    from mer_bench.nn.augment import random_affine
    from mer_bench.nn.generative import ConditionalDiT, latent_autoencoder
    from mer_bench.nn.position import position_loss
    cfg = build_method("ma2mi", "paper").config
    micro = args.micro_batch or cfg.micro_batch
    size, latent = cfg.size, cfg.size // 2 ** (len(cfg.ae_channels) - 1)
    ae = latent_autoencoder(tuple(cfg.ae_channels), cfg.latent_channels).train()
    frames = torch.randn(2, 3, size, size)

    def ae_loss() -> torch.Tensor:
        posterior = ae.encode(frames).latent_dist
        return F.l1_loss(ae.decode(posterior.sample()).sample, frames) + 1e-6 * posterior.kl().mean()

    miac = MIACNet(cfg.width, True).train()
    dit = ConditionalDiT(cfg.latent_channels, latent, miac.cond_dim, cfg.dit_layers, cfg.dit_heads,
                         cfg.dit_head_dim, cfg.patch_size).train()
    later, z = torch.randn(2, 3, size, size), torch.randn(2, 2, cfg.latent_channels, latent, latent)
    generator = torch.Generator().manual_seed(0)

    def dit_loss() -> torch.Tensor:
        condition = miac.condition(frames, later, detach_position=True)
        theta = random_affine(2, 15.0, 0.1, False, generator, "cpu")
        return F.l1_loss(dit(z[:, 0], condition), z[:, 1]) + \
            position_loss(miac.position_maps, frames, theta)[0]

    head = torch.nn.Linear(miac.cond_dim, 5)

    def tune_loss() -> torch.Tensor:
        return F.cross_entropy(head(miac.condition(frames, later)), torch.tensor([0, 1]))

    stages = [("autoencoder step (images)", ae_loss, cfg.pretrain_batch, state_bytes(ae), True),
              ("DiT stage step (frame pairs)", dit_loss, cfg.pretrain_batch,
               state_bytes(miac, dit), True),
              ("fine-tuning step (clips)", tune_loss, cfg.batch_size, state_bytes(miac, head), False)]
    print(f"MA2MI paper: {size} px, autoencoder {tuple(cfg.ae_channels)}, DiT {cfg.dit_layers} "
          f"layers x {cfg.dit_heads} heads x {cfg.dit_head_dim}; micro_batch {micro}")
    print("| stage | activations per sample | batch | weights + grads + AdamW | whole batch, fp32 "
          f"| parts of {micro}, fp32 | parts of {micro} + bf16 (estimated) |")
    print("|---|---|---|---|---|---|---|")
    for name, loss, batch, weights, in_parts in stages:
        per = saved_bytes(loss) / 2
        state = 4 * weights
        held = min(batch, micro) if in_parts else batch
        print(f"| {name} | {per / GIB:.3f} GiB | {batch} | {state / GIB:.2f} GiB | "
              f"{(per * batch + state) / GIB:.1f} GiB | {(per * held + state) / GIB:.1f} GiB | "
              f"{(per * held / 2 + state) / GIB:.1f} GiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=["mpfnet", "ma2mi"])
    parser.add_argument("--width", type=float, default=1.0, help="mpfnet: CA-I3D width")
    parser.add_argument("--size", type=int, default=128, help="mpfnet: clip size")
    parser.add_argument("--length", type=int, default=11, help="mpfnet: frames")
    parser.add_argument("--micro-batch", type=int,
                        help="samples per part (default: mpfnet 32, ma2mi its paper config's)")
    args = parser.parse_args()
    torch.manual_seed(0)
    {"mpfnet": mpfnet, "ma2mi": ma2mi}[args.method](args)


if __name__ == "__main__":
    main()
