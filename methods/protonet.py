"""``protonet``: a small CNN on onset -> apex flow + frame difference, trained
episodically with a cosine-prototype classifier (Snell et al. 2017, cosine variant).

Input: 5 channels (Farneback flow dx, dy; RGB apex - onset), standardized per channel
with training statistics. Encoder: four conv3x3-BN-ReLU-maxpool blocks (``width``
channels) and global average pooling -> ``width``-d embedding. Meta-training: the core
episodic trainer (N = every class with enough clips, K = 5, Q = 5 by default). Without a
support set, prototypes are the class means of all training clips; with one (few-shot
episodes), the support's class means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mer_bench.features import onset_apex
from mer_bench.method import Method, MethodConfig, register_method, training_stage
from mer_bench.nn.prototypes import PrototypeClassifier
from mer_bench.nn.training import (
    ChannelStandardizer,
    EpisodicSchedule,
    embed,
    episodic_train,
    prediction_from_scores,
)
from mer_bench.seeding import seed_everything


@dataclass(frozen=True)
class ProtoNetConfig(MethodConfig):
    size: int = 112
    width: int = 64
    steps: int = 1000
    k_shot: int = 5
    q_query: int = 5
    tasks_per_batch: int = 4
    lr: float = 0.01
    scale: float = 10.0
    GPU_PRESETS = ("paper",)
    PRESETS = {"fast": {"size": 48, "steps": 60, "width": 32, "tasks_per_batch": 2},
               "smoke": {"size": 32, "steps": 5, "width": 8, "tasks_per_batch": 1}}


def conv4(in_channels: int, width: int) -> nn.Module:
    """Four conv-BN-ReLU-pool blocks and global average pooling: (b, C, H, W) -> (b, width)."""
    layers, channels = [], in_channels
    for _ in range(4):
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


@register_method("protonet")
class ProtoNet(Method):
    Config = ProtoNetConfig
    emits_scores = True

    @property
    def inputs(self):
        return onset_apex(size=self.config.size, channels=("flow", "diff"))

    def fit(self, train, ctx):
        cfg = self.config
        seed_everything(ctx.seed)
        self.device = ctx.device
        self.standardize = ChannelStandardizer.fit(train.x)
        self.encoder = conv4(train.x.shape[1], cfg.width).to(ctx.device)
        schedule = EpisodicSchedule(steps=cfg.steps, k_shot=cfg.k_shot, q_query=cfg.q_query,
                                    tasks_per_batch=cfg.tasks_per_batch, lr=cfg.lr, scale=cfg.scale)
        x = self.standardize(train.x)
        self.losses = episodic_train(self.encoder, x, train.labels, schedule,
                                     np.random.default_rng(ctx.seed), ctx.device)
        labels = torch.tensor(train.labels, device=ctx.device)
        self.classifier = PrototypeClassifier.from_mean(embed(self.encoder, x, ctx.device), labels,
                                                        train.n_classes, cfg.scale)

    def predict(self, test, support=None):
        classifier = self.classifier
        if support is not None:
            labels = torch.tensor(support.labels, device=self.device)
            classifier = PrototypeClassifier.from_mean(
                embed(self.encoder, self.standardize(support.x), self.device), labels,
                test.n_classes, self.config.scale)
        scores = classifier.scores(embed(self.encoder, self.standardize(test.x), self.device))
        return prediction_from_scores(scores, support)

    def torch_modules(self):
        return [self.encoder]

    def diagnostics(self):
        return {"episodic meta-training": training_stage(self.losses)}
