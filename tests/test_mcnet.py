"""MCNet: meta-clustering, Eq. 4 weights, gamma chosen on training subjects only,
ResNet-18 parameter count with the fused 5-channel input."""

import numpy as np
import pytest
import torch

from mer_bench.checks import tiny_data
from mer_bench.context import RunContext
from mer_bench.methods import build_method
from mer_bench.nn.backbones import build_backbone
from mer_bench.nn.fusion import GAMMAS, choose_gamma, split_validation_subjects
from mer_bench.nn.prototypes import PrototypeClassifier, meta_cluster_prototypes
from mer_bench.nn.resnets import ResNet18
from mer_bench.report.reported import REPORTED
from mer_bench.runner import AuxiliaryLoader


def points(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_same_class_pairs_merge_until_the_closest_pair_differs():
    # class 0: three nearly parallel vectors and one far away; class 1: two vectors
    emb = points([1, 0.01], [1, 0.02], [1, 0.03], [0, 1], [-1, 0.5], [-1, 0.52])
    labels = torch.tensor([0, 0, 0, 0, 1, 1])
    protos, classes, weights = meta_cluster_prototypes(emb, labels)
    # merges: the class-0 triple and the class-1 pair; then the closest pair is
    # ([0, 1], class-1 cluster), cross-class, so clustering stops and the far class-0
    # sample stays a prototype of its own: class 0 gets two prototypes
    assert sorted(zip(classes.tolist(), weights.tolist())) == [(0, 1.0), (0, 3.0), (1, 2.0)]


def test_stops_at_the_first_cross_class_pair():
    # the globally closest pair is cross-class: nothing merges, every sample is a prototype
    emb = points([1, 0], [1, 0.001], [0, 1], [0.1, 1])
    labels = torch.tensor([0, 1, 0, 1])
    protos, classes, weights = meta_cluster_prototypes(emb, labels)
    assert len(protos) == 4 and weights.tolist() == [1, 1, 1, 1]


def test_merge_is_the_weighted_average_of_equation_4():
    # a, b merge first (weight 2, centre (a+b)/2); then c joins: (2*(a+b)/2 + c) / 3
    a, b, c, far = [2.0, 0.0], [2.0, 0.2], [2.0, 0.5], [-1.0, 3.0]
    protos, classes, weights = meta_cluster_prototypes(points(a, b, c, far),
                                                       torch.tensor([0, 0, 0, 1]))
    merged = protos[classes == 0][0]
    expected = (2 * (np.array(a) + np.array(b)) / 2 + np.array(c)) / 3
    assert merged.numpy() == pytest.approx(expected)
    assert weights[classes == 0].item() == 3.0


def test_multiple_prototypes_per_class_score_by_their_best():
    protos = points([1, 0], [0, 1], [-1, 0])
    clf = PrototypeClassifier(protos, torch.tensor([0, 0, 1]), n_classes=3, scale=1.0)
    scores = clf.scores(points([0, 1], [-1, 0.1]))
    assert scores[0, 0] == pytest.approx(1.0) and scores[1].argmax() == 1
    assert torch.isinf(scores[:, 2]).all()


def test_resnet18_parameter_count_with_fused_input():
    def count(m):
        return sum(p.numel() for p in m.parameters())
    assert count(ResNet18(3)) == 11_176_512          # torchvision resnet18 without fc
    stem_extra = 64 * (5 - 3) * 7 * 7
    assert count(ResNet18(5)) == 11_176_512 + stem_extra
    mcnet = build_method("mcnet", "paper")
    assert mcnet.inputs.n_channels == 5
    assert count(build_backbone("resnet18", mcnet.inputs.n_channels)) == 11_182_784


def test_gamma_grid_and_choice():
    assert GAMMAS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    micro = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.1]])
    macro = torch.tensor([[0.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
    # gamma <= 0.3 keeps sample 1 at class 0; 0.4 and up flips it to class 1
    assert choose_gamma(micro, macro, np.array([0, 0, 1])) == 0.1
    assert choose_gamma(micro, macro, np.array([0, 1, 1])) == 0.4


def test_validation_subjects_come_from_training_subjects_only():
    subjects = np.repeat(np.array(["a", "b", "c", "d", "e"]), 3)
    mask = split_validation_subjects(subjects, 0.2, seed=0)
    assert mask.sum() == 3 and len(set(subjects[mask])) == 1
    assert split_validation_subjects(subjects, 0.2, seed=0).tolist() == mask.tolist()


def test_gamma_never_sees_the_test_subjects():
    """Fitting twice with wildly different test sets gives the same gamma and
    validation subjects, and those subjects are training subjects."""
    method = build_method("mcnet", "smoke")
    train, test, _ = tiny_data(method.input_specs)
    aux = AuxiliaryLoader({"macro": "synth-ckplus"}, method.input_specs, None, 0)
    method.fit(train, RunContext(seed=0, auxiliary_loader=aux))
    assert set(method.val_subjects) <= set(train.subjects)
    assert not set(method.val_subjects) & set(test.subjects)
    assert test.label_reads == []
    assert set(method.n_prototypes()) == {"micro", "macro"}
    assert all(n >= 1 for n in method.n_prototypes().values())
    assert method.gamma in GAMMAS


@pytest.mark.parametrize("overrides", [{"prototypes": "mean"}, {"pipelines": "micro"},
                                       {"pipelines": "macro"}])
def test_ablations_run(overrides):
    method = build_method("mcnet", "smoke", **overrides)
    train, test, support = tiny_data(method.input_specs)
    aux = AuxiliaryLoader({"macro": "synth-ckplus"}, method.input_specs, None, 0)
    method.fit(train, RunContext(seed=0, auxiliary_loader=aux))
    prediction = method.predict(test)
    assert prediction.labels.shape == (len(test),)
    assert set(method.pipelines) == ({"micro", "macro"} if "pipelines" not in overrides
                                     else {overrides["pipelines"]})
    if overrides.get("prototypes") == "mean":
        assert all(n == len(np.unique(train.labels)) for n in method.n_prototypes().values())


def test_reported_numbers_are_recorded():
    assert {(r.dataset, r.accuracy, r.f1) for r in REPORTED if r.method == "mcnet"} == {
        ("smic-hs", 0.6563, 0.65), ("casme", 0.7027, 0.70), ("casme2", 0.8163, 0.81)}


def test_imagenet_prior_backbone_takes_the_fused_input():
    net = build_backbone("efficientnet-lite0", 5)
    assert net(torch.randn(2, 5, 48, 48)).shape == (2, 1280)
    stem = net.net._conv_stem.weight
    assert stem.shape[1] == 5 and torch.allclose(stem[:, 0], stem[:, 4])


def test_local_checkpoint_loads_with_a_widened_stem(tmp_path):
    source = ResNet18(3)
    path = tmp_path / "resnet18.pt"
    torch.save(source.state_dict(), path)
    net = build_backbone("resnet18", 5, checkpoint=str(path))
    assert torch.equal(net.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    expected = source.conv1.weight.mean(1) * 3 / 5
    assert torch.allclose(net.conv1.weight[:, 2], expected)
