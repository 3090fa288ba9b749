"""The method-adapter contract: ``Method``, its ``MethodConfig``, ``Prediction`` and
``RunContext``; plus ``register_method``, the decorator that fills the registry
(lookups by name live in ``mer_bench.methods``, which also loads the ``mer_bench.methods``
entry-point group).

Contract (checked by ``mer-bench check-method`` and by the test suite for every
registered method):
- ``inputs`` names the features the runner materializes (a ``FeatureSpec`` or a tuple);
  ``SampleSet.features`` arrive in that order.
- ``fit(train, ctx)`` may read ``train.labels``; ``predict(test, support)`` must not read
  ``test.labels`` (they are hidden) and returns one class index per test row, plus
  optional scores (n_test, n_classes), larger = more likely.
- With a ``support`` set (few-shot episodes), predictions are among the support's classes.
- Same config and seed -> same predictions.
- ``tasks`` says what it predicts: ``emotion`` (every adapter) and/or ``au`` (AU
  detection: ``train.au_targets`` is (n, A) 0/1; ``predict`` answers ``au_prediction``
  of (n, A) scores, an AU present where its score is > 0).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import types
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

import numpy as np

from mer_bench.context import RunContext
from mer_bench.data.samples import SampleSet
from mer_bench.errors import MerBenchError
from mer_bench.features import FeatureSpec

PRESETS = ("paper", "fast", "smoke")
BUDGET_FIELDS = frozenset({"frames", "length", "pairs", "tasks_per_batch", "k_shot", "q_query",
                           "episodes", "amp", "checkpointing", "micro_batch"})
"""Config fields that set a run's budget or execution rather than the method's recipe,
beside every field whose name ends in ``epochs``, ``steps``, ``batch`` or ``batch_size``:
how long it trains, how much data per step (frames, pairs, episodes), and how a step is
executed (mixed precision, activation checkpointing, gradient accumulation). The input
size in pixels (``size``, ``compute_size``) is not among them: it changes what the
method sees (at 64 px MA2MI's position map is 2 x 2), so a preset that shrinks it
departs from the recipe and says so."""


SOURCE_FIELDS = ("pretrained", "checkpoint")
"""Config fields that name a weights file (recorded with its sha256, not as a departure)."""
PIXEL_FIELDS = ("size", "compute_size")
MAX_PIXELS = 1024
"""Largest input side in pixels any config may ask for (the papers use 64-256; a typo
such as ``-S size=1000000`` would ask for terabytes), whatever ``RANGES`` says."""


@dataclass(frozen=True)
class PaperValue:
    """One entry of an adapter's paper record: the paper's ``value``, ``where`` the paper
    gives it (section, table, equation), and, for a built-in departure, what ``ran``."""

    value: Any
    where: str
    ran: Any = None


def _plain_value(value: Any) -> Any:
    """Tuples and lists compare alike (a config holds tuples, a record may hold lists)."""
    return list(value) if isinstance(value, (tuple, list)) else value


def is_length_field(name: str) -> bool:
    """How long training runs (epochs, steps): the budget a preset cuts, never a recipe
    departure, even where the paper states it."""
    return name.endswith(("epochs", "steps"))


def is_budget_field(name: str) -> bool:
    return name in BUDGET_FIELDS or name.endswith(("epochs", "steps", "batch", "batch_size"))


@dataclass(frozen=True)
class MethodConfig:
    """Base of every adapter's config: fields hold the paper's defaults; ``PRESETS``
    maps preset name -> field overrides. A preset changes the method's budget (epochs,
    input size, episodes), never the data or the protocol."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    GPU_PRESETS: ClassVar[tuple[str, ...]] = ()
    """Presets sized for a GPU: on a CPU the run says so up front and prints an estimate
    measured from the first training steps."""
    PAPER: ClassVar[dict[str, PaperValue]] = {}
    """The adapter's record of what its paper fixes: field -> the paper's value and where
    the paper says it. A config whose field differs departs from the recipe whatever the
    field's name (MPFNet's clip length L = 11, its episode and batch sizes); where the
    adapter's own ``paper`` default cannot follow the paper (LightmanNet's onset-relative
    frames, MCNet's scaled softmax) every row records the departure."""
    BUILT_IN: ClassVar[dict[str, PaperValue]] = {}
    """Departures no config field can undo (weights or learned components that cannot be
    had offline): name -> the paper's choice and where it says it, with ``ran`` saying
    what runs instead. Recorded in every row's departures."""
    NOT_SPECIFIED: ClassVar[tuple[str, ...]] = ()
    """Fields the paper leaves open (our choice, in the docstring): listed in a result
    apart from the departures, as "not specified by the paper"."""
    RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = {}
    """Declared ranges of numeric fields: name -> (low, high), inclusive, None = open.
    Every field is also checked against its annotated type (``from_preset``)."""

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
        config = replace(defaults, **values)
        config.validate(set(values))
        return config

    @classmethod
    def recipe_departures(cls, preset: str) -> dict[str, dict[str, Any]]:
        """``departures`` of ``preset`` as it stands (no ``-S``)."""
        return cls.from_preset(preset).departures()

    def departures(self) -> dict[str, dict[str, Any]]:
        """What this config — a preset plus every ``-S`` override, the config that ran —
        changes from its paper's recipe: field -> {"paper", "ran"} (and "where" the paper
        says it). A field of the record (``PAPER``) departs when it differs from the
        paper's value, whatever its name (batch sizes, tasks per batch, clip length), but
        for how long training runs (``is_length_field``: epochs, steps), which is the
        budget a preset cuts; any other field that is not budget
        (``is_budget_field``) or open (``NOT_SPECIFIED``) departs when it differs from the
        ``paper`` config; ``built_in`` departures are always there. Weight-file fields
        (``SOURCE_FIELDS``) are recorded with their sha256 instead. A preset should only
        cut the budget; anything else that differs (a learning rate, a width, a clip
        length the paper chose) is written into the result and shown on the board."""
        paper = type(self).from_preset("paper")
        found = {}
        for f in fields(self):
            ran = getattr(self, f.name)
            if f.name in SOURCE_FIELDS or f.name in self.NOT_SPECIFIED:
                continue
            if f.name in self.PAPER:
                fixed = self.PAPER[f.name]
                if _plain_value(ran) != _plain_value(fixed.value) and not is_length_field(f.name):
                    found[f.name] = {"paper": fixed.value, "ran": ran, "where": fixed.where}
            elif not is_budget_field(f.name) and ran != getattr(paper, f.name):
                found[f.name] = {"paper": getattr(paper, f.name), "ran": ran}
        return found | self.built_in()

    def built_in(self) -> dict[str, dict[str, Any]]:
        """``BUILT_IN`` as departures: name -> {"paper", "ran", "where", "built_in"}."""
        return {name: {"paper": v.value, "ran": v.ran, "where": v.where, "built_in": True}
                for name, v in self.BUILT_IN.items()}

    def not_specified(self) -> dict[str, Any]:
        """The open fields (``NOT_SPECIFIED``) with the values that ran."""
        return {name: getattr(self, name) for name in self.NOT_SPECIFIED}

    def validate(self, names: set[str] | None = None) -> None:
        """Raise ``MerBenchError`` for a field (of ``names``; default all) whose value does
        not have the annotated type or leaves its declared range in ``RANGES``."""
        hints = _type_hints(type(self))
        for f in fields(self):
            if names is not None and f.name not in names:
                continue
            value, hint = getattr(self, f.name), hints[f.name]
            if not _has_type(value, hint):
                raise MerBenchError(f"{type(self).__name__}: {f.name}={value!r} is not "
                                    f"{_type_name(hint)}")
            low, high = self.RANGES.get(f.name, (None, None))
            if f.name in PIXEL_FIELDS and value is not None:
                high = MAX_PIXELS if high is None else min(high, MAX_PIXELS)
            if (low is not None and value < low) or (high is not None and value > high):
                raise MerBenchError(f"{type(self).__name__}: {f.name}={value!r} is outside "
                                    f"[{'-inf' if low is None else low}, "
                                    f"{'inf' if high is None else high}]")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``get_type_hints`` of a config class (evaluated once per class: a config is
    validated for every fold's fresh method)."""
    return get_type_hints(cls)


def _has_type(value: Any, hint: Any) -> bool:
    """isinstance for the annotations configs use: int, float (an int is accepted),
    bool, str, tuple[...], X | None."""
    if hint is Any:
        return True
    options = get_args(hint) if isinstance(hint, types.UnionType) or get_origin(hint) is Union \
        else (hint,)
    for option in options:
        origin = get_origin(option) or option
        if option is type(None) and value is None:
            return True
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if origin not in (int, float) and isinstance(origin, type) and isinstance(value, origin):
            return True
    return False


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


@dataclass
class Prediction:
    """``labels``: int64 (n,) class indices into the scheme's classes (AU task: bit masks,
    bit k = AU k); ``scores``: float (n, n_classes) or None."""

    labels: np.ndarray
    scores: np.ndarray | None = None

    def problem(self, n: int, n_classes: int, allowed: np.ndarray | None = None,
                task: str = "emotion") -> str | None:
        """What breaks the prediction contract for ``n`` test clips (None: nothing):
        labels int (n,) in 0..n_classes-1; scores, when given, (n, n_classes) with no NaN
        or +inf (-inf marks a class the method does not score), and each label the
        argmax of its row over the classes it could be given (``allowed``: a few-shot
        support's classes; None: all). AU task: labels are masks in 0..2^n_classes-1
        and, with scores, bit k is set exactly where score k is > 0."""
        labels = np.asarray(self.labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            return f"labels of shape {labels.shape} dtype {labels.dtype}; expected ({n},) integers"
        codes = 2 ** n_classes if task == "au" else n_classes
        if n and (labels.min() < 0 or labels.max() >= codes):
            return f"{'AU masks' if task == 'au' else 'class indices'} outside 0..{codes - 1}"
        if self.scores is None:
            return None
        scores = np.asarray(self.scores, dtype=np.float64)
        if scores.shape != (n, n_classes):
            return f"scores of shape {scores.shape}; expected ({n}, {n_classes})"
        if np.isnan(scores).any() or np.isposinf(scores).any():
            return "NaN or +inf scores (only -inf may mark a class that is not scored)"
        if task == "au":
            wrong = np.flatnonzero(au_prediction(scores).labels != labels.astype(np.int64))
            return (f"{len(wrong)} AU masks are not their scores > 0 (first: row {wrong[0]})"
                    if len(wrong) else None)
        columns = np.arange(n_classes) if allowed is None else np.asarray(allowed)
        best = scores[:, columns].max(1) if n else scores[:, :0].sum(1)
        wrong = np.flatnonzero(scores[np.arange(n), labels] < best)
        if len(wrong):
            return (f"{len(wrong)} labels are not the argmax of their scores (first: row "
                    f"{wrong[0]}, label {labels[wrong[0]]})")
        return None


def au_prediction(scores: np.ndarray) -> Prediction:
    """The AU task's ``Prediction`` of float (n, A) scores: AU k present where score k is
    > 0 (labels: int64 bit masks; ``mer_bench.data.facs.matrix_masks``)."""
    from mer_bench.data.facs import matrix_masks
    scores = np.asarray(scores)
    return Prediction(matrix_masks(scores > 0), scores)


TASKS = ("emotion", "au")
"""What a method may predict: emotion classes, or action units (multi-label)."""


class Method(ABC):
    """Base of every adapter. Subclasses set ``Config`` and implement the three members
    below; ``name`` is set by ``@register_method``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    tasks: ClassVar[tuple[str, ...]] = ("emotion",)
    """The tasks of ``TASKS`` it predicts; the runner refuses a protocol of another task
    (``mer-bench list`` shows them)."""
    uses_auxiliary: ClassVar[bool] = False
    """True for a method that reads ``ctx.auxiliary("macro")``: the runner checks the
    macro source (``context.macro_source``) and records it in the run identity and the
    result."""
    emits_scores: ClassVar[bool] = False
    """True for a method whose ``predict`` returns scores with its labels: the runner
    refuses a prediction without them, and verification refuses a result of this method
    whose predictions lack them (a forged all-correct file cannot drop the scores that
    would give it away)."""
    uses_torch: ClassVar[bool] = True
    """False for a method that never touches torch (a scikit-learn adapter): the runner
    then runs it on the CPU whatever ``--device`` says, never imports torch for it, and
    refuses ``--amp``."""

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

    def pretrained_source(self) -> dict | None:
        """The auxiliary source a pre-training checkpoint this config loads was made from
        ({"macro", "fingerprint", "synthetic"}, as ``mer-bench pretrain`` stores it), or
        None when the config loads none: the runner checks and records it instead of
        ``--macro-dataset``."""
        return None

    def diagnostics(self) -> dict[str, dict]:
        """Learning diagnostics of the last ``fit``, one entry per training stage
        (``training_stage``): what shows whether the method learned. {} for a method
        that does not train; the runner stores them per fold in the result."""
        return {}

    @property
    def input_specs(self) -> tuple[FeatureSpec, ...]:
        return self.inputs if isinstance(self.inputs, tuple) else (self.inputs,)


DIAGNOSTIC_POINTS = 50
"""Loss curves are stored with at most this many evenly spaced points per stage."""


def training_stage(losses: list[float], **figures: float | None) -> dict:
    """One training stage's diagnostics: its loss at start and end, the curve (at most
    ``DIAGNOSTIC_POINTS`` evenly spaced values, first and last kept) and the stage's own
    figures (``train_accuracy``, a loss floor, ...), all plain floats."""
    losses = [float(v) for v in losses]
    keep = np.unique(np.linspace(0, len(losses) - 1, min(len(losses), DIAGNOSTIC_POINTS))
                     .round().astype(int)) if losses else []
    return {"loss_start": losses[0] if losses else None, "loss_end": losses[-1] if losses else None,
            "steps": len(losses), "loss": [losses[i] for i in keep],
            **{k: None if v is None else float(v) for k, v in figures.items()}}


def restrict_to_support(scores: np.ndarray, support: SampleSet | None) -> np.ndarray:
    """argmax of ``scores`` (n, C) over all classes, or over the support's classes only
    when a support set is given. Returns int64 (n,)."""
    if support is None:
        return scores.argmax(1).astype(np.int64)
    allowed = np.unique(support.labels)
    return allowed[scores[:, allowed].argmax(1)].astype(np.int64)


class _ProcessExit(SystemExit):
    """``os._exit`` called by adapter code inside ``adapter_call``."""


@contextmanager
def adapter_call(name: str, what: str):
    """Run adapter code (``what``: "fit", "a fold", ...) so that what it may do to the
    process becomes one line naming the adapter: ``sys.exit`` and ``os._exit`` (which
    would end a run with exit status 0 and no result; ``os._exit`` is replaced while the
    adapter runs), and recursion without end. Other exceptions pass through."""
    import posix
    saved = os._exit, posix._exit

    def refuse(code: int = 0) -> None:
        raise _ProcessExit(code)

    os._exit = posix._exit = refuse
    try:
        yield
    except _ProcessExit as err:
        raise MerBenchError(f"method {name!r} called os._exit({err.code!r}) in {what}; an "
                            f"adapter must return or raise, never end the process") from None
    except SystemExit as err:
        raise MerBenchError(f"method {name!r} called sys.exit({err.code!r}) in {what}; an "
                            f"adapter must return or raise, never end the process") from None
    except RecursionError:
        raise MerBenchError(f"method {name!r} recursed without end in {what}") from None
    finally:
        os._exit, posix._exit = saved


# --- registry -------------------------------------------------------------------------

_METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: register an adapter under ``name`` (``mer-bench run --method``):
    letters, digits and ``._+-``, not starting with a dot or dash (``schema.NAME``), since
    the name starts result file names, run ids and page names."""
    from mer_bench.report.schema import NAME
    if not isinstance(name, str) or len(name) > 64 or not NAME.fullmatch(name):
        raise MerBenchError(f"method name {name!r} is not allowed: use at most 64 letters, "
                            f"digits and ._+-, starting with a letter or digit")

    def wrap(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise MerBenchError(f"@register_method({name!r}) decorates {cls!r}, which is not a "
                                f"subclass of mer_bench.method.Method")
        if not (isinstance(cls.Config, type) and issubclass(cls.Config, MethodConfig)):
            raise MerBenchError(f"method {name!r}: Config {cls.Config!r} is not a subclass of "
                                f"MethodConfig")
        if not cls.tasks or set(cls.tasks) - set(TASKS):
            raise MerBenchError(f"method {name!r}: tasks {cls.tasks!r}; each must be one of "
                                f"{', '.join(TASKS)}")
        if name in _METHODS and _METHODS[name] is not cls:
            raise MerBenchError(f"method name {name!r} is already registered by "
                                f"{_METHODS[name].__module__}")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return wrap
