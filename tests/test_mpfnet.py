"""MPFNet: sequence features, CA-I3D shapes, coordinate attention, the magnified set,
the triplet loss, gamma chosen on training subjects only."""

import copy

import numpy as np
import pytest
import torch

from mer_bench.checks import tiny_data
from mer_bench.context import RunContext
from mer_bench.data.datasets import load_dataset
from mer_bench.data.schemes import get_scheme
from mer_bench.errors import MerBenchError
from mer_bench.features import (
    OnsetApexSequence,
    magnify_frames,
    optical_flow,
    resample_frames,
    synthesize_frames,
)
from mer_bench.methods import build_method
from mer_bench.methods.mpfnet import Cascade, magnification_plan
from mer_bench.nn.backbones import CAI3D, CoordinateAttention3d
from mer_bench.nn.training import (
    ChannelStandardizer,
    Execution,
    accumulated_backward,
    triplet_loss,
)
from mer_bench.runner import FeatureLoader
from tests.helpers import shifted_pair


def test_resample_interpolates_between_neighbours():
    frames = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (0, 100)])
    out = resample_frames(frames, 5)
    assert out.shape == (5, 2, 2, 3)
    assert out[:, 0, 0, 0].tolist() == [0, 25, 50, 75, 100]


def test_flow_synthesis_runs_from_onset_to_apex():
    onset, apex = shifted_pair(2.0, 0.0)
    frames = synthesize_frames(onset, apex, 5, "farneback")
    assert np.array_equal(frames[0], onset)
    half = optical_flow(onset, frames[2], "farneback")[:, 16:48, 16:48].mean((1, 2))
    assert half == pytest.approx([1.0, 0.0], abs=0.2)


def test_magnification_scales_the_motion():
    onset, apex = shifted_pair(0.5, -0.25)
    magnified = magnify_frames(np.stack([onset, apex]), phi=3, method="farneback")
    flow = optical_flow(magnified[0], magnified[1], "farneback")[:, 16:48, 16:48].mean((1, 2))
    assert flow == pytest.approx([2.0, -1.0], abs=0.25)  # (1 + 3) x the original shift


def test_sequence_spec_shape_and_magnified_variant():
    ds = load_dataset("synth-casme2")
    row = ds.samples.iloc[0]
    x = OnsetApexSequence(length=11, size=32).compute(ds, row)
    assert x.shape == (5, 10, 32, 32) and x.dtype == np.float32
    assert (x[2:] >= 0).all()  # absolute frame differences
    flow_only = OnsetApexSequence(length=6, size=32, channels=("flow",)).compute(ds, row)
    assert flow_only.shape == (2, 5, 32, 32)
    big = OnsetApexSequence(length=6, size=32, magnification=6.0).compute(ds, row)
    small = OnsetApexSequence(length=6, size=32).compute(ds, row)
    assert np.abs(big[:2]).mean() > 2 * np.abs(small[:2]).mean()


def test_cai3d_shapes_at_paper_width():
    net = CAI3D(in_channels=5, embed_dim=512, width=1.0).eval()
    x = torch.randn(1, 5, 10, 32, 32)
    with torch.no_grad():
        fmap = net.feature_map(x)
        assert fmap.shape == (1, 480, 10, 8, 8)  # two (1,2,2) pools, Mixed_3c widths
        assert net(x).shape == (1, 512)
    assert net.mixed_3b.out_channels == 256


def test_coordinate_attention_preserves_shape_and_gates_by_position():
    torch.manual_seed(0)
    ca = CoordinateAttention3d(16).eval()
    x = torch.rand(2, 16, 4, 6, 8) + 0.1
    y = ca(x)
    assert y.shape == x.shape
    ratio = y / x
    assert (ratio > 0).all() and (ratio < 1).all()  # products of sigmoid gates
    assert ratio[0, 0, :, 0, 0].std() > 0 and ratio[0, 0, 0, 0, :].std() > 0


def test_magnification_plan_balances_classes():
    counts = {0: 88, 1: 32, 2: 25}  # CASME II in MEGC2019 (Table I: 1~4, 1~12, 1~14)
    plan = magnification_plan(counts, phi_base=4, phi_max=14)
    assert plan[0] == [1, 2, 3, 4] and max(plan[2]) == 14 and max(plan[1]) in (12, 13)
    sizes = {c: n * (1 + len(plan[c])) for c, n in counts.items()}
    assert sizes[0] == 440 and max(sizes.values()) / min(sizes.values()) < 1.25
    capped = magnification_plan({0: 92, 1: 15}, phi_base=3, phi_max=14)
    assert capped[1] == list(range(1, 15))  # SAMM's surprise hits the cap


def test_magnified_set_sizes_follow_the_plan():
    method = build_method("mpfnet-p", "smoke")
    train, _, _ = tiny_data(method.input_specs)
    ctx = RunContext(seed=0, feature_loader=FeatureLoader("synth-casme2", 0, None),
                     train_ids=frozenset(train.rows["sample_id"]))
    x, labels = method.magnified_set(train, ctx)
    counts = {int(c): int(n) for c, n in zip(*np.unique(train.labels, return_counts=True))}
    plan = magnification_plan(counts, method.config.phi_base, method.config.phi_max)
    assert len(x) == sum(n * (1 + len(plan[c])) for c, n in counts.items())
    assert x.shape[1:] == train.x.shape[1:]
    assert np.bincount(labels).tolist() == [counts[c] * (1 + len(plan[c])) for c in sorted(counts)]


def test_triplet_loss_on_hand_made_embeddings():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 0.1]])
    n = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    # first: 1 - 1 + 0.5 = 0.5; second: 0.01 - 9 + 0.5 < 0 -> 0
    assert triplet_loss(a, p, n, margin=0.5).item() == pytest.approx(0.25)


@pytest.mark.parametrize("name", ["mpfnet-p", "mpfnet-c"])
def test_gamma_and_encoders_never_see_test_subjects(name):
    method = build_method(name, "smoke")
    train, test, _ = tiny_data(method.input_specs)
    ctx = RunContext(seed=0, feature_loader=FeatureLoader("synth-casme2", 0, None),
                     train_ids=frozenset(train.rows["sample_id"]))
    method.fit(train, ctx)
    assert set(method.val_subjects) <= set(train.subjects)
    assert not set(method.val_subjects) & set(test.subjects)
    assert len(method.encoders) == (2 if name == "mpfnet-p" else 1)
    assert method.predict(test).labels.shape == (len(test),)
    assert test.label_reads == []


@pytest.mark.parametrize("priors", ["none", "gfe", "afe"])
def test_prior_ablations_run(priors):
    method = build_method("mpfnet-c", "smoke", priors=priors)
    train, test, _ = tiny_data(method.input_specs)
    method.fit(train, RunContext(seed=0, feature_loader=FeatureLoader("synth-casme2", 0, None),
                     train_ids=frozenset(train.rows["sample_id"])))
    assert method.predict(test).labels.shape == (len(test),)


def test_channel_ablation_from_the_command_line_form():
    assert build_method("mpfnet-c", "smoke", channels="diff").inputs.n_channels == 3
    assert build_method("mpfnet-p", "smoke", channels="flow,diff").inputs.channels == ("flow", "diff")


def test_triplet_positive_is_never_the_anchor():
    from mer_bench.nn.training import sample_triplets
    labels = np.array([0, 0, 1, 1, 1, 2])  # class 2 has a single clip
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, p, n = sample_triplets(np.arange(6), labels, by_class, rng)
        assert 5 not in a.tolist() and len(a) == len(p) == len(n) == 5
        assert np.all(p != a) and np.all(labels[p] == labels[a]) and np.all(labels[n] != labels[a])


def test_fixed_gamma_and_a_grid_from_zero():
    from mer_bench.nn.fusion import GAMMAS_FROM_ZERO, choose_gamma
    assert GAMMAS_FROM_ZERO[0] == 0.0 and GAMMAS_FROM_ZERO[-1] == 1.0
    first = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    harmful = torch.tensor([[0.0, 9.0], [9.0, 0.0]])
    assert choose_gamma(first, harmful, np.array([0, 1]), GAMMAS_FROM_ZERO) == 0.0
    method = build_method("mpfnet-p", "smoke", gamma=0.7)
    train, test, _ = tiny_data(method.input_specs)
    method.fit(train, RunContext(seed=0, feature_loader=FeatureLoader("synth-casme2", 0, None),
                                 train_ids=frozenset(train.rows["sample_id"])))
    assert method.gamma == 0.7 and method.val_subjects == []


def test_frozen_gfe_keeps_its_batch_norm_statistics_in_the_cascade_afe_stage():
    method = build_method("mpfnet-c", "smoke", priors="afe")
    train, _, _ = tiny_data(method.input_specs)
    method.standardize = ChannelStandardizer.fit(train.x)
    method.device = "cpu"
    gfe = method._new_cai3d(train.x.shape[1])
    afe = method._new_cai3d(train.x.shape[1] + method.config.cascade_channels)
    cascade = Cascade(gfe, afe, torch.nn.Conv3d(gfe.map_channels, method.config.cascade_channels, 1))
    before = {k: v.clone() for k, v in gfe.state_dict().items()}
    afe_before = [p.detach().clone() for p in afe.parameters()]
    cascade.gfe_frozen = True
    ctx = RunContext(seed=0, feature_loader=FeatureLoader("synth-casme2", 0, None),
                     train_ids=frozenset(train.rows["sample_id"]))
    method._pretrain_afe(cascade, list(afe.parameters()), train, ctx)
    assert all(torch.equal(v, before[k]) for k, v in gfe.state_dict().items())  # BN stats too
    assert any(not torch.equal(p, q) for p, q in zip(afe.parameters(), afe_before))


def test_table_one_ranges_and_totals_come_out_as_printed():
    """MPFNet Table I: phi ranges per dataset and the amplified set sizes, from the
    official class counts (the twins have them)."""
    classes = ("negative", "positive", "surprise")
    printed = {"smic-hs": ([8, 12, 14], [630, 663, 645]), "casme2": ([4, 12, 14], [440, 416, 375]),
               "samm": ([3, 9, 14], [368, 260, 225])}
    composite = get_scheme("megc2019", "synth-megc2019").apply(load_dataset("synth-megc2019").samples)
    totals = np.zeros(3, int)
    for source, part in composite.groupby("dataset"):
        counts = {int(c): int(n) for c, n in zip(*np.unique(part["label"], return_counts=True))}
        plan = magnification_plan(counts, phi_base=4, phi_max=14, dataset=source, classes=classes)
        ranges, sizes = printed[source.removeprefix("synth-").replace("smic", "smic-hs")]
        assert [max(plan[c]) for c in range(3)] == ranges and all(plan[c][0] == 1 for c in range(3))
        assert [counts[c] * (1 + len(plan[c])) for c in range(3)] == sizes
        totals += sizes
    assert totals.tolist() == [1438, 1339, 1245]  # the MEGC2019-CD column
    # phi_max caps the table (the fast preset's budget); unlisted schemes use the rule
    assert max(magnification_plan({0: 88, 1: 32, 2: 25}, 2, 6, "casme2", classes)[2]) == 6
    assert magnification_plan({0: 10, 1: 5}, 1, 14, "casme2", ("happiness", "others")) == \
        magnification_plan({0: 10, 1: 5}, 1, 14)


def _grads(model):
    return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}


def test_checkpointing_and_accumulation_match_the_plain_path_at_paper_width():
    """Same micro-batch split (batch norm sees each part alone in both): the loss, every
    gradient and the batch-norm running statistics agree."""
    torch.manual_seed(0)
    plain = CAI3D(5, 512, width=1.0).train()
    fancy = copy.deepcopy(plain)
    fancy.checkpointing = True
    x, target = torch.randn(4, 5, 4, 16, 16), torch.randn(4, 512)
    parts = [np.array([0, 1]), np.array([2, 3])]

    def loss_of(model):
        return lambda idx: (model(x[idx]) - target[idx]).pow(2).mean()

    plain_loss = sum(loss_of(plain)(p) * 0.5 for p in parts)
    plain_loss.backward()
    fancy_loss = accumulated_backward(loss_of(fancy), np.arange(4), Execution(micro_batch=2), "cpu")
    assert fancy_loss == pytest.approx(float(plain_loss.detach()), rel=1e-5)
    reference, accumulated = _grads(plain), _grads(fancy)
    assert reference.keys() == accumulated.keys() and len(reference) > 50
    for name, grad in reference.items():
        assert torch.allclose(accumulated[name], grad, rtol=1e-4, atol=1e-6), name
    for (name, a), b in zip(plain.named_buffers(), fancy.buffers()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_micro_batches_keep_the_paper_batch_and_can_be_switched_off():
    calls = []
    index = np.arange(128)

    def loss_of(idx):
        calls.append(len(idx))
        return torch.tensor(1.0, requires_grad=True)

    assert accumulated_backward(loss_of, index, Execution(micro_batch=32), "cpu") == \
        pytest.approx(1.0)
    assert calls == [32] * 4
    calls.clear()
    accumulated_backward(loss_of, index, Execution(micro_batch=0), "cpu")
    assert calls == [128]
    calls.clear()                                        # four episodes, one per part
    accumulated_backward(loss_of, np.arange(4), Execution(micro_batch=1), "cpu", min_part=1)
    assert calls == [1, 1, 1, 1]
    paper = build_method("mpfnet-c", "paper")
    assert (paper.config.micro_batch, paper.config.checkpointing, paper.config.amp) == (32, True, True)
    off = build_method("mpfnet-c", "paper", amp=False, checkpointing=False, micro_batch=0)
    off.device = "cpu"
    assert off.execution == Execution(0, False) and not off._new_cai3d(5).checkpointing


@pytest.mark.parametrize("priors", ["none", "gfe", "afe"])
def test_single_encoder_ablation_of_table_four(priors, monkeypatch):
    import mer_bench.methods.mpfnet as mpfnet
    stages = []
    monkeypatch.setattr(mpfnet, "triplet_train", lambda *a, **k: stages.append("triplet") or [])
    monkeypatch.setattr(mpfnet.MPFNet, "_pretrain_afe", lambda *a, **k: stages.append("afe") or [])
    method = build_method("mpfnet-p", "smoke", single_encoder=True, priors=priors)
    train, test, _ = tiny_data(method.input_specs)
    method.fit(train, RunContext(seed=0))
    assert len(method.encoders) == 1 and method.val_subjects == []
    assert stages == {"none": [], "gfe": ["triplet"], "afe": ["afe"]}[priors]
    assert method.predict(test).labels.shape == (len(test),)
    with pytest.raises(MerBenchError, match="one prior or none"):
        build_method("mpfnet-p", "smoke", single_encoder=True, priors="both")
