"""Every reference adapter's trainer can learn, shown out of sample: each training stage
alone is trained on a planted-signal set (the class is a brighter band at one of three
heights of every input, under unit noise; tests/helpers ``planted_sets``) and judged on
**held-out planted clips** (another noise draw, the same signal): at least
``HELD_OUT_BAR``. Beside it, a **no-signal control** trains the same stage on pure noise
(strength 0) and must stay near chance (below ``CONTROL_BAR``) on the same held-out
clips — 48 noise clips can be memorized (training accuracy 0.94-1.0 without any
signal), so training accuracy alone shows nothing. LightmanNet subtracts the onset frame
(``relative=True``), so its band grows over the frames (``growing``) instead of sitting
on every frame, where it would cancel. Stages that do not generalize at these settings
are expected failures with the measured figure. Untrained networks stay below the bar
on their own training clips."""

import numpy as np
import pytest

from mer_bench.context import RunContext
from mer_bench.methods import build_method
from tests.helpers import planted_sets

STRENGTH = 0.4
"""Band brightness in noise standard deviations: weak enough that untrained networks
miss the bar, strong enough to be learnt in seconds."""
HELD_OUT_BAR, CONTROL_BAR = 0.75, 0.6
"""Held-out accuracy a stage must reach with the signal (chance: 1/3; measured 0.83-1.0
for the stages that pass), and must stay under without it (measured 0.23-0.42)."""
GROWING = {"lightmannet"}
"""Adapters whose input is relative to the onset frame (the band must change over time)."""


class PlantedFeatures:
    """``ctx.materialize`` for a planted set: any further spec of a clip (MPFNet's
    magnified copies) is the clip's planted input itself."""

    def __init__(self, train):
        self.x = train.x

    def __call__(self, spec, sample_ids):
        return self.x[[int(s[1:]) for s in sample_ids]]


def fitted(name: str, strength: float, **overrides):
    """(the method trained on a planted set of ``strength``, that set)."""
    method = build_method(name, "smoke", **overrides)
    train, _ = planted_sets(method.input_specs, strength=strength, growing=name in GROWING)
    ctx = RunContext(seed=0, feature_loader=PlantedFeatures(train),
                     train_ids=frozenset(train.rows["sample_id"]))
    method.fit(train, ctx)
    return method, train


def held_out_accuracy(name: str, strength: float = STRENGTH, **overrides) -> float:
    """Accuracy on 48 held-out planted clips (noise seed 1, signal ``STRENGTH``) of the
    method trained on a set of ``strength`` (noise seed 0)."""
    method, _ = fitted(name, strength, **overrides)
    other, sealed = planted_sets(method.input_specs, strength=STRENGTH, seed=1,
                                 growing=name in GROWING)
    return float((method.predict(sealed).labels == other.labels).mean())


LEARNS = {
    "mcnet supervised pre-training": ("mcnet", dict(pipelines="micro", prototypes="mean",
                                                    pretrain_epochs=30, meta_steps=0)),
    "mcnet meta-training": ("mcnet", dict(pipelines="micro", prototypes="mean",
                                          pretrain_epochs=0, meta_steps=30)),
    "mpfnet GFE triplet": ("mpfnet-p", dict(single_encoder=True, priors="gfe",
                                            triplet_epochs=5, meta_steps=0)),
    "mpfnet AFE magnification": ("mpfnet-p", dict(single_encoder=True, priors="afe",
                                                  afe_epochs=8, meta_steps=0)),
    "mpfnet meta-training": ("mpfnet-p", dict(single_encoder=True, priors="none",
                                              meta_steps=20)),
    "mpfnet-p all stages": ("mpfnet-p", dict(meta_steps=20)),
    "mpfnet-c all stages": ("mpfnet-c", dict(meta_steps=20)),
    "attr-contrast": ("attr-contrast", dict(epochs=20, lr=1e-3)),
    "ma2mi fine-tuning": ("ma2mi", dict(pretrain="none", epochs=20)),
    "lightmannet meta-training": ("lightmannet", dict(auxiliary=False, steps=60,
                                                      first_order=True)),
}
"""Every stage at its recipe's own rates: the ``smoke`` sizes with the adapter's
learning rates (LightmanNet's β = 0.1, first-order as in ``fast``; MPFNet's AFE at the
paper's 0.001; attr-contrast at ``fast``'s 1e-3)."""


def _random_head(method) -> None:
    """MA2MI's head starts at zero (the paper's zero-initialized FC layer), so an
    untrained MIACNet would predict one class by construction; a seeded random head
    reads its untrained features instead."""
    import torch
    torch.manual_seed(0)
    method.head.reset_parameters()


UNTRAINED = {
    "mcnet": ("mcnet", dict(pipelines="micro", prototypes="mean", pretrain_epochs=0,
                            meta_steps=0), None),
    "mpfnet": ("mpfnet-p", dict(single_encoder=True, priors="none", meta_steps=0), None),
    "attr-contrast": ("attr-contrast", dict(epochs=1, lr=0.0), None),
    "ma2mi": ("ma2mi", dict(pretrain="none", epochs=1, lr=0.0), _random_head),
}
"""Each adapter's network, not trained (and its readout, not constant)."""


DOES_NOT_GENERALIZE = {
    "mcnet supervised pre-training": "memorizes the 48 clips: training accuracy 1.0, held-out "
                                     "0.56 (measured), control 0.40",
    "mpfnet AFE magnification": "at the recipe's afe_lr 0.001, 8 epochs: training accuracy "
                                "0.75, held-out 0.48 (measured), control 0.29 (at 0.01: 0.96 / "
                                "0.42 / 0.23)",
}
"""Stages measured not to generalize on the planted set at these settings (expected
failures: they fail loudly, ``strict``, the day they start to)."""


def _stages():
    return [pytest.param(stage, marks=pytest.mark.xfail(reason=DOES_NOT_GENERALIZE[stage],
                                                        strict=True))
            if stage in DOES_NOT_GENERALIZE else stage for stage in sorted(LEARNS)]


@pytest.mark.parametrize("stage", _stages())
def test_each_training_stage_learns_a_planted_signal_out_of_sample(stage):
    name, overrides = LEARNS[stage]
    assert held_out_accuracy(name, **overrides) >= HELD_OUT_BAR


@pytest.mark.parametrize("stage", sorted(LEARNS))
def test_without_a_signal_no_stage_gets_past_chance_out_of_sample(stage):
    """The control that makes the test above able to fail: trained on pure noise, the
    same stage stays near chance on the held-out planted clips."""
    name, overrides = LEARNS[stage]
    assert held_out_accuracy(name, strength=0.0, **overrides) < CONTROL_BAR


@pytest.mark.parametrize("network", sorted(UNTRAINED))
def test_the_untrained_network_does_not_separate_the_planted_set(network):
    assert untrained_accuracy(network)[0] < 0.9


def test_the_untrained_ma2mi_control_is_not_one_class_by_construction():
    accuracy, classes = untrained_accuracy("ma2mi")
    assert classes > 1 and accuracy < 0.9


def untrained_accuracy(network: str) -> tuple[float, int]:
    """(training accuracy, number of classes predicted) of ``UNTRAINED[network]``."""
    name, overrides, after = UNTRAINED[network]
    method, train = fitted(name, STRENGTH, **overrides)
    if after is not None:
        after(method)
    _, sealed = planted_sets(method.input_specs, strength=STRENGTH, growing=name in GROWING)
    predicted = method.predict(sealed).labels
    return float((predicted == train.labels).mean()), len(set(predicted.tolist()))


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
