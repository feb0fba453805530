"""Save and load fitted estimators without pickle: safetensors weights, skops state, JSON manifest.

A saved estimator is a folder::

    manifest.json          format version, library versions, class, parameters (readable JSON)
    estimator.skops        the estimator's state (skops: loads without executing code)
    weights.safetensors    every network's weights (only when the estimator holds networks)

Networks are not stored in the skops file: each ``model_`` is replaced by a reference to its
tensors in ``weights.safetensors`` and rebuilt on load from the estimator's own parameters
(``module``, ``module_kwargs``, input and output sizes). Loading executes nothing from the
file: it trusts the classes named in :data:`TRUSTED_TYPES` (this library's estimators,
combiners, backbones and schedules, by their full names) and the types skops trusts by default
(scikit-learn's estimators, numpy); any other type or function (a user's own member class, a
function passed as a parameter) is refused unless named in ``trusted=``. A network is rebuilt
only after the values that build it (``module``, ``module_kwargs``, the input size) are
type-checked, and a TorchScript network (a quantised one) is refused on load as on save.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import os
import platform
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

FORMAT = "torch-fusion-ensembles"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STATE = "estimator.skops"
WEIGHTS = "weights.safetensors"
# The library's classes that a save may hold, by full name: an explicit list, never a prefix
# (a prefix would trust every function of a package, and a function can be called). skops adds
# its own defaults (scikit-learn's estimators, numpy's types). tests/members/test_persistence.py
# checks that every public estimator, combiner and backbone is here.
TRUSTED_TYPES = frozenset(
    {
        "members.neural.NeuralClassifier",
        "members.neural.NeuralRegressor",
        "members.persistence.NetworkRef",
        "members.schedules.CyclicCosineSchedule",
        "members.mlp.MLP",
        "members.cnn1d.CNN1d",
        "members.cnn2d.CNN2d",
        "members.resnet.ResNet",
        "combiners.mean.MeanCombiner",
        "combiners.voting.VotingCombiner",
        "combiners.weighted.WeightedCombiner",
        "combiners.selection.EnsembleSelection",
        "combiners.stacking.StackingCombiner",
        "combiners.snapshot.SnapshotCombiner",
        "combiners.temperature.TemperatureScaling",
        "ensembles.classifier.EnsembleClassifier",
        "ensembles.regressor.EnsembleRegressor",
        "ensembles.snapshot.SnapshotEnsembleClassifier",
        "ensembles.snapshot.SnapshotEnsembleRegressor",
    }
)

T = TypeVar("T", bound="SaveLoadMixin")

_export: contextvars.ContextVar[_Sink | None] = contextvars.ContextVar(
    "network_export", default=None
)
_import: contextvars.ContextVar[dict[str, torch.Tensor] | None] = contextvars.ContextVar(
    "network_import", default=None
)


class _Sink:
    """The tensors of the networks met while saving, each network stored once."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.keys: dict[int, str] = {}
        self.networks: list[nn.Module] = []  # keeps ids valid while saving


class NetworkRef:
    """Stands for one network in the skops state: its tensors are stored under ``key``."""

    def __init__(self, key: str) -> None:
        self.key = key


def export_network(network: nn.Module) -> NetworkRef | None:
    """While :func:`save` runs: move ``network``'s tensors to the weights file, return a ref."""
    sink = _export.get()
    if sink is None:
        return None
    if _is_quantised(network):
        raise ValueError(
            "a compressed (quantised TorchScript) network cannot be saved in the safe format; "
            "save the uncompressed estimator, or use pickle/joblib for the compressed one"
        )
    # a network reached twice (members_ and named_members_) is stored once
    if id(network) not in sink.keys:
        key = sink.keys[id(network)] = f"net{len(sink.keys)}"
        sink.networks.append(network)
        for name, tensor in network.state_dict().items():
            sink.tensors[f"{key}/{name}"] = tensor.detach().cpu().contiguous()
    return NetworkRef(sink.keys[id(network)])


def import_network(ref: NetworkRef, build: Callable[[], nn.Module]) -> nn.Module:
    """While :func:`load` runs: rebuild a network (no random init) and fill in its tensors."""
    source = _import.get()
    if source is None:
        raise ValueError("a network reference can only be resolved by members.persistence.load")
    prefix = f"{ref.key}/"
    state = {name[len(prefix) :]: t for name, t in source.items() if name.startswith(prefix)}
    with torch.device("meta"):
        network = build()
    network.load_state_dict(state, strict=True, assign=True)
    return network.eval()


def _is_quantised(network: nn.Module) -> bool:
    if isinstance(network, torch.jit.ScriptModule):
        return True
    if any(".quantized" in type(module).__module__ for module in network.modules()):
        return True
    return any(
        not isinstance(value, torch.Tensor) or value.is_quantized
        for value in network.state_dict().values()
    )


@contextmanager
def _bound(var: contextvars.ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def save(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted estimator to the folder ``path`` (created; an earlier save is replaced).

    Raises ``FileExistsError`` when ``path`` is a file or a non-empty folder that is not a
    saved estimator, so a typo cannot wipe unrelated files.
    """
    import skops.io as sio
    from safetensors.torch import save_file

    folder = Path(path)
    if folder.exists() and not (folder.is_dir() and _is_empty_or_saved(folder)):
        raise FileExistsError(
            f"path={str(folder)!r} exists and is not a saved estimator; choose a new folder"
        )
    sink = _Sink()
    with _bound(_export, sink):
        state = sio.dumps(estimator)
    tensors = sink.tensors
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / STATE).write_bytes(state)
    if tensors:
        save_file(tensors, partial / WEIGHTS)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "versions": _versions(),
        "params": _jsonable(estimator.get_params(deep=False)),
        "networks": sorted(sink.keys.values()),
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    # replace the old save only once the new one is complete
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def load(path: str | os.PathLike[str], *, trusted: bool | Sequence[str] = False) -> Any:
    """Read an estimator written by :func:`save`.

    Parameters
    ----------
    path : str or path
        The folder given to :func:`save`.
    trusted : bool or list of str, default=False
        Types other than this library's, scikit-learn's and skops' safe defaults are refused
        unless listed here (by the names the error gives), or ``True`` to accept every type in
        the file: do that only for files from a source you trust.
    """
    import skops.io as sio
    from safetensors.torch import load_file

    folder = Path(path)
    manifest = read_manifest(folder)
    state = (folder / STATE).read_bytes()
    found = sio.get_untrusted_types(data=state)
    untrusted = [name for name in found if not _trusted_type(name)]
    if trusted is True:
        allowed = untrusted
    elif trusted is False:
        allowed = []
    else:
        allowed = [name for name in untrusted if name in set(trusted)]
    refused = sorted(set(untrusted) - set(allowed))
    if refused:
        raise ValueError(
            f"{folder} holds types that are not trusted by default: {refused}; pass "
            "trusted=[...those names...] (or trusted=True) to load it, only if you trust the "
            "source of the file"
        )
    weights = folder / WEIGHTS
    tensors = load_file(weights) if weights.exists() else {}
    if sorted({name.split("/")[0] for name in tensors}) != manifest.get("networks", []):
        raise ValueError(f"{weights} does not hold the networks its manifest lists")
    with _bound(_import, tensors):
        return sio.loads(state, trusted=found)


def _trusted_type(name: str) -> bool:
    """A class of this library's list, or a scikit-learn class (skops trusts many of those
    already; scikit-learn's internal data holders such as ``TreePredictor`` it does not). A
    scikit-learn *function* is never trusted: functions can be called."""
    if name in TRUSTED_TYPES:
        return True
    if not name.startswith("sklearn."):
        return False
    module, _, attribute = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        return False
    return isinstance(found, type)


def loading() -> bool:
    """Whether :func:`load` is running (an estimator's ``__setstate__`` then refuses what the
    safe format never holds, such as TorchScript)."""
    return _import.get() is not None


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a saved estimator; a clear error for a missing or newer format."""
    file = folder / MANIFEST
    if not file.is_file():
        raise FileNotFoundError(f"{folder} is not a saved estimator: it has no {MANIFEST}")
    manifest: dict[str, Any] = json.loads(file.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{file} is not a {FORMAT} manifest (format={manifest.get('format')!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        written_by = manifest.get("versions", {}).get(FORMAT, "an unknown version")
        raise ValueError(
            f"{folder} was saved in format version {version!r} by {FORMAT} {written_by}; this "
            f"installation reads format versions up to {FORMAT_VERSION}: upgrade {FORMAT}"
        )
    return manifest


class SaveLoadMixin:
    """``save(path)`` and ``Class.load(path)`` for a fitted estimator (see this module)."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write this fitted estimator to the folder ``path``; no pickle is involved.

        Network weights go to ``weights.safetensors``, everything else to ``estimator.skops``,
        with a readable ``manifest.json``. Load it back with ``type(self).load(path)``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return save(self, path)

    @classmethod
    def load(
        cls: type[T], path: str | os.PathLike[str], *, trusted: bool | Sequence[str] = False
    ) -> T:
        """Read an estimator saved with :meth:`save`; see :func:`members.persistence.load`."""
        estimator = load(path, trusted=trusted)
        if not isinstance(estimator, cls):
            raise TypeError(
                f"{path} holds a {type(estimator).__name__}, not a {cls.__name__}; load it with "
                f"{type(estimator).__name__}.load or members.persistence.load"
            )
        return estimator


def _is_empty_or_saved(folder: Path) -> bool:
    return not any(folder.iterdir()) or (folder / MANIFEST).is_file()


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (FORMAT, "torch", "scikit-learn", "numpy", "skops", "safetensors"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _jsonable(value: Any) -> Any:
    """A readable JSON rendering of parameters (estimators as their repr)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return repr(value)
