"""The method-adapter contract: ``Method``, its ``MethodConfig``, ``Prediction`` and
``RunContext``; plus the registry (decorator and the ``mer_bench.methods`` entry-point
group).

Contract (checked by ``mer-bench check-method`` and by the test suite for every
registered method):
- ``inputs`` names the features the runner materializes (a ``FeatureSpec`` or a tuple);
  ``SampleSet.features`` arrive in that order.
- ``fit(train, ctx)`` may read ``train.labels``; ``predict(test, support)`` must not read
  ``test.labels`` (they are hidden) and returns one class index per test row, plus
  optional scores (n_test, n_classes), larger = more likely.
- With a ``support`` set (few-shot episodes), predictions are among the support's classes.
- Same config and seed -> same predictions.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mer_bench.errors import MerBenchError
from mer_bench.features import FeatureSpec
from mer_bench.samples import SampleSet

if TYPE_CHECKING:
    from mer_bench.runner import AuxiliaryLoader, FeatureLoader

PRESETS = ("paper", "fast", "smoke")


@dataclass(frozen=True)
class MethodConfig:
    """Base of every adapter's config: fields hold the paper's defaults; ``PRESETS``
    maps preset name -> field overrides. A preset changes the method's budget (epochs,
    input size, episodes), never the data or the protocol."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides) -> "MethodConfig":
        if preset not in PRESETS:
            raise MerBenchError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        values = {**cls.PRESETS.get(preset, {}), **overrides}
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise MerBenchError(f"{cls.__name__}: unknown config fields {sorted(unknown)}; "
                                f"valid: {[f.name for f in fields(cls)]}")
        defaults = cls()
        for name, value in values.items():  # "-S channels=flow,diff" -> ("flow", "diff")
            if isinstance(getattr(defaults, name), tuple) and isinstance(value, str):
                values[name] = tuple(v.strip() for v in value.split(",") if v.strip())
        return replace(defaults, **values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Prediction:
    """``labels``: int64 (n,) class indices into the scheme's classes; ``scores``:
    float (n, n_classes) or None."""

    labels: np.ndarray
    scores: np.ndarray | None = None


@dataclass
class RunContext:
    """What the runner gives ``fit``: device (``cpu``/``cuda``), seed, preset, a scratch
    folder, the auxiliary datasets (``auxiliary("macro")`` -> a labelled ``SampleSet``
    with this method's inputs), a cache for fold-independent artefacts, and
    ``materialize`` for further features of the run's clips."""

    device: str = "cpu"
    seed: int = 0
    preset: str = "paper"
    scratch_dir: Path | None = None
    auxiliary_loader: AuxiliaryLoader | None = None
    artifact_dir: Path | None = None
    feature_loader: FeatureLoader | None = None
    _memory: dict = field(default_factory=dict)

    def materialize(self, spec: FeatureSpec, sample_ids: list[str]) -> np.ndarray:
        """More features of this run's clips (e.g. motion-magnified copies of the training
        clips), computed by the core operators through the feature cache: float32
        (len(sample_ids), ...)."""
        if self.feature_loader is None:
            raise MerBenchError("this run gives methods no access to further features")
        return self.feature_loader(spec, sample_ids)

    def auxiliary(self, kind: str = "macro") -> SampleSet:
        if self.auxiliary_loader is None:
            raise MerBenchError(f"no auxiliary {kind!r} dataset is configured for this run")
        return self.auxiliary_loader(kind)

    def auxiliary_fingerprint(self, kind: str = "macro") -> str:
        """Identity of the auxiliary dataset's source data (for artefact keys)."""
        if self.auxiliary_loader is None:
            raise MerBenchError(f"no auxiliary {kind!r} dataset is configured for this run")
        return self.auxiliary_loader.fingerprint(kind)

    def artifact(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()``'s value, computed once per ``key`` per run and reused across folds
        (and worker processes, through ``artifact_dir``). ``key`` must name everything
        the artefact depends on (config hash, data, seed)."""
        if key in self._memory:
            return self._memory[key]
        path = None
        if self.artifact_dir is not None:
            digest = hashlib.sha256(key.encode()).hexdigest()[:24]
            path = Path(self.artifact_dir) / f"{digest}.pkl"
            if path.exists():
                try:
                    self._memory[key] = pickle.loads(path.read_bytes())
                    return self._memory[key]
                except (pickle.UnpicklingError, EOFError, OSError):
                    pass  # a corrupt artefact is rebuilt
        value = build()
        if path is not None:
            from mer_bench.cache import atomic_write_bytes
            atomic_write_bytes(path, pickle.dumps(value))
        self._memory[key] = value
        return value


class Method(ABC):
    """Base of every adapter. Subclasses set ``Config`` and implement the three members
    below; ``name`` is set by ``@register_method``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig

    def __init__(self, config: MethodConfig | None = None):
        self.config = config if config is not None else self.Config()

    @property
    @abstractmethod
    def inputs(self) -> FeatureSpec | tuple[FeatureSpec, ...]:
        """The features the runner materializes for this method."""

    @abstractmethod
    def fit(self, train: SampleSet, ctx: RunContext) -> None:
        """Learn from ``train`` (labels visible)."""

    @abstractmethod
    def predict(self, test: SampleSet, support: SampleSet | None = None) -> Prediction:
        """Class indices for ``test`` (labels hidden); ``support`` is labelled."""

    def parameter_count(self) -> int:
        """Learned parameters (numbers) of the fitted model."""
        return sum(int(p.numel()) for m in self.torch_modules() for p in m.parameters())

    def model_bytes(self) -> int:
        """Size of the fitted model's parameters in bytes (pickle size when no torch)."""
        modules = self.torch_modules()
        if modules:
            return sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
        return len(pickle.dumps(self))

    def torch_modules(self) -> list:
        """The fitted torch modules (for counting, timing and device moves)."""
        return []

    @property
    def input_specs(self) -> tuple[FeatureSpec, ...]:
        return self.inputs if isinstance(self.inputs, tuple) else (self.inputs,)


def restrict_to_support(scores: np.ndarray, support: SampleSet | None) -> np.ndarray:
    """argmax of ``scores`` (n, C) over all classes, or over the support's classes only
    when a support set is given. Returns int64 (n,)."""
    if support is None:
        return scores.argmax(1).astype(np.int64)
    allowed = np.unique(support.labels)
    return allowed[scores[:, allowed].argmax(1)].astype(np.int64)


# --- registry -------------------------------------------------------------------------

_METHODS: dict[str, type[Method]] = {}
ENTRY_POINT_GROUP = "mer_bench.methods"


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: register an adapter under ``name`` (``mer-bench run --method``)."""

    def wrap(cls: type[Method]) -> type[Method]:
        if name in _METHODS and _METHODS[name] is not cls:
            raise MerBenchError(f"method name {name!r} is already registered by "
                                f"{_METHODS[name].__module__}")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return wrap


def _load_all() -> None:
    import mer_bench.methods  # noqa: F401  (registers the built-in adapters)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _METHODS:
            ep.load()


def method_names() -> list[str]:
    _load_all()
    return sorted(_METHODS)


def get_method_class(name: str) -> type[Method]:
    _load_all()
    if name not in _METHODS:
        raise MerBenchError(f"unknown method {name!r}; choose from {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def build_method(name: str, preset: str = "paper", **overrides) -> Method:
    """An adapter instance with the preset's config (plus ``overrides``)."""
    cls = get_method_class(name)
    return cls(cls.Config.from_preset(preset, **overrides))
