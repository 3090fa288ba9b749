"""The MEGC2019 reference baselines: published network definitions, descriptor
invariants, the shared operators, and a trainer that can fit."""

import numpy as np
import pytest
import torch

from mer_bench.features import optical_strain
from mer_bench.features.descriptors import (
    LBP_BINS,
    bi_woof,
    lbp_top,
    orientation_histograms,
)
from mer_bench.nn.shallow import OffApexNet, STSTNet
from mer_bench.report.reported import REPORTED


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_ststnet_matches_its_published_definition():
    net = STSTNet(3, 3).eval()
    x = torch.randn(2, 3, 28, 28)
    assert net.streams[0](x).shape == (2, 16, 28, 28)  # Table I: C1-1..3 (3 + 5 + 8), "same"
    assert net.streams(x).shape == (2, 16, 10, 10)  # P1-1..3, 3x3 stride 3
    assert net.pool(net.streams(x)).shape == (2, 16, 5, 5)  # P2
    assert net.fc.in_features == 400 and net(x).shape == (2, 3)  # FC 400 -> 3
    assert _count(net.streams[0]) == 448 and _count(net.fc) == 1203 and _count(net) == 1683
    # one 16-filter convolution is the three streams' convolutions side by side
    conv = net.streams[0]
    for lo, hi in ((0, 3), (3, 8), (8, 16)):
        stream = torch.nn.Conv2d(3, hi - lo, 3, padding=1)
        stream.weight.data, stream.bias.data = conv.weight[lo:hi].clone(), conv.bias[lo:hi].clone()
        assert torch.allclose(stream(x), conv(x)[:, lo:hi], atol=1e-6)


def test_off_apexnet_matches_its_published_definition():
    net = OffApexNet(2, 3).eval()
    x = torch.zeros(2, 2, 28, 28)
    assert net.streams[0](x[:, :1]).shape == (2, 16, 7, 7)
    assert [m.out_features for m in net.head if isinstance(m, torch.nn.Linear)] == [1024, 1024, 3]
    assert net.head[0].in_features == 1568 and net(x).shape == (2, 3)
    assert _count(net) == 2_664_475


def test_optical_strain_of_rigid_motion_is_zero_and_of_stretch_is_not():
    y, x = np.mgrid[0:32, 0:32].astype(np.float32)
    translation = np.stack([np.full_like(x, 1.7), np.full_like(x, -0.4)])
    assert np.abs(optical_strain(translation)).max() == 0
    rotation = np.stack([-0.01 * (y - 16), 0.01 * (x - 16)])  # small rigid rotation
    assert np.abs(optical_strain(rotation)).max() < 1e-6
    stretch = np.stack([0.05 * x, np.zeros_like(x)])
    assert optical_strain(stretch) == pytest.approx(np.full((32, 32), 0.05), abs=1e-6)


def test_lbp_top_of_a_constant_video_is_one_bin_per_plane():
    hist = lbp_top(np.full((6, 20, 20), 128.0), grid=2)
    assert hist.shape == (4, 3, LBP_BINS)
    assert np.all((hist > 0).sum(-1) == 1) and np.allclose(hist.sum(-1), 1)
    moving = lbp_top(np.random.default_rng(0).integers(0, 255, (6, 20, 20)).astype(float), 2)
    assert np.all((moving > 0).sum(-1) > 5)


def test_rotating_the_flow_vectors_rotates_the_orientation_histogram():
    rng = np.random.default_rng(0)
    flow = rng.normal(size=(2, 16, 16))
    weights = np.hypot(*flow)
    rotated = np.stack([-flow[1], flow[0]])  # every vector turned by +90 degrees
    before = orientation_histograms(flow, weights, 2, 8)
    after = orientation_histograms(rotated, weights, 2, 8)
    assert after == pytest.approx(np.roll(before, 2, axis=1))  # 90 degrees = 2 of 8 bins


def test_bi_woof_rotates_with_the_whole_flow_field():
    """Turning the whole field by 90 degrees (positions and vectors) permutes the blocks
    and shifts every histogram by two bins; the strain weights are frame-indifferent."""
    rng = np.random.default_rng(1)
    flow = rng.normal(size=(2, 16, 16)).astype(np.float32)
    turned = np.stack([np.rot90(-flow[1]), np.rot90(flow[0])]).copy()
    grid, bins = 2, 8
    a = bi_woof(flow, grid, bins).reshape(grid * grid, bins).sum(0)
    b = bi_woof(turned, grid, bins).reshape(grid * grid, bins).sum(0)
    shifted = [np.roll(a, k) for k in range(bins)]
    assert any(np.allclose(b, s, rtol=1e-4) for s in shifted)
    assert not np.allclose(a, b)


def test_bi_woof_is_l2_normalized_per_clip_as_biwoof_m_ends():
    flow = np.random.default_rng(2).normal(size=(2, 16, 16)).astype(np.float32)
    assert np.linalg.norm(bi_woof(flow, 2, 8)) == pytest.approx(1.0, rel=1e-6)
    assert np.linalg.norm(bi_woof(3 * flow, 2, 8) - bi_woof(flow, 2, 8)) < 1e-2  # scale-free
    assert not np.any(bi_woof(np.zeros((2, 16, 16), np.float32), 2, 8))  # no motion: zeros


def _planted_maps(n=90, channels=3, seed=0):
    """28x28 maps whose class (3) is a bump at one of three places, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.normal(0, 1, (n, channels, 28, 28)).astype(np.float32)
    for i, c in enumerate(labels):
        x[i, :, 4 + 8 * c:10 + 8 * c, 8:20] += 2.0
    return x, labels


@pytest.mark.parametrize("name,channels", [("ststnet", 3), ("off-apexnet", 2)])
def test_scratch_trainer_overfits_a_planted_signal(name, channels):
    import pandas as pd

    from mer_bench.context import RunContext
    from mer_bench.data.samples import SampleSet
    from mer_bench.methods import build_method
    x, labels = _planted_maps(channels=channels)
    rows = pd.DataFrame({"sample_id": [f"c{i}" for i in range(len(x))], "subject": "s",
                         "label": labels})
    train = SampleSet.build(rows, (x,), ("a", "b", "c"), hide_labels=False)
    method = build_method(name, "paper", epochs=40, lr=3e-3, batch_size=32)
    method.fit(train, RunContext(seed=0, device="cpu"))
    assert method.losses[-1] < method.losses[0]
    hidden = SampleSet.build(rows, (x,), ("a", "b", "c"), hide_labels=True)
    assert (method.predict(hidden).labels == labels).mean() >= 0.9


def test_reported_rows_of_the_four_baselines_are_keyed_as_cde_runs():
    rows = {r.method: r for r in REPORTED if r.key == ("cde", "megc2019", "megc2019")}
    assert {"lbp-top", "bi-woof", "off-apexnet", "ststnet"} <= set(rows)
    assert rows["ststnet"].f1 == 0.7353 and rows["ststnet"].uar == 0.7605
    assert rows["lbp-top"].per_dataset["smic-hs"] == (0.2000, 0.5280)
