"""The one adapter body for a small network trained from scratch with cross-entropy:
inputs standardized per channel with training statistics, Adam at a fixed learning
rate for a fixed number of epochs (no early stopping and no model selection on any
test fold), prediction by the final network (``ScratchClassifier``); and its flavour on
28 x 28 maps of the onset -> apex flow (``FlowMapClassifier``, ``FlowMapConfig``), which
STSTNet and OFF-ApexNet are.

AU task (``tasks`` includes ``au``): the same network with one logit per AU (a sigmoid
head), trained with binary cross-entropy per AU whose positives are weighted by
negatives / positives in the training clips (capped at ``MAX_POS_WEIGHT``; our choice,
the balanced weighting the SVM baselines use; MEB's own training code is not the
recipe of any paper here), an AU present where its logit is > 0."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_bench.features import FlowStrainMaps
from mer_bench.method import Method, MethodConfig, au_prediction, training_stage
from mer_bench.nn.training import ChannelStandardizer, minibatch_epochs, prediction_from_scores
from mer_bench.seeding import seed_everything


MAX_POS_WEIGHT = 20.0
"""Largest weight of an AU's positives in the AU task's loss (an AU seen once in 600
clips would otherwise weigh 600)."""


class ScratchClassifier(Method):
    """Config fields read: ``epochs``, ``batch_size``, ``lr``. After ``fit``, ``losses``
    holds the mean training loss per epoch (the runner adds the fitted model's training
    accuracy to the diagnostics, as for every method)."""

    emits_scores = True
    tasks = ("emotion", "au")

    @abstractmethod
    def network(self, in_channels: int, n_classes: int) -> nn.Module:
        """A fresh network: (b, in_channels, H, W) -> (b, n_classes) logits."""

    def fit(self, train, ctx):
        cfg = self.config
        seed_everything(ctx.seed)
        self.device = ctx.device
        self.standardize = ChannelStandardizer.fit(train.x)
        self.net = self.network(train.x.shape[1], train.n_classes).to(ctx.device)
        x = torch.from_numpy(self.standardize(train.x))
        loss = self._au_loss(train) if train.task == "au" else self._class_loss(train)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.net.train()
        self.losses = minibatch_epochs(
            lambda idx: loss(self.net(x[idx].to(ctx.device)), idx), len(x), cfg.epochs,
            cfg.batch_size, optimizer, np.random.default_rng(ctx.seed), "epochs")
        self.net.eval()
        self.task = train.task

    def _class_loss(self, train):
        """(logits (b, C), batch rows) -> cross-entropy against the class labels."""
        y = torch.from_numpy(np.asarray(train.labels, np.int64)).to(self.device)
        return lambda logits, idx: F.cross_entropy(logits, y[idx])

    def _au_loss(self, train):
        """(logits (b, A), batch rows) -> per-AU binary cross-entropy, positives weighted
        by negatives / positives (at most ``MAX_POS_WEIGHT``, 1 for an AU never seen)."""
        targets = train.au_targets.astype(np.float32)
        positives = targets.sum(0)
        weight = np.where(positives > 0, (len(targets) - positives) / np.maximum(positives, 1), 1)
        weight = torch.from_numpy(np.clip(weight, 1.0, MAX_POS_WEIGHT).astype(np.float32))
        y, weight = torch.from_numpy(targets).to(self.device), weight.to(self.device)
        return lambda logits, idx: F.binary_cross_entropy_with_logits(
            logits.float(), y[idx], pos_weight=weight)

    @torch.no_grad()
    def predict(self, test, support=None):
        scores = self.net(torch.from_numpy(self.standardize(test.x)).to(self.device))
        if self.task == "au":
            return au_prediction(scores.detach().float().cpu().numpy())
        return prediction_from_scores(scores, support)

    def torch_modules(self):
        return [self.net]

    def diagnostics(self):
        return {"supervised": training_stage(self.losses)}


@dataclass(frozen=True)
class FlowMapConfig(MethodConfig):
    """The fields of a flow-map CNN: flow method and the size it is estimated at, and the
    training budget and recipe (a subclass sets its paper's defaults and presets)."""

    compute_size: int = 128
    flow: str = "tvl1"
    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-4
    dropout: float = 0.5
    RANGES = {"compute_size": (28, None), "epochs": (1, None), "batch_size": (2, None),
              "lr": (1e-12, None), "dropout": (0.0, 0.99)}


SMOKE_FLOW_MAPS = {"compute_size": 32, "flow": "farneback", "epochs": 3, "batch_size": 16}
"""The ``smoke`` preset of every flow-map CNN (tests)."""


class FlowMapClassifier(ScratchClassifier):
    """A ``ScratchClassifier`` on ``FlowStrainMaps`` at 28 x 28 with the subclass's
    ``map_channels`` (u, v, strain)."""

    map_channels: ClassVar[tuple[str, ...]] = ("u", "v")

    @property
    def inputs(self):
        return FlowStrainMaps(size=28, compute_size=self.config.compute_size,
                              flow=self.config.flow, channels=self.map_channels)
