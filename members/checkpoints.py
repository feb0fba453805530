"""Estimators over networks trained elsewhere: Lightning and LightningCLI checkpoints.

:func:`estimator_from_checkpoint` is ``NeuralClassifier.from_checkpoint`` /
``NeuralRegressor.from_checkpoint``: it reads a checkpoint with ``weights_only=True`` and
rebuilds its backbone from an architecture the caller gives or from the ``config.yaml``
LightningCLI wrote beside it, importing only this library's backbones or classes the caller
trusts by name.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from members.registry import BACKBONES


def estimator_from_checkpoint(
    cls: Any,
    checkpoint: str | os.PathLike[str],
    backbone: nn.Module | None = None,
    *,
    n_features: int | None = None,
    classes: Any = None,
    trusted: Sequence[str] = (),
) -> Any:
    """A fitted ``cls`` (a neural estimator class) over a :class:`~members.MemberModule`
    checkpoint; see ``NeuralClassifier.from_checkpoint``."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint={str(path)!r}: no such file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    spec: dict[str, Any] = {}
    if backbone is None:
        spec = backbone_spec(path)
        backbone = backbone_class(spec, trusted)(**spec["init_args"])
    weights = {
        name.removeprefix("backbone."): value
        for name, value in state["state_dict"].items()
        if name.startswith("backbone.")
    }
    backbone.load_state_dict(weights)
    n_features = n_features or spec.get("init_args", {}).get("n_features")
    if n_features is None:
        raise ValueError("n_features is needed: the backbone's input size is not known")
    hparams = state.get("hyper_parameters", {})
    init_args = {
        k: v for k, v in spec.get("init_args", {}).items() if k not in ("n_features", "n_outputs")
    }
    estimator = cls(
        type(backbone),
        module_kwargs=init_args or None,
        max_epochs=int(state.get("epoch", 0)) + 1,
        standardize=False,
        **{k: hparams[k] for k in ("lr", "optimizer", "weight_decay", "loss") if k in hparams},
    )
    network = backbone.double().eval()
    with torch.inference_mode():
        n_outputs = network(torch.zeros(2, n_features, dtype=torch.float64)).shape[1]
    estimator.n_features_in_ = int(n_features)
    estimator.model_ = network
    estimator.set_outputs(n_outputs // estimator.task.heads, classes)
    return estimator


def backbone_spec(checkpoint: Path) -> dict[str, Any]:
    """``model.backbone`` of the ``config.yaml`` LightningCLI wrote for the checkpoint's run:
    beside it, or beside its ``checkpoints/`` folder. Nothing further up is read."""
    import yaml

    folder = (
        checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    )
    config = folder / "config.yaml"
    if not config.is_file():
        raise ValueError(
            f"no LightningCLI config.yaml beside {checkpoint} (looked for {config}); pass "
            "backbone= (the trained architecture)"
        )
    try:
        text = yaml.safe_load(config.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"{config} is not a readable YAML file: {error}") from None
    model = text.get("model") if isinstance(text, dict) else None
    spec = model.get("backbone") if isinstance(model, dict) else None
    init_args = spec.get("init_args", {}) if isinstance(spec, dict) else None
    if not (
        isinstance(spec, dict)
        and isinstance(spec.get("class_path"), str)
        and isinstance(init_args, dict)
        and all(isinstance(key, str) for key in init_args)
    ):
        raise ValueError(
            f"{config} has no model.backbone with a class_path and init_args; pass backbone= "
            "(the trained architecture)"
        )
    return {"class_path": spec["class_path"], "init_args": init_args, "config": config}


def backbone_class(spec: dict[str, Any], trusted: Sequence[str]) -> type[nn.Module]:
    """The backbone class a checkpoint's config names: one of this library's registered
    backbone classes, or a class the caller trusts by name. Nothing else is imported."""
    allowed = set(trusted)
    for factory in BACKBONES.values():
        if isinstance(factory, type):
            allowed |= {
                f"{factory.__module__}.{factory.__qualname__}",
                f"members.{factory.__name__}",
            }
    class_path = spec["class_path"]
    if class_path not in allowed:
        raise ValueError(
            f"{spec['config']}: model.backbone.class_path={class_path!r} is not a backbone of "
            f"this library ({sorted(allowed)}); pass backbone= (the trained architecture), or "
            f"trusted=[{class_path!r}] if you trust the file"
        )
    module, _, name = class_path.rpartition(".")
    found = getattr(importlib.import_module(module), name, None)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise ValueError(f"{spec['config']}: {class_path!r} is not a torch.nn.Module class")
    return found
