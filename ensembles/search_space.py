"""Search spaces of the pool search: named presets and the one documented dict form.

A space maps an estimator parameter to what the search may give it:

- a list: a choice among its entries (any values: strings, numbers, tuples of layer widths);
- a tuple ``(low, high)``: an int range when both are ints, else a float range, uniform;
- a tuple ``(low, high, "log")``: the same, log-uniform; in YAML or JSON, where there are no
  tuples, a mapping ``{low: 1e-4, high: 1e-2, log: true}``;
- anything else: a fixed value.

Keys are the estimator's parameter names; ``module_kwargs__<name>`` sets one keyword of the
backbone (``module_kwargs__hidden``, ``module_kwargs__dropout``) and leaves the template's other
keywords as they are. A list of such dicts is a choice among sub-spaces (different backbones,
each with its own knobs); the trial first picks one. The presets (:data:`PRESETS`) are lists of
this form and can be copied and edited.

Examples
--------
>>> space = parse_space({"lr": (1e-4, 1e-2, "log"), "module_kwargs__hidden": [(64,), (128, 128)]})
>>> [(param.name, param.kind) for param in space[0].params]
[('lr', 'float'), ('module_kwargs__hidden', 'categorical')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

_OPTIMIZERS = ["adamw", "adam", "sgd", "rmsprop"]
_ACTIVATIONS = ["relu", "gelu", "leaky_relu", "elu"]

PRESETS: dict[str, list[dict[str, Any]]] = {
    # fully connected networks: depth and width, activation, dropout, optimizer, L1 and L2
    "mlp": [
        {
            "module": "mlp",
            "module_kwargs__hidden": [
                (64,),
                (256,),
                (128, 128),
                (256, 256),
                (512, 256),
                (256, 256, 256),
            ],
            "module_kwargs__activation": _ACTIVATIONS,
            "module_kwargs__dropout": (0.0, 0.5),
            "optimizer": _OPTIMIZERS,
            "lr": (3e-4, 3e-2, "log"),
            "weight_decay": (1e-5, 1e-1, "log"),
            "l1": [0.0, 1e-5, 1e-4],
        }
    ],
    # 1-D convolutions (signals): channels per block, kernel, activation, dropout, optimizer
    "cnn1d": [
        {
            "module": "cnn1d",
            "module_kwargs__channels": [
                (16, 32, 32, 64),
                (32, 32, 64, 64),
                (32, 64, 64, 128),
                (32, 64, 128),
                (64, 128, 128),
            ],
            "module_kwargs__kernel_size": [3, 5, 7],
            "module_kwargs__activation": _ACTIVATIONS,
            "module_kwargs__dropout": (0.0, 0.3),
            "optimizer": _OPTIMIZERS,
            "lr": (3e-4, 3e-2, "log"),
            "weight_decay": (1e-5, 1e-1, "log"),
        }
    ],
    # small-image CNNs (conv-conv-pool blocks and a dense head)
    "cnn2d": [
        {
            "module": "cnn2d",
            "module_kwargs__channels": [(8, 16), (16, 32), (32, 64), (16, 32, 64)],
            "module_kwargs__hidden": [(64,), (128,), (256,)],
            "module_kwargs__activation": _ACTIVATIONS,
            "module_kwargs__dropout": (0.0, 0.5),
            "optimizer": _OPTIMIZERS,
            "lr": (3e-4, 3e-2, "log"),
            "weight_decay": (1e-5, 1e-1, "log"),
        }
    ],
}
# signals: a choice of backbone first, then its knobs
PRESETS["any"] = [
    *PRESETS["mlp"],
    *PRESETS["cnn1d"],
    {
        "module": "resnet",
        "module_kwargs__channels": [(16, 32, 64), (32, 64, 128)],
        "module_kwargs__blocks_per_stage": [1, 2],
        "module_kwargs__activation": _ACTIVATIONS,
        "module_kwargs__dropout": (0.0, 0.3),
        "optimizer": _OPTIMIZERS,
        "lr": (3e-4, 3e-2, "log"),
        "weight_decay": (1e-5, 1e-1, "log"),
    },
]

KWARGS_PREFIX = "module_kwargs__"
# values Optuna stores as they are; other choices (tuples) are stored as their index
_PLAIN = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Param:
    """One searched (or fixed) parameter."""

    name: str
    kind: str  # "fixed", "categorical", "int" or "float"
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def sample(self, trial: Any, prefix: str) -> Any:
        """The value ``trial`` (an ``optuna.Trial``) draws; stored under ``prefix + name``."""
        key = prefix + self.name
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "int":
            return trial.suggest_int(key, int(self.low), int(self.high), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(key, self.low, self.high, log=self.log)
        if all(isinstance(value, _PLAIN) for value in self.values):
            return trial.suggest_categorical(key, list(self.values))
        return self.values[trial.suggest_categorical(key, list(range(len(self.values))))]

    def decode(self, stored: dict[str, Any], prefix: str) -> Any:
        """The value of a finished trial whose Optuna parameters are ``stored``."""
        if self.kind == "fixed":
            return self.values[0]
        value = stored[prefix + self.name]
        if self.kind == "categorical" and not all(isinstance(v, _PLAIN) for v in self.values):
            return self.values[int(value)]
        return value


@dataclass(frozen=True)
class SubSpace:
    """One alternative of a space: a label (its backbone, or its position) and its params."""

    label: str
    params: tuple[Param, ...]

    def searched(self) -> bool:
        return any(param.kind != "fixed" for param in self.params)


def parse_space(space: Any) -> list[SubSpace]:
    """The alternatives of ``space`` (a preset name, a dict, or a list of dicts), checked.

    Raises ``ValueError``/``TypeError`` naming the entry that does not fit the documented form.
    """
    if isinstance(space, str):
        if space not in PRESETS:
            raise ValueError(
                f"space={space!r} is not a preset; expected one of {sorted(PRESETS)}, a dict "
                "{parameter: choices} or a list of such dicts"
            )
        space = PRESETS[space]
    if isinstance(space, Mapping):
        space = [space]
    if not isinstance(space, Sequence) or isinstance(space, str) or len(space) == 0:
        raise TypeError(
            "space must be a preset name, a dict {parameter: choices} or a non-empty list of "
            f"such dicts; got {type(space).__name__}"
        )
    alternatives = []
    for position, entry in enumerate(space):
        if not isinstance(entry, Mapping):
            raise TypeError(
                f"space[{position}] must be a dict {{parameter: choices}}; got "
                f"{type(entry).__name__}"
            )
        params = tuple(_parse_param(name, spec) for name, spec in entry.items())
        module = entry.get("module")
        label = module if isinstance(module, str) else str(position)
        alternatives.append(SubSpace(label, params))
    labels = [alternative.label for alternative in alternatives]
    if len(set(labels)) != len(labels):
        # two sub-spaces of one backbone: tell them apart by position
        alternatives = [
            SubSpace(f"{position}", alternative.params)
            for position, alternative in enumerate(alternatives)
        ]
    return alternatives


def _parse_param(name: Any, spec: Any) -> Param:
    if not isinstance(name, str) or not name or name == KWARGS_PREFIX:
        raise TypeError(f"space keys must be parameter names (strings); got {name!r}")
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"space[{name!r}] is an empty list of choices")
        return Param(name, "categorical", tuple(spec))
    if isinstance(spec, Mapping):
        if not {"low", "high"} <= set(spec) <= {"low", "high", "log"}:
            raise ValueError(
                f"space[{name!r}] = {dict(spec)!r}: a range as a mapping has the keys low, high "
                "and optionally log"
            )
        spec = (spec["low"], spec["high"], *(["log"] if spec.get("log") else []))
    if isinstance(spec, tuple) and len(spec) in (2, 3) and not isinstance(spec[0], tuple):
        low, high, *rest = spec
        log = rest == ["log"]
        if rest and not log:
            raise ValueError(
                f"space[{name!r}] = {spec!r}: the third entry of a range must be 'log'"
            )
        if not all(isinstance(v, Real) and not isinstance(v, bool) for v in (low, high)):
            raise TypeError(
                f"space[{name!r}] = {spec!r}: a range is (low, high) or (low, high, 'log') of "
                "numbers; give a list for a choice among values"
            )
        if not low < high or (log and low <= 0):
            raise ValueError(
                f"space[{name!r}] = {spec!r}: a range needs low < high"
                + (" and low > 0 on a log scale" if log else "")
            )
        kind = "int" if isinstance(low, Integral) and isinstance(high, Integral) else "float"
        return Param(name, kind, low=float(low), high=float(high), log=log)
    return Param(name, "fixed", (spec,))


def estimator_params(template: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``set_params`` arguments for ``template`` from a trial's values: ``module_kwargs__*``
    keys update the template's ``module_kwargs`` (kept when the backbone is the template's)."""
    plain = {k: v for k, v in values.items() if not k.startswith(KWARGS_PREFIX)}
    kwargs = {k[len(KWARGS_PREFIX) :]: v for k, v in values.items() if k.startswith(KWARGS_PREFIX)}
    if kwargs or "module" in plain:
        current = template.get_params(deep=False)
        same = plain.get("module", current.get("module")) == current.get("module")
        base = dict(current.get("module_kwargs") or {}) if same else {}
        merged = {**base, **kwargs}
        plain["module_kwargs"] = merged or None
    return plain
