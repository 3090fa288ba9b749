"""LightmanNet: MMD², the bi-level inner/outer mechanics, test-time adaptation, ablations."""

import numpy as np
import pytest
import torch
from torch import nn

from mer_bench.checks import tiny_data
from mer_bench.context import AuxiliaryLoader, RunContext
from mer_bench.methods import build_method
from mer_bench.methods.lightmannet import LightmanNetModel
from mer_bench.nn import meta
from mer_bench.nn.alignment import gaussian_mmd2
from mer_bench.nn.batchnorm import recalibrate_batch_norm
from mer_bench.nn.meta import MetaAuxSchedule, inner_update, parameters_of, restricted_ce


def test_mmd2_is_near_zero_for_one_distribution_and_grows_with_a_mean_shift():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 8, generator=gen), torch.randn(400, 8, generator=gen)
    same = gaussian_mmd2(x, y).item()
    shifts = [gaussian_mmd2(x, y + shift).item() for shift in (0.5, 1.0, 2.0)]
    assert abs(same) < 0.01
    assert same < shifts[0] < shifts[1] < shifts[2]


class Linear(nn.Module):
    """A softmax classifier on 4 features (nonzero Hessian), no auxiliary output."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x), None


def _task(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 4, generator=gen)
    y = torch.arange(12) % 3
    return x, y, torch.arange(3)


def test_an_inner_step_changes_the_fast_weights_not_theta():
    torch.manual_seed(0)
    model = Linear()
    before = {k: v.detach().clone() for k, v in parameters_of(model).items()}
    x, y, classes = _task()
    fast = inner_update(model, parameters_of(model), x, y, classes, None, MetaAuxSchedule(),
                        create_graph=True)
    assert not torch.allclose(fast["fc.weight"], before["fc.weight"])
    assert all(torch.equal(v, before[k]) for k, v in parameters_of(model).items())


@pytest.mark.parametrize("first_order", [False, True])
def test_outer_gradient_goes_through_the_inner_step_only_in_second_order(first_order):
    torch.manual_seed(0)
    model = Linear()
    (xs, ys, classes), (xq, yq, _) = _task(0), _task(1)
    schedule = MetaAuxSchedule(first_order=first_order)
    fast = inner_update(model, parameters_of(model), xs, ys, classes, None, schedule,
                        create_graph=not first_order)
    query_loss = restricted_ce(torch.func.functional_call(model, fast, (xq,))[0], yq, classes)
    grad_theta = torch.autograd.grad(query_loss, model.fc.weight, retain_graph=True)[0]
    grad_fast = torch.autograd.grad(query_loss, fast["fc.weight"])[0]
    # first order: θ' = θ - α·const, so dL/dθ is dL/dθ'; second order adds -α·H·dL/dθ'
    assert torch.allclose(grad_theta, grad_fast) == first_order


def test_model_shapes_conv4_per_frame_then_temporal_kernel_six():
    model = LightmanNetModel(n_classes=5, frames=8, width=16, backbone="conv4", auxiliary=True)
    logits, aux = model(torch.randn(2, 3, 8, 32, 32))
    assert logits.shape == (2, 5) and aux.shape == (2, 48)
    assert model.temporal[0].kernel_size == (6, 3, 3)
    logits, aux = LightmanNetModel(3, 6, 16, "conv4", auxiliary=False)(torch.randn(2, 3, 6, 32, 32))
    assert logits.shape == (2, 3) and aux is None


def _fitted(**overrides):
    method = build_method("lightmannet", "smoke", **overrides)
    train, test, support = tiny_data(method.input_specs)
    aux = AuxiliaryLoader({"macro": "synth-ckplus"}, method.input_specs, None, 0)
    method.fit(train, RunContext(seed=0, auxiliary_loader=aux,
                                 train_ids=frozenset(train.rows["sample_id"])))
    return method, test, support


def test_test_time_adaptation_sees_the_support_never_the_query(monkeypatch):
    method, test, support = _fitted()
    seen = []
    original = meta.adapt

    def spy(model, x, labels, *args, **kwargs):
        seen.append((len(x), np.asarray(labels).copy()))
        return original(model, x, labels, *args, **kwargs)

    monkeypatch.setattr("mer_bench.methods.lightmannet.adapt", spy)
    prediction = method.predict(test, support)
    assert test.label_reads == []
    assert [n for n, _ in seen] == [len(support)]
    assert np.array_equal(seen[0][1], support.labels)
    assert set(prediction.labels.tolist()) <= set(support.labels.tolist())


@pytest.mark.parametrize("overrides", [{"auxiliary": False}, {"bilevel": False},
                                       {"backbone": "resnet18"}, {"first_order": True}])
def test_ablations_run(overrides):
    method, test, _ = _fitted(**overrides)
    assert method.predict(test).labels.shape == (len(test),)
    if overrides.get("backbone") == "resnet18":
        assert method.parameter_count() > 11_000_000


def _planted_clips(n=48, seed=0):
    """(n, 3, 6, 32, 32) clips whose class (3) is a bright patch in one of three places."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.normal(0, 1, (n, 3, 6, 32, 32)).astype(np.float32)
    for i, c in enumerate(labels):
        x[i, :, 2:, 4 + 8 * c:12 + 8 * c, 8:24] += 1.5
    return x, labels


def _accuracy(model, params, buffers, x, labels):
    with torch.no_grad():
        logits = torch.func.functional_call(model, (params, buffers), (torch.from_numpy(x),))[0]
    return float((logits.argmax(1).numpy() == labels).mean()), float(logits.abs().max())


def test_adaptation_on_its_own_training_clips_does_not_break_a_fitted_model():
    """The test-time step normalizes like the inner steps of training (batch statistics)
    and prediction uses statistics for the adapted weights: training accuracy and the
    logits' scale stay where they were (eval-mode adaptation took 0.99 to 0.45)."""
    torch.manual_seed(0)
    x, labels = _planted_clips()
    model = LightmanNetModel(3, 6, 8, "conv4", auxiliary=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(x))[0], torch.from_numpy(labels)).backward()
        optimizer.step()
    recalibrate_batch_norm(model, x, "cpu")
    before, scale = _accuracy(model, parameters_of(model), dict(model.named_buffers()), x, labels)
    assert before >= 0.9
    params, buffers = meta.adapt(model, x, labels, np.arange(3), MetaAuxSchedule(alpha=0.2), "cpu")
    after, adapted_scale = _accuracy(model, params, buffers, x, labels)
    assert after >= before - 0.05 and adapted_scale < 10 * scale


def test_an_outer_step_lowers_the_query_loss():
    torch.manual_seed(0)
    model = Linear()
    (xs, ys, classes), (xq, yq, _) = _task(0), _task(1)
    schedule = MetaAuxSchedule(alpha=0.1)

    def query_loss():
        fast = inner_update(model, parameters_of(model), xs, ys, classes, None, schedule, True)
        return restricted_ce(torch.func.functional_call(model, fast, (xq,))[0], yq, classes)

    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    start = query_loss()
    optimizer.zero_grad()
    start.backward()
    optimizer.step()
    assert query_loss().item() < start.item()


def test_meta_training_episodes_keep_a_rare_class():
    from mer_bench.nn.episodes import sample_training_episode, training_ways
    labels = np.array([0] * 20 + [1] * 20 + [2] * 3)  # class 2 has fewer than K + Q clips
    rng = np.random.default_rng(0)
    assert training_ways(labels, None) == 3
    episode = sample_training_episode(labels, 3, 5, 5, rng)
    rare = labels[episode.support] == 2, labels[episode.query] == 2
    assert rare[0].sum() == 2 and rare[1].sum() == 1  # K shrinks to n - 1, Q to what is left
    assert not set(episode.support) & set(episode.query)
