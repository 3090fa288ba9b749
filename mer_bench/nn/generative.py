"""Latent autoencoder and conditional DiT from ``diffusers``, for future-frame
pre-training (MA2MI, shared/papers/ma2mi.txt section 3.2).

- ``latent_autoencoder``: ``diffusers.AutoencoderKL`` (the Stable Diffusion VAE's
  architecture) sized by ``channels``: each entry is one encoder block, all but the last
  halve the resolution (``(128, 256, 512, 512)`` = SD's f = 8). Stable Diffusion's
  weights cannot be had offline, so ``train_autoencoder`` trains it on the macro frames
  first: L1 reconstruction + ``kl_weight`` KL, AdamW.
- ``conditional_dit``: ``diffusers.DiTTransformer2DModel`` (adaLN-Zero blocks) conditioned
  on a continuous vector instead of a class label: in every block the class/timestep
  embedding table is replaced by ``VectorCondition`` (an MLP of the vector), which the
  final layer shares, as DiT's does. DiT-B is 12 layers, 12 heads x 64, patch 2.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_bench.nn.training import Execution, minibatch_epochs


def latent_autoencoder(channels: tuple[int, ...], latent_channels: int = 4):
    """An untrained ``AutoencoderKL`` on RGB in [-1, 1]; downsampling 2**(len(channels)-1)."""
    from diffusers import AutoencoderKL

    groups = min(32, min(channels))
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent_channels,
                         down_block_types=("DownEncoderBlock2D",) * len(channels),
                         up_block_types=("UpDecoderBlock2D",) * len(channels),
                         block_out_channels=tuple(channels), layers_per_block=1,
                         norm_num_groups=groups)


def train_autoencoder(autoencoder: nn.Module, images: np.ndarray, epochs: int, batch_size: int,
                      lr: float, kl_weight: float, rng: np.random.Generator, device: str,
                      execution: Execution | None = None) -> list[float]:
    """Fit ``autoencoder`` to float32 (n, 3, H, W) images in [0, 1]; mean loss per epoch.
    ``execution``: micro-batches and bf16 autocast (``Execution``); the autoencoder has
    group norms only, so parts give the whole batch's gradient."""
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=lr)
    data = torch.from_numpy(images)

    def loss_of(idx: np.ndarray) -> torch.Tensor:
        x = data[idx].to(device) * 2 - 1
        posterior = autoencoder.encode(x).latent_dist
        recon = autoencoder.decode(posterior.sample()).sample
        return F.l1_loss(recon, x) + kl_weight * posterior.kl().mean()

    autoencoder.train()
    losses = minibatch_epochs(loss_of, len(data), epochs, batch_size, optimizer, rng,
                              "autoencoder epochs", execution=execution, device=device)
    autoencoder.eval()
    return losses


@torch.no_grad()
def encode_latents(autoencoder: nn.Module, images: np.ndarray, device: str,
                   batch_size: int = 64) -> torch.Tensor:
    """Posterior means of float32 (n, 3, H, W) images in [0, 1]: (n, c, h, w) on CPU."""
    autoencoder.eval()
    parts = [autoencoder.encode(torch.from_numpy(images[i:i + batch_size]).to(device) * 2 - 1)
             .latent_dist.mode().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(parts)


class VectorCondition(nn.Module):
    """Stands in for DiT's ``CombinedTimestepLabelEmbeddings``: same call, but the
    ``class_labels`` argument carries a float condition (b, cond_dim), mapped by
    Linear-SiLU-Linear to the block's embedding (b, dim). The timestep is ignored
    (prediction, not denoising)."""

    def __init__(self, cond_dim: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cond_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, timestep, class_labels: torch.Tensor, hidden_dtype=None) -> torch.Tensor:
        return self.mlp(class_labels)


class ConditionalDiT(nn.Module):
    """(b, c, h, w) latent + (b, cond_dim) condition -> (b, c, h, w) prediction of the
    next latent, as a residual: ``latent + DiT(latent, condition)``.

    DiT's adaLN-Zero initialization (Peebles & Xie 2023, §3.2): every block's modulation
    (the linear that regresses shift, scale and gate from the condition) and the final
    layer's modulation and output projection start at zero, so at initialization each
    block is the identity and the prediction is the input latent — the copy baseline —
    which training can only beat by reading the condition. (diffusers initializes them
    at random; a direct, non-residual prediction from that start never reached the copy
    baseline and ignored the condition.)"""

    def __init__(self, channels: int, sample_size: int, cond_dim: int, layers: int, heads: int,
                 head_dim: int, patch_size: int):
        super().__init__()
        from diffusers import DiTTransformer2DModel

        self.dit = DiTTransformer2DModel(num_attention_heads=heads, attention_head_dim=head_dim,
                                         in_channels=channels, out_channels=channels,
                                         num_layers=layers, sample_size=sample_size,
                                         patch_size=patch_size, num_embeds_ada_norm=1)
        for block in self.dit.transformer_blocks:
            block.norm1.emb = VectorCondition(cond_dim, heads * head_dim)
            nn.init.zeros_(block.norm1.linear.weight)
            nn.init.zeros_(block.norm1.linear.bias)
        for layer in (self.dit.proj_out_1, self.dit.proj_out_2):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, latent: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        timestep = torch.zeros(len(latent), dtype=torch.long, device=latent.device)
        change = self.dit(latent, timestep=timestep, class_labels=condition, return_dict=False)[0]
        return latent + change
