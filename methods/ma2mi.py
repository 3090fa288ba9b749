"""``ma2mi``: MA2MI pre-training + MIACNet (Li, Niu, Zhao; paper: shared/papers/ma2mi.txt).

What follows the paper (section 3, equations 1-10, section 4.3):
- MIACNet: a facial position encoder E_p on I_t and a facial action encoder E_a on
  I_{t+delta} - I_t (Eq. 1), both torchvision ResNet-18 trunks (core ``ResNet18``).
- Pre-training on unlabelled macro-expression video (``--macro-dataset``: synth-ckplus by
  default, or ``folder:PATH`` for DFEW/FERV39K/AFEW as held): frame pairs (I_t,
  I_{t+delta}), delta uniform in [3, 8] (core ``FramePairs``); a latent autoencoder
  (diffusers ``AutoencoderKL``) gives Z_t, Z_{t+delta} (Eq. 7); a DiT (diffusers
  ``DiTTransformer2DModel``) conditioned on C_Delta predicts Z_{t+delta} from Z_t (Eq. 8)
  under an L1 loss (Eq. 9); E_p is trained by L_pos = L1 + L2 + L3 (Eqs. 2-6, core
  ``mer_bench.nn.position``) and E_a by L_rec: "these two branches are trained
  independently with different losses", so L_rec does not reach E_p. AdamW 4e-4,
  exponential decay, batch 32, 80 epochs, DiT-B (``paper``). Pre-training reads only
  the macro source, runs once per (macro dataset, pre-training config, seed) and is
  cached across folds and runs (``ctx.artifact``); ``mer-bench pretrain --method ma2mi``
  writes it to a file that ``-S pretrained=PATH`` loads.
- Fine-tuning: onset and apex frames -> C_Delta -> a zero-initialized linear layer;
  AdamW 4e-4, weight decay 0.1, batch 16, 80 epochs, random crop (as a random
  translation), horizontal flip and rotation.
- Ablations (Tables 1-4): ``-S pretrain=none`` (no pre-training), ``-S
  pretrain=classification`` (MAER: macro-expression classification on the macro set's
  onset/peak pairs, cross-entropy; needs a labelled macro set), ``-S latent=false``
  (reconstruction in pixel space, MA2MI-dagger), ``-S position_encoder=false`` (no E_p),
  ``-S position_loss=false`` (both encoders trained through L_rec only).

Deviations, and why:
- How C_Delta combines the two encoders is drawn in the paper's Fig. 2, not written.
  Here C_Delta = spatial mean of F_a * (1 + F_p) over the ResNet-18 maps (b, 512, h, w):
  the action features plus the action features weighted by the position features at
  each position, so where an action happens changes C_Delta; without E_p it is the mean
  of F_a.
- DiT conditions on a class label; MA2MI on the vector C_Delta. The class/timestep
  embedding of every adaLN-Zero block is replaced by an MLP of C_Delta
  (``mer_bench.nn.generative.VectorCondition``); there is no diffusion timestep (the DiT
  predicts Z_{t+delta} directly, as Eq. 8 writes it).
- The Stable Diffusion VAE's weights cannot be had offline: the autoencoder (same
  architecture family, sized by ``ae_channels``) is trained on the macro frames first
  (L1 + 1e-6 KL), then frozen; latents are its posterior means, scaled to unit variance.
- L3 uses the root-mean-square of the difference (the paper's 2-norm grows with the map
  size); tau is a random rotation (+-15 deg) and translation (+-10 %).
- Left open by the paper, chosen here: the learning rate decays by a factor 100 over
  pre-training; each macro clip gives ``pairs`` fixed pairs (seeded by clip); images
  enter as 2x - 1 and the difference as 2 (I_{t+delta} - I_t); fine-tuning
  augmentation: rotation +-10 deg, translation +-10 %, flip p = 0.5, the same for both
  frames of a clip; a frozen-BatchNorm-free full fine-tune of both encoders (Table 2's
  best setting).
- Frames are the dataset's face crops at ``size`` (the paper resizes to 256).
  ``size`` >= 64, so that E_p's map has at least 2x2 positions (L1, L2 need two).
- The autoencoder's schedule is ours (the paper uses SD's trained VAE): AdamW 5e-4,
  ``ae_epochs`` epochs over every frame of the pairs.
- Memory (execution settings, not recipe: ``BUDGET_FIELDS``): at ``paper`` size one
  autoencoder step keeps about 1.6 GiB of activations per 256 px image (32 images: 51
  GiB, the 50.6 GiB a GPU measured) and one DiT step about 0.62 GiB per frame pair
  (counted with ``saved_tensors_hooks``). Pre-training therefore runs each batch in
  parts of ``micro_batch`` = 8 samples whose gradients are accumulated, forward passes
  under bf16 autocast on CUDA (``amp``). The autoencoder has group norms only, so its
  parts give the whole batch's gradient; in the DiT stage the ResNet encoders' batch
  norms see each part of 8 pairs on its own (``mer_bench.nn.training.Execution``).
  Estimated peaks: autoencoder stage about 7.5 GiB (13.8 GiB with ``-S amp=false``), DiT
  stage about 5 GiB; fine-tuning (16 clips) about 2.5 GiB. ``-S micro_batch=0 -S
  amp=false`` restores whole fp32 batches. ``fast`` and ``smoke`` keep whole fp32
  batches.
- Presets ``fast`` (64 px, so E_p's map is 2x2; width-16 ResNets; a 4x autoencoder of
  8-16-16 channels, 3 epochs; a 2-layer DiT; one pair per macro clip; 6 pre-training and
  15 fine-tuning epochs) and ``smoke`` shrink the budget for CPUs; ``paper`` needs a
  GPU. Measured on 2 CPU cores at ``fast``, pre-training on synth-ckplus takes about
  70 s on one thread (autoencoder about 40 s of it).
- At ``fast`` the pre-training is not effective: the next latent's L1 with each pair's
  own motion code is 0.06291, with shuffled codes 0.06303, copying the frame 0.06318
  (not the 5 % below both that would show it reads the code), so ``fast`` rows are
  marked "pre-training not effective at this budget" and measure MIACNet fine-tuned
  from a barely informative start.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_bench.errors import MerBenchError
from mer_bench.features import FramePairs, FrameSequence
from mer_bench.method import (
    Method,
    MethodConfig,
    PaperValue,
    register_method,
    training_stage,
)
from mer_bench.nn.augment import apply_affine, random_affine
from mer_bench.nn.checkpoints import load_weights
from mer_bench.nn.generative import (
    ConditionalDiT,
    encode_latents,
    latent_autoencoder,
    train_autoencoder,
)
from mer_bench.nn.position import position_loss
from mer_bench.nn.training import Execution, minibatch_epochs, prediction_from_scores
from mer_bench.seeding import seed_everything, stable_int

PRETRAIN_MODES = ("reconstruction", "classification", "none")
PRETRAIN_CODE_VERSION = 2
"""Part of the pre-training cache key: bump when the pre-training code changes what it
builds, so a cached checkpoint of older code is never reused."""
PRETRAIN_FIELDS = ("size", "width", "pretrain", "latent", "position_encoder", "position_loss",
                   "ae_channels", "latent_channels", "ae_epochs", "ae_lr", "dit_layers",
                   "dit_heads", "dit_head_dim", "patch_size", "pretrain_epochs",
                   "pretrain_batch", "pretrain_lr", "min_delta", "max_delta", "pairs",
                   "micro_batch", "amp")
"""Config fields the pre-trained weights depend on (the artefact key)."""


@dataclass(frozen=True)
class MA2MIConfig(MethodConfig):
    size: int = 256
    width: int = 64
    pretrain: str = "reconstruction"
    pretrained: str | None = None
    latent: bool = True
    position_encoder: bool = True
    position_loss: bool = True
    ae_channels: tuple = (128, 256, 512, 512)
    latent_channels: int = 4
    ae_epochs: int = 20
    ae_lr: float = 5e-4
    dit_layers: int = 12
    dit_heads: int = 12
    dit_head_dim: int = 64
    patch_size: int = 2
    pretrain_epochs: int = 80
    pretrain_batch: int = 32
    pretrain_lr: float = 4e-4
    min_delta: int = 3
    max_delta: int = 8
    pairs: int = 4
    epochs: int = 80
    batch_size: int = 16
    lr: float = 4e-4
    weight_decay: float = 0.1
    micro_batch: int | None = 8          # pre-training: samples per accumulated part; 0/None: whole
    amp: bool = True                     # pre-training forward under bf16 autocast (CUDA only)
    PAPER = {
        "size": PaperValue(256, "§4.3: frames resized to 256 x 256"),
        "width": PaperValue(64, "§3.1: ResNet-18 encoders (64 base channels)"),
        "pretrain": PaperValue("reconstruction", "§3.2: MA2MI future-frame reconstruction"),
        "latent": PaperValue(True, "§3.2, Eq. 7: reconstruction in latent space"),
        "position_encoder": PaperValue(True, "§3.1: the facial position encoder E_p"),
        "position_loss": PaperValue(True, "§3.1, Eqs. 2-6: L_pos"),
        "dit_layers": PaperValue(12, "§4.3: DiT-B"),
        "dit_heads": PaperValue(12, "§4.3: DiT-B"),
        "dit_head_dim": PaperValue(64, "§4.3: DiT-B"),
        "pretrain_batch": PaperValue(32, "§4.3: batch size 32"),
        "pretrain_lr": PaperValue(4e-4, "§4.3: 0.0004, exponential decay"),
        "pretrain_epochs": PaperValue(80, "§4.3: 80 epochs"),
        "min_delta": PaperValue(3, "§4.3, §4.4: δ in [3, 8]"),
        "max_delta": PaperValue(8, "§4.3, §4.4: δ in [3, 8]"),
        "batch_size": PaperValue(16, "§4.3: fine-tuning batch size 16"),
        "epochs": PaperValue(80, "§4.3: 80 epochs"),
        "lr": PaperValue(4e-4, "§4.3: 0.0004"),
        "weight_decay": PaperValue(0.1, "§4.3: weight decay 0.1"),
    }
    BUILT_IN = {"autoencoder": PaperValue(
        "Stable Diffusion's trained VAE", "§3.2, Eq. 7",
        ran="an AutoencoderKL of the same family trained on the macro frames (no SD weights offline)")}
    NOT_SPECIFIED = ("ae_channels", "latent_channels", "ae_epochs", "ae_lr", "patch_size", "pairs")
    GPU_PRESETS = ("paper",)
    PRESETS = {
        "fast": {"micro_batch": None, "amp": False, "size": 64, "width": 16, "ae_channels": (8, 16, 16), "ae_epochs": 3,
                 "dit_layers": 2, "dit_heads": 4, "dit_head_dim": 16, "pretrain_epochs": 6,
                 "pairs": 1, "epochs": 15},
        "smoke": {"micro_batch": None, "amp": False, "size": 64, "width": 4, "ae_channels": (8, 8), "ae_epochs": 1,
                  "dit_layers": 1, "dit_heads": 2, "dit_head_dim": 8, "pretrain_epochs": 1,
                  "pretrain_batch": 16, "pairs": 1, "epochs": 1, "batch_size": 8},
    }
    RANGES = {"size": (64, None), "width": (1, None), "latent_channels": (1, None),
              "ae_epochs": (1, None), "dit_layers": (1, None), "dit_heads": (1, None),
              "dit_head_dim": (2, None), "patch_size": (1, None), "pretrain_epochs": (1, None),
              "pretrain_batch": (2, None), "min_delta": (1, None), "max_delta": (1, None),
              "pairs": (1, None), "epochs": (1, None), "batch_size": (2, None),
              "weight_decay": (0.0, None)}

    def __post_init__(self):
        if self.pretrain not in PRETRAIN_MODES:
            raise MerBenchError(f"ma2mi: pretrain={self.pretrain!r}; choose from "
                                f"{', '.join(PRETRAIN_MODES)}")


class MIACNet(nn.Module):
    """Position encoder E_p (on I_t) and action encoder E_a (on I_{t+delta} - I_t).

    ``condition``: float (b, 3, H, W) frames I_t and I_{t+delta} in [0, 1] ->
    C_Delta (b, 8 * width)."""

    def __init__(self, width: int, position_encoder: bool = True):
        super().__init__()
        from mer_bench.nn.resnets import ResNet18
        self.action = ResNet18(3, width)
        self.position = ResNet18(3, width) if position_encoder else None
        self.cond_dim = self.action.out_features

    def position_maps(self, onset: torch.Tensor) -> torch.Tensor:
        """E_p's feature map F_p (b, 8 * width, H/32, W/32) of frames in [0, 1]."""
        return self.position.feature_maps(onset * 2 - 1)

    def condition(self, onset: torch.Tensor, later: torch.Tensor,
                  detach_position: bool = False) -> torch.Tensor:
        action = self.action.feature_maps((later - onset) * 2)
        if self.position is None:
            return action.mean((2, 3))
        position = self.position_maps(onset)
        if detach_position:
            position = position.detach()
        return (action * (1 + position)).mean((2, 3))


def _as_frames(pairs: np.ndarray) -> np.ndarray:
    """(n, 3, 2, H, W) onset/apex clips (``FrameSequence``) -> (n, 2, 3, H, W)."""
    return np.ascontiguousarray(pairs.transpose(0, 2, 1, 3, 4))


@register_method("ma2mi")
class MA2MI(Method):
    uses_auxiliary = True
    Config = MA2MIConfig
    emits_scores = True

    @property
    def inputs(self):
        return FrameSequence(length=2, size=self.config.size)

    # --- pre-training -------------------------------------------------------------------

    def pretrained_state(self, ctx) -> dict:
        """MIACNet's pre-trained state dict for this config and seed: loaded from
        ``pretrained``, else built once from the macro source and cached
        (``ctx.artifact``); {} when ``pretrain="none"``."""
        cfg = self.config
        if cfg.pretrained:
            return load_pretrained(Path(cfg.pretrained))
        if cfg.pretrain == "none":
            return {}
        fields = {name: getattr(cfg, name) for name in PRETRAIN_FIELDS}
        key = f"ma2mi-pretrain:v{PRETRAIN_CODE_VERSION}:{sorted(fields.items())}:" \
              f"{ctx.auxiliary_fingerprint('macro')}:" \
              f"seed{ctx.seed}"
        build = self._pretrain_reconstruction if cfg.pretrain == "reconstruction" \
            else self._pretrain_classification
        return ctx.artifact(key, lambda: build(ctx), check=self._check_state)

    @property
    def execution(self) -> Execution:
        """How pre-training steps run (``micro_batch``, ``amp``): execution, not recipe."""
        return Execution(self.config.micro_batch, self.config.amp)

    def pretrained_source(self) -> dict | None:
        if not self.config.pretrained:
            return None
        return dict(load_pretrained(Path(self.config.pretrained))["source"])

    def _check_state(self, state: dict) -> None:
        MIACNet(self.config.width, self.config.position_encoder).load_state_dict(state["miacnet"])

    def _pretrain_reconstruction(self, ctx) -> dict:
        """Eqs. 1-10 on the macro source only; returns {"miacnet": state, "losses": (epochs,)}."""
        cfg = self.config
        seed_everything(stable_int("ma2mi-pretrain", ctx.seed))
        spec = FramePairs(size=cfg.size, pairs=cfg.pairs, min_delta=cfg.min_delta,
                          max_delta=cfg.max_delta)
        pairs = ctx.auxiliary("macro", (spec,)).x
        pairs = pairs.reshape(-1, 2, 3, cfg.size, cfg.size)               # (N, 2, 3, S, S)
        rng = np.random.default_rng(ctx.seed)
        targets = self._reconstruction_targets(pairs, rng, ctx.device)   # (N, 2, c, h, w)
        miac = MIACNet(cfg.width, cfg.position_encoder).to(ctx.device)
        dit = ConditionalDiT(targets.shape[2], targets.shape[-1], miac.cond_dim, cfg.dit_layers,
                             cfg.dit_heads, cfg.dit_head_dim, cfg.patch_size).to(ctx.device)
        optimizer = torch.optim.AdamW([*miac.parameters(), *dit.parameters()], lr=cfg.pretrain_lr)
        decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.01 ** (1 / cfg.pretrain_epochs))
        generator = torch.Generator().manual_seed(ctx.seed)
        frames = torch.from_numpy(pairs)
        independent = cfg.position_encoder and cfg.position_loss

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            onset, later = (frames[idx, k].to(ctx.device) for k in (0, 1))
            condition = miac.condition(onset, later, detach_position=independent)
            z = targets[idx].to(ctx.device)
            loss = F.l1_loss(dit(z[:, 0], condition), z[:, 1])
            if independent:
                theta = random_affine(len(idx), 15.0, 0.1, False, generator, ctx.device)
                loss = loss + position_loss(miac.position_maps, onset, theta)[0]
            return loss

        miac.train()
        dit.train()
        losses = minibatch_epochs(loss_of, len(pairs), cfg.pretrain_epochs, cfg.pretrain_batch,
                                  optimizer, rng, "pre-training epochs", decay.step,
                                  self.execution, ctx.device)
        return {"miacnet": _cpu_state(miac), "losses": torch.tensor(losses),
                "reconstruction": reconstruction_check(miac, dit, frames, targets, ctx.device,
                                                       independent, ctx.seed)}

    def _reconstruction_targets(self, pairs: np.ndarray, rng: np.random.Generator,
                                device: str) -> torch.Tensor:
        """What the DiT reconstructs: unit-variance autoencoder latents of every frame
        (``latent``), or the frames themselves in [-1, 1] (pixel space)."""
        cfg = self.config
        flat = pairs.reshape(-1, 3, cfg.size, cfg.size)
        if not cfg.latent:
            return torch.from_numpy(pairs * 2 - 1)
        autoencoder = latent_autoencoder(tuple(int(c) for c in cfg.ae_channels),
                                         cfg.latent_channels).to(device)
        train_autoencoder(autoencoder, flat, cfg.ae_epochs, cfg.pretrain_batch, cfg.ae_lr,
                          1e-6, rng, device, self.execution)
        latents = encode_latents(autoencoder, flat, device)
        latents = latents / latents.std()
        return latents.reshape(len(pairs), 2, *latents.shape[1:])

    def _pretrain_classification(self, ctx) -> dict:
        """MAER (Table 1): MIACNet + a linear head trained to classify the labelled
        macro set's onset -> peak pairs, cross-entropy, the pre-training schedule."""
        cfg = self.config
        seed_everything(stable_int("ma2mi-maer", ctx.seed))
        macro = ctx.auxiliary("macro")
        if macro.n_classes < 2:
            raise MerBenchError(f"ma2mi: pretrain=classification needs a labelled macro set; "
                                f"{ctx.auxiliary_fingerprint('macro')} has "
                                f"{macro.n_classes} class")
        miac = MIACNet(cfg.width, cfg.position_encoder).to(ctx.device)
        head = nn.Linear(miac.cond_dim, macro.n_classes).to(ctx.device)
        losses = self._train_classifier(miac, head, _as_frames(macro.x), macro.labels,
                                        cfg.pretrain_epochs, cfg.pretrain_batch, cfg.pretrain_lr,
                                        0.0, np.random.default_rng(ctx.seed), ctx.device)
        return {"miacnet": _cpu_state(miac), "losses": torch.tensor(losses)}

    # --- fine-tuning --------------------------------------------------------------------

    def fit(self, train, ctx):
        cfg = self.config
        state = self.pretrained_state(ctx)
        self.pretrain_losses = [float(v) for v in state.get("losses", [])]
        self.reconstruction = [float(v) for v in state.get("reconstruction", [])]
        seed_everything(ctx.seed)
        self.device = ctx.device
        self.miac = MIACNet(cfg.width, cfg.position_encoder).to(ctx.device)
        if state:
            try:
                self.miac.load_state_dict(copy.deepcopy(state["miacnet"]))
            except RuntimeError as err:
                raise MerBenchError(f"ma2mi: the pre-trained weights do not fit width="
                                    f"{cfg.width}, position_encoder={cfg.position_encoder}: "
                                    f"{str(err).splitlines()[0]}") from None
        self.head = nn.Linear(self.miac.cond_dim, train.n_classes).to(ctx.device)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.losses = self._train_classifier(self.miac, self.head, _as_frames(train.x),
                                             train.labels, cfg.epochs, cfg.batch_size, cfg.lr,
                                             cfg.weight_decay, np.random.default_rng(ctx.seed),
                                             ctx.device, augment=True)

    def _train_classifier(self, miac: MIACNet, head: nn.Module, frames: np.ndarray,
                          labels: np.ndarray, epochs: int, batch_size: int, lr: float,
                          weight_decay: float, rng: np.random.Generator, device: str,
                          augment: bool = False) -> list[float]:
        """Cross-entropy on head(C_Delta(onset, apex)), AdamW; ``frames`` (n, 2, 3, H, W).
        With ``augment``: one random rotation/translation/flip per clip, both frames."""
        optimizer = torch.optim.AdamW([*miac.parameters(), *head.parameters()], lr=lr,
                                      weight_decay=weight_decay)
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
        x, y = torch.from_numpy(frames), torch.tensor(labels)

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            onset, apex = (x[idx, k].to(device) for k in (0, 1))
            if augment:
                theta = random_affine(len(idx), 10.0, 0.1, True, generator, device)
                onset, apex = apply_affine(onset, theta), apply_affine(apex, theta)
            return F.cross_entropy(head(miac.condition(onset, apex)), y[idx].to(device))

        miac.train()
        losses = minibatch_epochs(loss_of, len(x), epochs, batch_size, optimizer, rng, "epochs")
        miac.eval()
        return losses

    @torch.no_grad()
    def predict(self, test, support=None):
        self.miac.eval()
        frames = _as_frames(test.x)
        logits = torch.cat([
            self.head(self.miac.condition(torch.from_numpy(frames[i:i + 32, 0]).to(self.device),
                                          torch.from_numpy(frames[i:i + 32, 1]).to(self.device)))
            for i in range(0, len(test), 32)])
        return prediction_from_scores(logits, support)

    def torch_modules(self):
        return [self.miac, self.head]

    def diagnostics(self):
        stages = {"fine-tuning": training_stage(self.losses)}
        if self.pretrain_losses:
            figures = dict(zip((f"reconstruction_l1_{k}" for k in RECONSTRUCTION_FIGURES),
                               self.reconstruction))
            stages[f"pre-training ({self.config.pretrain})"] = training_stage(self.pretrain_losses,
                                                                              **figures)
        return stages


RECONSTRUCTION_FIGURES = ("own_condition", "shuffled_condition", "copy_baseline")
"""What ``reconstruction_check`` measures, in its order."""


@torch.no_grad()
def reconstruction_check(miac: nn.Module, dit: nn.Module, frames: torch.Tensor,
                         targets: torch.Tensor, device: str, detach_position: bool, seed: int,
                         n: int = 256) -> torch.Tensor:
    """Did pre-training learn motion? L1 reconstruction loss of the next latent on up to
    ``n`` pre-training pairs (eval mode) with each pair's own C_Δ, with C_Δ shuffled
    across pairs, and of copying Z_t (the prediction without any motion): float (3,) in
    ``RECONSTRUCTION_FIGURES`` order. Own below shuffled means the DiT reads C_Δ; own
    below copy means the motion code predicts the change. ``frames`` (N, 2, 3, S, S),
    ``targets`` (N, 2, c, h, w)."""
    miac.eval()
    dit.eval()
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(frames), generator=generator)[:n]
    onset, later = (frames[pick, k].to(device) for k in (0, 1))
    z = targets[pick].to(device)
    condition = miac.condition(onset, later, detach_position)
    shuffled = condition[torch.randperm(len(pick), generator=generator).to(device)]
    return torch.tensor([float(F.l1_loss(dit(z[:, 0], condition), z[:, 1])),
                         float(F.l1_loss(dit(z[:, 0], shuffled), z[:, 1])),
                         float(F.l1_loss(z[:, 0], z[:, 1]))])


def _cpu_state(module: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def load_pretrained(path: Path) -> dict:
    """A pre-training checkpoint written by ``mer-bench pretrain --method ma2mi``: the
    MIACNet state, the losses, and the macro source it was trained on (``source``:
    {"macro", "fingerprint", "synthetic"}; a checkpoint without one is refused, since
    the run could not check that its pre-training saw none of the test people)."""
    state = load_weights(path, "ma2mi: pretrained")
    if not isinstance(state, dict) or "miacnet" not in state:
        raise MerBenchError(f"ma2mi: {path} is not a MA2MI pre-training checkpoint "
                            f"(no 'miacnet' entry)")
    source = state.get("source")
    if not (isinstance(source, dict) and isinstance(source.get("macro"), str)
            and isinstance(source.get("fingerprint"), str)
            and isinstance(source.get("synthetic"), bool)):
        raise MerBenchError(f"ma2mi: {path} records no macro source (name, fingerprint, "
                            f"synthetic); export it again with mer-bench pretrain")
    return state
