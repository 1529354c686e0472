"""The Model contract: what every model and wrapper offers, and the one metadata object it carries.

Everything that runs a network -- :class:`~pixelwise.models.FCN`, ``LateFusion``, the torchvision
wrapper, a :class:`~pixelwise.runtime.BackendModel` fast path, an exported
:class:`~pixelwise.runtime.OnnxModel` -- satisfies :class:`Model`.  What a model *is* beyond its
weights (per head: class count, task, class names, palette; preprocessing; the test-time views its
metrics were measured with; where it came from) is one :class:`ModelMeta`, attached as
``model.meta`` when the model is built or loaded and read from there by everyone else.

Outputs: ``model(x)`` returns a tensor for single-head models and a dict for multi-head ones (the
paper's SIFT Flow net); :func:`head_outputs` is the one place that turns either into
``{head: tensor}``, and :func:`pack_heads` the one place wrappers turn positional outputs back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from .errors import PixelwiseError
from .preprocessing import Preprocessing

RGB = tuple[int, int, int]
#: the task of every head a model has today (per-pixel class labels); others add e.g. "depth"
SEMANTIC = "semantic"


@dataclasses.dataclass(frozen=True)
class Head:
    """One output of a model: ``num_classes`` channels (K) of logits for ``task``."""

    num_classes: int
    task: str = SEMANTIC
    class_names: tuple[str, ...] | None = None
    palette: tuple[RGB, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Views:
    """Test-time views whose logits are averaged: the image mirrored or not, at each scale."""

    flip: bool = False
    scales: tuple[float, ...] = (1.0,)


@dataclasses.dataclass(frozen=True)
class ModelMeta:
    """Everything known about a model besides its weights.

    ``heads``: head name -> :class:`Head` (in output order); ``preprocessing``: how raw pixels become
    its input; ``test_time``: the views its ``metrics`` were measured with (None: not recorded),
    which ``--tta`` averages; ``default_view``: the view one forward uses without ``--tta`` (None:
    the image as given; e.g. ``Views(scales=(0.75,))`` for a model chosen on val to read a
    downscaled image better);
    provenance: ``config`` (the ``get_model`` kwargs that rebuild it), ``metrics``, ``recipe``,
    ``git_commit`` and ``source`` (the file or shipped name it was loaded from); ``extra``: any other
    fields a checkpoint recorded (e.g. ``metrics_single_view``), kept so that nothing read is lost.
    """

    heads: dict[str, Head]
    preprocessing: Preprocessing
    test_time: Views | None = None
    config: dict = dataclasses.field(default_factory=dict)
    metrics: dict | None = None
    recipe: dict | None = None
    git_commit: str | None = None
    source: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)
    default_view: Views | None = None

    @classmethod
    def of(
        cls,
        model: Any,
        *,
        class_names: Any = None,
        palette: Any = None,
        tasks: Mapping[str, str] | None = None,
        **provenance: Any,
    ) -> ModelMeta:
        """Metadata of an architecture (its ``heads``, ``preprocessing``, ``config``).

        ``class_names``/``palette``: a list for every head or a dict head -> list (datasets give
        either); ``tasks``: head -> task (default: the model's own ``tasks``, else ``"semantic"``);
        ``provenance``: other fields.
        """
        heads = dict(model.heads)
        tasks = (
            tasks
            if tasks is not None
            else (getattr(model, "tasks", None) or (getattr(model, "config", None) or {}).get("tasks"))
        )
        names, colours = _per_head(class_names, heads), _per_head(palette, heads)
        made = {h: _head(k, (tasks or {}).get(h, SEMANTIC), names.get(h), colours.get(h)) for h, k in heads.items()}
        provenance.setdefault("config", dict(model.config))
        return cls(made, model.preprocessing, **provenance)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str | None = None) -> ModelMeta:
        """From the JSON of a checkpoint or an ONNX export (``docs/DESIGN.md``); the inverse of
        :meth:`to_dict`.  Malformed input raises ``KeyError``/``TypeError``/``ValueError``."""
        heads = {str(h): int(k) for h, k in dict(d["heads"]).items()}
        names, colours = _per_head(d.get("class_names"), heads), _per_head(d.get("palette"), heads)
        tasks = d.get("tasks") or {}
        made = {h: _head(k, tasks.get(h, SEMANTIC), names.get(h), colours.get(h)) for h, k in heads.items()}
        extra = {k: v for k, v in d.items() if k not in _KNOWN}
        return cls(
            made,
            Preprocessing.from_dict(d["preprocessing"]),
            _views(d.get("test_time")),
            dict(d.get("config") or {}),
            d.get("metrics"),
            d.get("recipe"),
            d.get("git_commit"),
            source,
            extra,
            _views(d.get("default_view")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields as checkpoints store them: ``class_names``/``palette`` are a list for a
        single-head model and a dict head -> list otherwise (the format since version 1)."""
        single = len(self.heads) == 1

        def field(attr: str) -> Any:
            vals = {h: _listed(getattr(hd, attr)) for h, hd in self.heads.items()}
            if single:
                return next(iter(vals.values()))
            return vals if any(v is not None for v in vals.values()) else None

        return {
            **self.extra,
            "config": dict(self.config),
            "heads": self.num_classes,
            "tasks": {h: hd.task for h, hd in self.heads.items()},
            "preprocessing": self.preprocessing.to_dict(),
            "class_names": field("class_names"),
            "palette": field("palette"),
            "test_time": None if self.test_time is None else dataclasses.asdict(self.test_time),
            "default_view": None if self.default_view is None else dataclasses.asdict(self.default_view),
            "recipe": self.recipe,
            "metrics": self.metrics,
            "git_commit": self.git_commit,
        }

    @property
    def num_classes(self) -> dict[str, int]:
        """Head name -> K."""
        return {h: hd.num_classes for h, hd in self.heads.items()}

    def class_names(self, head: str | None = None) -> list[str] | None:
        """Class names of ``head`` (default: the first head), or None if unknown."""
        names = self.heads[head or next(iter(self.heads))].class_names
        return None if names is None else list(names)

    def palette(self, head: str | None = None) -> list[RGB] | None:
        """One RGB colour per class of ``head`` (default: the first), or None if unknown."""
        colours = self.heads[head or next(iter(self.heads))].palette
        return None if colours is None else list(colours)

    def with_labels(self, class_names: Any, palette: Any) -> ModelMeta:
        """A copy naming the classes (a list, or a dict head -> list, as datasets give them)."""
        names, colours = _per_head(class_names, self.num_classes), _per_head(palette, self.num_classes)
        heads = {
            h: dataclasses.replace(hd, class_names=_tuple(names.get(h)), palette=_rgb(colours.get(h)))
            for h, hd in self.heads.items()
        }
        return dataclasses.replace(self, heads=heads)

    def replace(self, **changes: Any) -> ModelMeta:
        """A copy with ``changes`` (any field)."""
        return dataclasses.replace(self, **changes)


#: the JSON fields :meth:`ModelMeta.from_dict` understands (everything else lands in ``extra``)
_KNOWN = {
    "config",
    "heads",
    "tasks",
    "preprocessing",
    "class_names",
    "palette",
    "test_time",
    "default_view",
    "recipe",
    "metrics",
    "git_commit",
    "format_version",
    "outputs",
}


def _views(d: Mapping[str, Any] | None) -> Views | None:
    """``{"flip": bool, "scales": [...]}`` as stored -> :class:`Views` (None/empty: not recorded)."""
    if not d:
        return None
    return Views(bool(d.get("flip", False)), tuple(float(s) for s in d.get("scales", (1.0,))))


def _per_head(value: Any, heads: Mapping[str, int]) -> dict[str, Any]:
    """A per-head value given as one list (every head) or a dict head -> list."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {h: value[h] for h in heads if value.get(h) is not None}
    return {h: value for h in heads} if len(heads) == 1 else {}


def _head(k: int, task: str, names: Any, palette: Any) -> Head:
    return Head(int(k), task, _tuple(names), _rgb(palette))


def _tuple(names: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(str(n) for n in names)


def _rgb(palette: Sequence[Sequence[int]] | None) -> tuple[RGB, ...] | None:
    return None if palette is None else tuple((int(c[0]), int(c[1]), int(c[2])) for c in palette)


def _listed(value: tuple | None) -> list | None:
    return None if value is None else [list(v) if isinstance(v, tuple) else v for v in value]


@runtime_checkable
class Model(Protocol):
    """What ``evaluate``, ``Predictor``, ``export_onnx`` and the CLI need of a model.

    ``model(x)``: ``x`` float ``N x in_channels x H x W``, already preprocessed -> logits
    ``N x K x H x W`` (a dict head -> logits for multi-head models).  ``eval``/``train``/``to``
    behave as on ``nn.Module`` (inference-only wrappers refuse ``train(True)``).
    """

    heads: dict[str, int]
    config: dict
    meta: ModelMeta
    training: bool

    @property
    def preprocessing(self) -> Preprocessing: ...

    @property
    def in_channels(self) -> int: ...

    @property
    def num_classes(self) -> int: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]: ...

    def eval(self) -> Model: ...

    def train(self, mode: bool = True) -> Model: ...

    def to(self, *args: Any, **kwargs: Any) -> Model: ...


class ContractMixin:
    """Derives the rest of :class:`Model` from ``self.heads`` (name -> K) and ``self.preprocessing``.

    ``meta`` defaults to :meth:`ModelMeta.of` the architecture (no class names, no provenance)
    until a loader or trainer sets it.
    """

    @property
    def num_classes(self) -> int:
        """K of the first head."""
        return next(iter(self.heads.values()))

    @property
    def in_channels(self) -> int:
        """Channels of the preprocessed input tensor."""
        return self.preprocessing.in_channels

    @property
    def meta(self) -> ModelMeta:
        found = self.__dict__.get("_pixelwise_meta")
        if found is None:
            found = ModelMeta.of(self)
            self.__dict__["_pixelwise_meta"] = found
        return found

    @meta.setter
    def meta(self, value: ModelMeta) -> None:
        if set(value.heads) != set(self.heads):
            raise PixelwiseError(f"metadata heads {sorted(value.heads)} do not match the model's {sorted(self.heads)}")
        self.__dict__["_pixelwise_meta"] = value


class InferenceOnly(ContractMixin):
    """The ``nn.Module`` look-alike methods of wrappers that only run (BackendModel, OnnxModel)."""

    training = False

    def eval(self) -> InferenceOnly:
        return self

    def train(self, mode: bool = True) -> InferenceOnly:
        if mode:
            raise PixelwiseError(f"{type(self).__name__} is for inference only and cannot be trained")
        return self

    def to(self, *args: Any, **kwargs: Any) -> InferenceOnly:
        return self  # the wrapped runtime places its own data

    def check_input(self, x: torch.Tensor | Any) -> None:
        """A one-line error unless ``x`` is ``N x in_channels x H x W``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise PixelwiseError(f"expected input N x {self.in_channels} x H x W, got {tuple(x.shape)}")


def head_outputs(out: torch.Tensor | Mapping[str, torch.Tensor], heads: Collection[str]) -> dict[str, torch.Tensor]:
    """A model's output (or a target) -> ``{head: tensor}`` in ``heads`` order (``heads``: names,
    or a dict keyed by them such as ``model.heads``).

    Single-head models return a bare tensor: it belongs to the one head of ``heads``.
    """
    if isinstance(out, Mapping):
        return {h: out[h] for h in heads} if set(out) == set(heads) else dict(out)
    if len(heads) != 1:
        raise PixelwiseError(f"got one output tensor for a model with heads {list(heads)}")
    return {next(iter(heads)): out}


def pack_heads(outs: Sequence[torch.Tensor], heads: Collection[str]) -> torch.Tensor | dict[str, torch.Tensor]:
    """Positional outputs (one per head, in order) -> what ``model(x)`` returns: the tensor itself
    for a single head, else ``{head: tensor}``."""
    outs = list(outs)
    return outs[0] if len(heads) == 1 else dict(zip(heads, outs, strict=True))
