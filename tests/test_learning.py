"""Every reference adapter's trainer can learn: on a planted-signal set (the class is a
brighter band at one of three heights of every input, under unit noise; tests/helpers
``planted_sets``) each training stage alone takes the fitted model's training accuracy
to 0.9 or more, while the same network untrained stays below that bar (measured
0.33-0.83: the set is not separated without training, so the test can fail). A trainer, optimizer, head or
batch-norm treatment that cannot learn fails here."""

import numpy as np
import pytest

from mer_bench.context import RunContext
from mer_bench.methods import build_method
from tests.helpers import planted_sets

STRENGTH = 0.4
"""Band brightness in noise standard deviations: weak enough that untrained networks
miss the bar, strong enough to be learnt in seconds."""


class PlantedFeatures:
    """``ctx.materialize`` for a planted set: any further spec of a clip (MPFNet's
    magnified copies) is the clip's planted input itself."""

    def __init__(self, train):
        self.x = train.x

    def __call__(self, spec, sample_ids):
        return self.x[[int(s[1:]) for s in sample_ids]]


def training_accuracy(name: str, **overrides) -> float:
    method = build_method(name, "smoke", **overrides)
    train, sealed = planted_sets(method.input_specs, strength=STRENGTH)
    ctx = RunContext(seed=0, feature_loader=PlantedFeatures(train),
                     train_ids=frozenset(train.rows["sample_id"]))
    method.fit(train, ctx)
    return float((method.predict(sealed).labels == train.labels).mean())


LEARNS = {
    "mcnet supervised pre-training": ("mcnet", dict(pipelines="micro", prototypes="mean",
                                                    pretrain_epochs=30, meta_steps=0)),
    "mcnet meta-training": ("mcnet", dict(pipelines="micro", prototypes="mean",
                                          pretrain_epochs=0, meta_steps=30)),
    "mpfnet GFE triplet": ("mpfnet-p", dict(single_encoder=True, priors="gfe",
                                            triplet_epochs=5, meta_steps=0)),
    "mpfnet AFE magnification": ("mpfnet-p", dict(single_encoder=True, priors="afe",
                                                  afe_epochs=8, afe_lr=0.01, meta_steps=0)),
    "mpfnet meta-training": ("mpfnet-p", dict(single_encoder=True, priors="none",
                                              meta_steps=20)),
    "mpfnet-p all stages": ("mpfnet-p", dict(meta_steps=20)),
    "mpfnet-c all stages": ("mpfnet-c", dict(meta_steps=20)),
    "attr-contrast": ("attr-contrast", dict(epochs=20, lr=1e-3)),
    "ma2mi fine-tuning": ("ma2mi", dict(pretrain="none", epochs=20)),
    "lightmannet meta-training": ("lightmannet", dict(auxiliary=False, steps=60,
                                                      first_order=True, beta=1e-3)),
}

UNTRAINED = {
    "mcnet": ("mcnet", dict(pipelines="micro", prototypes="mean", pretrain_epochs=0,
                            meta_steps=0)),
    "mpfnet": ("mpfnet-p", dict(single_encoder=True, priors="none", meta_steps=0)),
    "attr-contrast": ("attr-contrast", dict(epochs=1, lr=0.0)),
    "ma2mi": ("ma2mi", dict(pretrain="none", epochs=1, lr=0.0)),
}


@pytest.mark.parametrize("stage", sorted(LEARNS))
def test_each_training_stage_fits_a_planted_signal(stage):
    name, overrides = LEARNS[stage]
    assert training_accuracy(name, **overrides) >= 0.9


@pytest.mark.parametrize("network", sorted(UNTRAINED))
def test_the_untrained_network_does_not_separate_the_planted_set(network):
    name, overrides = UNTRAINED[network]
    assert training_accuracy(name, **overrides) < 0.9


def test_episodic_training_leaves_batch_norm_statistics_of_the_training_data():
    """After meta-training, running statistics are those of the training inputs, not
    the lagging average over a few small episodes."""
    import torch
    from torch import nn

    from mer_bench.nn.training import EpisodicSchedule, episodic_train
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8))
    x = np.random.default_rng(0).normal(3.0, 2.0, (64, 1, 4, 4)).astype(np.float32)
    labels = np.arange(64) % 2
    episodic_train(encoder, x, labels, EpisodicSchedule(steps=3, k_shot=2, q_query=2, n_way=2,
                                                        tasks_per_batch=1, lr=0.01, scale=10.0),
                   np.random.default_rng(0), "cpu")
    with torch.no_grad():
        hidden = encoder[1](encoder[0](torch.from_numpy(x)))
    norm = encoder[2]
    assert not norm.training
    assert torch.allclose(norm.running_mean, hidden.mean(0), atol=1e-4)
