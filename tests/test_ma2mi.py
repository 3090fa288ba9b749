"""MA2MI / MIACNet: the position losses on hand-made maps, the C_Delta-conditioned DiT,
the zero-initialized head, pre-training that reads only the macro source and runs once,
checkpoints, and the folder:PATH macro source."""

import cv2
import numpy as np
import pytest
import torch

from mer_bench.checks import tiny_data
from mer_bench.cli import main
from mer_bench.context import AuxiliaryLoader, RunContext
from mer_bench.data.datasets import load_dataset
from mer_bench.data.synthetic.twins import SyntheticDataset
from mer_bench.errors import MerBenchError
from mer_bench.features import FramePairs
from mer_bench.methods import build_method
from mer_bench.methods.ma2mi import MIACNet
from mer_bench.nn.augment import apply_affine, random_affine
from mer_bench.nn.generative import ConditionalDiT
from mer_bench.nn.position import diversity_loss, equivariance_loss, matching_loss


def one_hot_maps(order):
    """(1, 4, 2, 2) map whose position k holds the unit vector e_order[k]."""
    maps = torch.zeros(1, 4, 4)
    maps[0, list(order), range(4)] = 1.0
    return maps.reshape(1, 4, 2, 2)


def test_diversity_loss_is_one_for_a_constant_map_and_zero_for_orthogonal_positions():
    assert diversity_loss(torch.ones(2, 8, 3, 3)).item() == pytest.approx(1.0)
    assert diversity_loss(one_hot_maps([0, 1, 2, 3])).item() == pytest.approx(0.0)


def test_matching_loss_rewards_one_to_one_matches_across_faces():
    # face 2 holds face 1's position features in another spatial order: every position
    # has a perfect match and no other similarity, the minimum -1
    perfect = matching_loss(one_hot_maps([0, 1, 2, 3]), one_hot_maps([2, 0, 3, 1]))
    assert perfect.item() == pytest.approx(-1.0)
    # constant maps: the best match is as similar as every other position, loss 0
    assert matching_loss(torch.ones(1, 4, 2, 2), torch.ones(1, 4, 2, 2)).item() \
        == pytest.approx(0.0)


def test_equivariance_loss_is_zero_for_an_equivariant_encoder_only():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 16, 16, generator=gen)
    theta = random_affine(3, 20.0, 0.2, True, gen)
    assert equivariance_loss(lambda x: 2 * x, images, theta).item() == pytest.approx(0, abs=1e-6)
    ramp = torch.linspace(0, 1, 16).expand(16, 16)
    assert equivariance_loss(lambda x: x + ramp, images, theta).item() > 0.05
    identity = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]).repeat(3, 1, 1)
    assert torch.allclose(apply_affine(images, identity), images, atol=1e-5)


def test_dit_starts_at_the_copy_baseline_and_learns_to_read_the_condition():
    """adaLN-Zero + residual: at initialization the prediction is the input latent (copy),
    whatever the condition; training on a condition-dependent change makes it read it."""
    torch.manual_seed(0)
    dit = ConditionalDiT(channels=4, sample_size=8, cond_dim=16, layers=1, heads=2,
                         head_dim=8, patch_size=2)
    latent = torch.randn(2, 4, 8, 8)
    a, b = torch.randn(2, 16), torch.randn(2, 16)
    assert torch.equal(dit(latent, a), latent) and torch.equal(dit(latent, b), latent)
    target = latent + a.mean(1)[:, None, None, None]
    optimizer = torch.optim.Adam(dit.parameters(), lr=1e-2)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.l1_loss(dit(latent, a), target).backward()
        optimizer.step()
    assert torch.nn.functional.l1_loss(dit(latent, a), target) < torch.nn.functional.l1_loss(latent, target)
    assert (dit(latent, a) - dit(latent, b)).abs().max() > 1e-3


def test_condition_vector_weights_action_by_position_and_detaches_it_on_request():
    torch.manual_seed(0)
    net = MIACNet(width=4).eval()
    onset = torch.rand(2, 3, 64, 64)
    later = onset.clone()
    later[..., :16, :16] += 0.2
    action = net.action.feature_maps((later - onset) * 2)
    position = net.position_maps(onset)
    condition = net.condition(onset, later)
    assert condition.shape == (2, 32)
    assert torch.allclose(condition, (action * (1 + position)).mean((2, 3)), atol=1e-6)
    assert (condition - action.mean((2, 3))).abs().max() > 1e-4   # E_p contributes
    for detach, position_learns in ((True, False), (False, True)):
        net.zero_grad()
        net.condition(onset, later, detach_position=detach).sum().backward()
        assert (net.position.conv1.weight.grad is not None) == position_learns
        assert net.action.conv1.weight.grad is not None
    without_position = MIACNet(width=4, position_encoder=False).eval()
    assert torch.allclose(without_position.condition(onset, later),
                          without_position.action.feature_maps((later - onset) * 2).mean((2, 3)))


@pytest.fixture(scope="module")
def smoke():
    method = build_method("ma2mi", "smoke")
    return tiny_data(method.input_specs)


def guard_micro_frames(monkeypatch):
    """Make every synthetic micro-expression clip unreadable; macro clips stay readable."""
    original = SyntheticDataset.frames

    def frames(self, sample_id, indices, size):
        kind = self.samples.loc[self.samples["sample_id"] == sample_id, "kind"].iloc[0]
        if kind != "macro":
            raise AssertionError(f"pre-training read micro clip {sample_id}")
        return original(self, sample_id, indices, size)

    monkeypatch.setattr(SyntheticDataset, "frames", frames)


class RefusingFeatures:
    def __call__(self, spec, sample_ids):
        raise AssertionError("pre-training asked for features of micro clips")


def macro_context(tmp_path, method):
    aux = AuxiliaryLoader({"macro": "synth-ckplus"}, method.input_specs, None, 0)
    return RunContext(seed=0, auxiliary_loader=aux, artifact_dir=tmp_path / "artifacts",
                      feature_loader=RefusingFeatures())


def test_pretraining_reads_only_the_macro_source_and_runs_once(smoke, tmp_path, monkeypatch):
    train, test, _ = smoke
    guard_micro_frames(monkeypatch)
    method = build_method("ma2mi", "smoke")
    calls = []
    build = method._pretrain_reconstruction
    monkeypatch.setattr(method, "_pretrain_reconstruction", lambda ctx: calls.append(1) or build(ctx))
    state = method.pretrained_state(macro_context(tmp_path, method))
    assert calls == [1] and set(state) == {"miacnet", "losses", "reconstruction"}
    assert state["reconstruction"].shape == (3,)  # own C_Δ, shuffled C_Δ, copy baseline
    method.fit(train, macro_context(tmp_path, method))    # a new run: the cached artefact
    assert calls == [1]
    stage = method.diagnostics()["pre-training (reconstruction)"]
    assert stage["reconstruction_l1_copy_baseline"] == pytest.approx(float(state["reconstruction"][2]))
    assert method.predict(test).labels.shape == (len(test),)


def test_the_linear_head_starts_at_zero(smoke, monkeypatch):
    train, _, _ = smoke
    method = build_method("ma2mi", "smoke", pretrain="none")
    seen = {}
    monkeypatch.setattr(type(method), "_train_classifier",
                        lambda self, miac, head, *a, **k: seen.update(
                            w=head.weight.detach().clone(), b=head.bias.detach().clone()) or [])
    method.fit(train, RunContext(seed=0))
    assert torch.count_nonzero(seen["w"]) == 0 and torch.count_nonzero(seen["b"]) == 0


def test_pretrain_command_writes_a_checkpoint_that_runs_load(smoke, tmp_path, capsys):
    out = tmp_path / "ma2mi.pt"
    assert main(["pretrain", "--method", "ma2mi", "--preset", "smoke", "--cache-dir",
                 str(tmp_path / "cache"), "--output", str(out)]) == 0
    assert "pretrained=" in capsys.readouterr().out
    train, test, _ = smoke
    method = build_method("ma2mi", "smoke", pretrained=str(out))
    method.fit(train, RunContext(seed=0))                 # no macro source needed
    saved = torch.load(out, weights_only=True)["miacnet"]["action.conv1.weight"]
    assert saved.shape == method.miac.action.conv1.weight.shape
    wrong = build_method("ma2mi", "smoke", pretrained=str(out), width=8)
    with pytest.raises(MerBenchError, match="do not fit width=8"):
        wrong.fit(train, RunContext(seed=0))
    with pytest.raises(MerBenchError, match="no such file"):
        build_method("ma2mi", "smoke", pretrained=str(tmp_path / "no.pt")).fit(
            train, RunContext(seed=0))
    source = torch.load(out, weights_only=True)["source"]
    assert source["macro"] == "synth-ckplus" and source["synthetic"] is True
    assert method.pretrained_source() == source
    # a run that loads it is checked and recorded against the checkpoint's source
    from mer_bench.context import macro_source
    from mer_bench.data.datasets import load_dataset
    assert macro_source("synth-smic", load_dataset("synth-samm"), 0, source) == source
    with pytest.raises(MerBenchError, match="is \\(part of\\) the target dataset"):
        macro_source("synth-ckplus", load_dataset("synth-samm"), 0,
                     {**source, "macro": "synth-samm"})
    bare = {k: v for k, v in torch.load(out, weights_only=True).items() if k != "source"}
    torch.save(bare, tmp_path / "bare.pt")
    with pytest.raises(MerBenchError, match="records no macro source"):
        build_method("ma2mi", "smoke", pretrained=str(tmp_path / "bare.pt")).pretrained_source()


def test_pretrain_refuses_a_macro_source_with_micro_expressions(tmp_path, capsys):
    assert main(["pretrain", "--method", "ma2mi", "--preset", "smoke", "--macro-dataset",
                 "synth-samm", "--output", str(tmp_path / "x.pt")]) == 2
    assert "are not macro-expressions" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_folder_macro_source_reads_frame_folders_and_videos(tmp_path):
    ck = load_dataset("synth-ckplus")
    sid = ck.samples["sample_id"].iloc[0]
    n = int(ck.samples["n_frames"].iloc[0])
    frames = ck.frames(sid, np.arange(n), 64)
    clip = tmp_path / "videos" / "person1" / "clip_a"
    clip.mkdir(parents=True)
    for k, frame in enumerate(frames):
        cv2.imwrite(str(clip / f"frame{k:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer = cv2.VideoWriter(str(tmp_path / "videos" / "solo.avi"),
                             cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 64))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    (tmp_path / "videos" / "notes.txt").write_text("not a clip")

    dataset = load_dataset(f"folder-cropped:{tmp_path / 'videos'}")
    rows = dataset.samples.set_index("clip")
    assert set(rows.index) == {"person1/clip_a", "solo.avi"}
    assert rows.loc["person1/clip_a", "subject"] == "folder/person1"
    assert (rows["n_frames"] == n).all() and (rows["emotion"] == "unlabelled").all()
    read = dataset.frames(rows.loc["person1/clip_a", "sample_id"], np.array([0, n - 1]), 64)
    assert np.abs(read.astype(int) - frames[[0, n - 1]].astype(int)).max() <= 1
    pairs = FramePairs(size=32, pairs=2).compute(dataset, dataset.samples.iloc[0])
    assert pairs.shape == (2, 2, 3, 32, 32)
    with pytest.raises(MerBenchError, match="is not a folder"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
