"""attr-contrast: AU cells in words, the cross-modal loss, the offline text encoder, the
video-only inference path, the 3D ResNets of Table I and the paper's CASME II scheme."""

import re
import socket

import numpy as np
import pandas as pd
import pytest
import torch
from torchvision.models.video import r3d_18

from mer_bench.checks import tiny_data
from mer_bench.context import RunContext
from mer_bench.data.datasets import load_dataset
from mer_bench.data.facs import au_sentence, parse_aus
from mer_bench.data.schemes import get_scheme
from mer_bench.errors import MerBenchError
from mer_bench.methods import attr_contrast, build_method
from mer_bench.nn import text
from mer_bench.nn.contrastive import cross_modal_contrastive_loss
from mer_bench.nn.resnets import VideoResNet3d


@pytest.mark.parametrize("cell, sentence", [
    ("4+L10", "brow lowerer, left upper lip raiser"),
    ("R12 or R14", "right lip corner puller or right dimpler"),
    ("A9E", "maximum nose wrinkler"),
    ("12/14", "lip corner puller or dimpler"),
    ("10A/B", "trace to slight upper lip raiser"),
    ("(R6 or R12)+R15", "right cheek raiser or right lip corner puller, "
                        "right lip corner depressor"),
    ("L1?+2", "left inner brow raiser, outer brow raiser"),
    ("12", "lip corner puller"),
    ("", ""),
])
def test_au_cells_as_the_sheets_write_them_become_sentences(cell, sentence):
    assert au_sentence(cell) == sentence


def test_au_parse_structure_and_errors_name_the_cell():
    (alternatives, single) = parse_aus("(R6 or R12)+R15")
    assert [(u.side, u.number) for u in alternatives] == [("R", 6), ("R", 12)]
    assert [(u.side, u.number) for u in single] == [("R", 15)]
    for bad in ("x12", "(12", "12 14"):
        with pytest.raises(MerBenchError, match=re.escape(f"AU cell {bad!r}")):
            au_sentence(bad)
    rows = pd.DataFrame({"sample_id": ["casme2/sub01/EP02_01f"], "aus": ["4+?x"]})
    with pytest.raises(MerBenchError, match="clip casme2/sub01/EP02_01f"):
        attr_contrast.attribute_sentences(rows)


def test_contrastive_loss_is_lower_for_aligned_than_for_shuffled_pairs():
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(16, 32, generator=gen)
    text_codes = video + 0.3 * torch.randn(16, 32, generator=gen)
    aligned = cross_modal_contrastive_loss(video, text_codes)
    shuffled = cross_modal_contrastive_loss(video, text_codes[torch.randperm(16, generator=gen)])
    assert aligned < shuffled
    # temperature 1 (the paper's exp(cosine)): the loss is bounded below by log(1 + 15 e^-2)
    assert aligned > np.log(1 + 15 * np.exp(-2.0))


def test_text_encoder_loads_and_embeds_with_networking_disabled(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    text.load_text_encoder.cache_clear()
    monkeypatch.setattr(text, "_EMBEDDINGS", {})
    smile, smile2, frown = text.embed_sentences(
        ["cheek raiser, lip corner puller", "lip corner puller, cheek raiser", "brow lowerer"])
    assert smile.shape == (384,)
    assert np.isclose(np.linalg.norm(smile), 1.0, atol=1e-5)
    assert smile @ smile2 > smile @ frown


def test_text_encoder_argument_must_be_a_local_model_folder(tmp_path):
    with pytest.raises(MerBenchError, match="config.json"):
        text.text_encoder_path(str(tmp_path))


def test_video_resnets_are_torchvisions_with_table_one_output_sizes():
    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(VideoResNet3d(18, 3, 128)) == count(r3d_18(num_classes=128))
    assert count(VideoResNet3d(10, 3, 128)) < count(VideoResNet3d(18, 3, 128)) \
        < count(VideoResNet3d(34, 3, 128))
    net = VideoResNet3d(10, 2, 128, width=4, temporal_stride=2)
    shapes = {}
    for name in ("stem", "layer2", "layer3", "layer4"):
        getattr(net, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[2:])))
    assert net(torch.randn(1, 2, 16, 112, 112)).shape == (1, 128)
    assert shapes == {"stem": (8, 56, 56), "layer2": (4, 28, 28), "layer3": (2, 14, 14),
                      "layer4": (1, 7, 7)}


def test_casme2_scheme_of_the_paper_keeps_sadness():
    dataset = load_dataset("synth-casme2")
    rows = get_scheme("casme2-5s", dataset.name).apply(dataset.samples)
    assert len(rows) == 154
    assert (rows["emotion"] == "sadness").sum() == 7


@pytest.fixture(scope="module")
def smoke_data():
    method = build_method("attr-contrast", "smoke")
    return tiny_data(method.input_specs)


def test_predict_uses_the_video_network_only(smoke_data, monkeypatch):
    train, test, _ = smoke_data
    method = build_method("attr-contrast", "smoke")
    method.fit(train, RunContext(seed=0))
    assert method.model.text_proj is not None and len(method.losses) == 1

    def no_text(*args, **kwargs):
        raise AssertionError("predict touched the attribute branch")

    monkeypatch.setattr(attr_contrast, "embed_sentences", no_text)
    monkeypatch.setattr(attr_contrast, "au_sentence", no_text)
    monkeypatch.setattr(method.model, "text_code", no_text)
    assert "aus" not in test.rows.columns
    prediction = method.predict(test)
    assert prediction.labels.shape == (len(test),)
    assert prediction.scores.shape == (len(test), test.n_classes)


def test_alpha_zero_is_the_video_only_ablation(smoke_data, monkeypatch):
    train, test, _ = smoke_data

    def no_text(*args, **kwargs):
        raise AssertionError("alpha=0 must not encode text")

    monkeypatch.setattr(attr_contrast, "embed_sentences", no_text)
    method = build_method("attr-contrast", "smoke", alpha=0.0)
    method.fit(train, RunContext(seed=0))
    assert method.model.text_proj is None
    assert method.predict(test).labels.shape == (len(test),)
