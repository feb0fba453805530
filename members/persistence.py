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
import hashlib
import importlib
import inspect
import json
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

FORMAT = "torch-fusion-ensembles"
# 2: the manifest lists a SHA-256 of every file ("files") and the caller's "metadata";
# version 1 saves (no checksums) are still read
FORMAT_VERSION = 2
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
        "members.packed.Packed",
        "members.batch_ensemble.BatchEnsemble",
        "members.mimo.MIMO",
        "members.mc_dropout.MCDropout",
        "combiners.auto.AutoCombiner",
        "combiners.mean.MeanCombiner",
        "combiners.voting.VotingCombiner",
        "combiners.weighted.WeightedCombiner",
        "combiners.selection.EnsembleSelection",
        "combiners.stacking.StackingCombiner",
        "combiners.snapshot.SnapshotCombiner",
        "combiners.temperature.TemperatureScaling",
        "combiners.variance.VarianceScaling",
        "ensembles.classifier.EnsembleClassifier",
        "ensembles.regressor.EnsembleRegressor",
        "ensembles.snapshot.SnapshotEnsembleClassifier",
        "ensembles.snapshot.SnapshotEnsembleRegressor",
        "ensembles.efficient.PackedEnsembleClassifier",
        "ensembles.efficient.PackedEnsembleRegressor",
        "ensembles.efficient.BatchEnsembleClassifier",
        "ensembles.efficient.BatchEnsembleRegressor",
        "ensembles.efficient.MIMOClassifier",
        "ensembles.efficient.MIMORegressor",
        "ensembles.efficient.MCDropoutClassifier",
        "ensembles.efficient.MCDropoutRegressor",
        "ensembles.search.EnsembleSearchClassifier",
        "ensembles.search.EnsembleSearchRegressor",
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
    if is_quantised(network):
        raise ValueError(
            "a compressed (int8) network cannot be saved in the safe format; "
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


def is_quantised(network: nn.Module) -> bool:
    """Whether ``network`` is a compressed one: TorchScript, quantised modules, or tensors that
    are not plain tensors (torchao's int8 weights from ``members.compress``), which the safe
    format and the ONNX export refuse."""
    if isinstance(network, torch.jit.ScriptModule):
        return True
    if any(".quantized" in type(module).__module__ for module in network.modules()):
        return True
    return any(
        type(value) is not torch.Tensor or value.is_quantized
        for value in network.state_dict().values()
    )


@contextmanager
def _bound(var: contextvars.ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def save(
    estimator: Any, path: str | os.PathLike[str], *, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a fitted estimator to the folder ``path`` (created; an earlier save is replaced).

    Nothing that this function did not write is ever removed, and an earlier save stays whole
    until the new one is complete:

    - ``path`` must not exist, be empty, or be one of our saves (a manifest of this format and
      no file a save does not write); anything else raises ``FileExistsError``;
    - the new save is written to a temporary sibling unique to this call, then swapped in while
      holding an exclusive lock on the parent folder (``flock`` on the folder itself, so no lock
      file is ever written), which :func:`load` holds shared while it reads: two processes
      saving to one path each leave a complete save (the last wins), and a reader gets the
      earlier save or the new one, never a mix;
    - every file of the save gets the permissions the umask gives a new file;
    - a crash during the swap leaves the earlier save renamed aside, and the next :func:`save`
      or :func:`load` of ``path`` puts it back;
    - what could not be loaded is refused here: a function or class that cannot be imported by
      name (a lambda, a function defined inside another).

    ``metadata`` (JSON values) is stored in the manifest; :func:`read_manifest` returns it.
    """
    import skops.io as sio
    from safetensors.torch import save_file

    folder = Path(path)
    _check_target(folder, early=True)
    _check_importable(estimator)
    sink = _Sink()
    with _bound(_export, sink):
        state = sio.dumps(estimator)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"cannot create the folder {str(folder.parent)!r} to save path={str(folder)!r}: "
            f"{error.strerror}; choose a path you can write to"
        ) from error
    token = uuid.uuid4().hex[:12]
    partial = folder.with_name(f".{folder.name}.partial-{token}")
    try:
        partial.mkdir()
    except OSError as error:
        raise OSError(
            f"cannot write in {str(folder.parent)!r} to save path={str(folder)!r}: "
            f"{error.strerror}; choose a path you can write to"
        ) from error
    try:
        (partial / STATE).write_bytes(state)
        if sink.tensors:
            save_file(sink.tensors, partial / WEIGHTS)
            # safetensors writes its file owner-only; every file of a save follows the umask
            os.chmod(partial / WEIGHTS, (partial / STATE).stat().st_mode & 0o777)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            "versions": _versions(),
            "params": _jsonable(estimator.get_params(deep=False)),
            "networks": sorted(sink.keys.values()),
            # ties the files together: a file from another save, or a damaged one, is found
            "files": {file.name: _sha256(file) for file in sorted(partial.iterdir())},
            "metadata": _jsonable(metadata or {}),
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        with _locked(folder, exclusive=True):
            _recover(folder)
            _check_target(folder)  # again: another process may have written meanwhile
            _swap_in(partial, folder, token)
    except FileExistsError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except OSError as error:  # the disk is full, a permission: named by the user's path
        shutil.rmtree(partial, ignore_errors=True)
        raise type(error)(
            error.errno,
            f"cannot save to path={str(folder)!r}: {error.strerror or error}; nothing was "
            f"changed there (check the free space and permissions of {str(folder.parent)!r})",
        ) from error
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder


def _check_target(folder: Path, *, early: bool = False) -> None:
    """Refuse a ``path`` that is not empty and not one of our saves. ``early``: before the
    lock, to fail before any work; another process may be swapping a save in or out of
    ``folder`` right then (a folder that is gone or another one by the end of the look, or
    an error while looking), so only a conclusive answer raises (the check under the lock
    decides)."""
    try:
        before = _identity(folder)
        ours = before is None or (folder.is_dir() and _is_empty_or_saved(folder))
        if early and _identity(folder) != before:
            return
    except OSError:
        if early:
            return
        raise
    if not ours and not (early and _is_swapping(folder)):
        raise FileExistsError(
            f"path={str(folder)!r} exists and is not a saved estimator (it holds files a save "
            "does not write); choose a new folder"
        )


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder is at ``folder`` (device and inode), ``None`` where there is none: a
    save swapped in between two looks changes it."""
    try:
        status = folder.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _is_swapping(folder: Path) -> bool:
    """Whether some save of ``folder`` is in flight (its temporary siblings exist)."""
    return any(folder.parent.glob(f".{folder.name}.partial-*"))


def _swap_in(new: Path, folder: Path, token: str) -> None:
    """Put the complete save ``new`` at ``folder``; the earlier save is removed only after."""
    aside = folder.with_name(f".{folder.name}.old-{token}")
    if folder.exists():
        folder.rename(aside)
    new.rename(folder)
    shutil.rmtree(aside, ignore_errors=True)


def _recover(folder: Path) -> None:
    """A crash between the two renames of :func:`_swap_in` leaves no save at ``folder`` and
    the earlier one aside: put the newest complete one back."""
    if folder.exists() or not folder.parent.is_dir():
        return
    aside = [p for p in folder.parent.glob(f".{folder.name}.old-*") if _is_our_save(p)]
    if aside:
        max(aside, key=lambda p: p.stat().st_mtime).rename(folder)


@contextmanager
def _locked(folder: Path, *, exclusive: bool) -> Iterator[bool]:
    """A lock on the saves in ``folder``'s parent: ``flock`` on the parent folder itself, so no
    lock file is created, left behind, or needed where the user may only read. Exclusive while
    a save is swapped in, shared while one is read. Where there is no ``flock`` (Windows, a
    file system that refuses it) nothing is locked, and :func:`load` checks what it read
    against the manifest's checksums instead (and reads again if a swap came between)."""
    try:
        import fcntl

        descriptor = os.open(folder.parent, os.O_RDONLY)
    except (ImportError, OSError):
        yield False
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            locked = True
        except OSError:
            locked = False  # a file system without flock (some network mounts)
        yield locked
    finally:
        os.close(descriptor)  # releases the lock


def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def _check_importable(estimator: Any) -> None:
    """Refuse a parameter that no load could rebuild: a function or class (or an object of a
    class) that cannot be imported by its name."""
    for name, value in estimator.get_params(deep=True).items():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if item is None or isinstance(item, str | int | float | bool | np.generic):
                continue
            kind = item if isinstance(item, type) or inspect.isroutine(item) else type(item)
            if not _importable(kind):
                raise ValueError(
                    f"parameter {name}={item!r} cannot be saved: "
                    f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', '?')} "
                    "cannot be imported by name (a lambda, or a function or class defined "
                    "inside a function), so no load could rebuild it; define it at module level"
                )


def _importable(obj: Any) -> bool:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or "<" in qualname:
        return False
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return False
    return found is obj


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
    from safetensors.torch import load as load_tensors

    folder = Path(path)
    manifest, contents = _read_save(folder)
    state = contents[STATE]
    try:
        found = sio.get_untrusted_types(data=state)
    except Exception as error:  # skops' own errors for a file that is not a skops archive
        raise ValueError(f"{folder / STATE} cannot be read: {error}") from error
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
    try:
        tensors = load_tensors(contents[WEIGHTS]) if WEIGHTS in contents else {}
    except Exception as error:  # safetensors' SafetensorError for a damaged file
        raise ValueError(f"{weights} cannot be read: {error}") from error
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


class CallbacksNotSavedWarning(UserWarning):
    """A loaded estimator was saved without the Lightning callbacks it was given: callbacks
    are training-time objects (they hold a run's state, tensors, sometimes open files), so the
    safe format does not store them; pass them again before fitting it again."""


def saving() -> bool:
    """Whether :func:`save` is running (an estimator's ``__getstate__`` then leaves out what
    the safe format does not hold, such as training callbacks)."""
    return _export.get() is not None


def loading() -> bool:
    """Whether :func:`load` is running (an estimator's ``__setstate__`` then refuses what the
    safe format never holds, such as TorchScript)."""
    return _import.get() is not None


# reads of a save that a concurrent swap changed midway, where no lock keeps swaps out
READ_ATTEMPTS = 5


def _read_save(folder: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and the bytes of every file of the save at ``folder``, read while holding
    the shared lock (:func:`_locked`) and checked against the manifest's checksums, so that
    they are one save's files. A missing save names ``path``; a crash mid-swap is recovered."""
    if not folder.is_dir() and not folder.parent.is_dir():
        raise FileNotFoundError(f"path={str(folder)!r} does not exist: nothing was saved there")
    exclusive = False
    for attempt in range(READ_ATTEMPTS):
        with _locked(folder, exclusive=exclusive) as locked:
            if not folder.exists():
                if locked and not exclusive:  # a crash mid-swap may have left the save aside
                    exclusive = True
                    continue
                _recover(folder)
            if not folder.exists():
                raise FileNotFoundError(
                    f"path={str(folder)!r} does not exist: nothing was saved there"
                )
            try:
                manifest = read_manifest(folder)
                return manifest, _read_files(folder, manifest)
            except (ValueError, FileNotFoundError):
                if locked or attempt == READ_ATTEMPTS - 1:
                    raise  # under the lock no swap came between: the save is damaged
        time.sleep(0.05 * (attempt + 1))  # unlocked: a swap may have come between; read again
    raise AssertionError("unreachable")


def _read_files(folder: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """The bytes of every file of the save, each with the checksum the manifest lists (format
    version 2 on; version 1 saves have no checksums)."""
    files = manifest.get("files")
    if files is None and manifest.get("format_version") == 1:
        names = [name for name in (STATE, WEIGHTS) if (folder / name).is_file()]
        return {name: (folder / name).read_bytes() for name in names}
    if not isinstance(files, dict) or STATE not in files:
        raise ValueError(f"{folder / MANIFEST} lists no checksums of the save's files")
    contents = {}
    for name, digest in files.items():
        file = folder / str(name)
        if Path(str(name)).name != name or not file.is_file():
            raise ValueError(f"{file} is missing: {folder} is not a complete save")
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(
                f"{file} does not match the checksum in {folder / MANIFEST}: the file is "
                "damaged, or comes from another save"
            )
        contents[str(name)] = data
    return contents


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a saved estimator; a clear error for a missing or newer format."""
    file = folder / MANIFEST
    if not file.is_file():
        raise FileNotFoundError(f"{folder} is not a saved estimator: it has no {MANIFEST}")
    try:
        manifest = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file} is not a readable manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        manifest = manifest if isinstance(manifest, dict) else {}
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

        Parameters
        ----------
        path : str or path
            The folder (created; an existing save there is replaced).

        Returns
        -------
        Path
            The folder written.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return save(self, path)

    @classmethod
    def load(
        cls: type[T], path: str | os.PathLike[str], *, trusted: bool | Sequence[str] = False
    ) -> T:
        """Read an estimator saved with :meth:`save`; see :func:`members.persistence.load`.

        Parameters
        ----------
        path : str or path
            The folder given to :meth:`save`.
        trusted : bool or list of str, default=False
            Types beyond the safe defaults to accept, or ``True`` for every type in the file
            (only for files from a source you trust).

        Returns
        -------
        estimator
            An instance of this class.
        """
        estimator = load(path, trusted=trusted)
        if not isinstance(estimator, cls):
            raise TypeError(
                f"{path} holds a {type(estimator).__name__}, not a {cls.__name__}; load it with "
                f"{type(estimator).__name__}.load or members.persistence.load"
            )
        return estimator


def _is_empty_or_saved(folder: Path) -> bool:
    return not any(folder.iterdir()) or _is_our_save(folder)


def _is_our_save(folder: Path) -> bool:
    """A folder this module wrote: a manifest of this format, and no file it does not write."""
    if not folder.is_dir() or not {p.name for p in folder.iterdir()} <= {MANIFEST, STATE, WEIGHTS}:
        return False
    try:
        return bool(json.loads((folder / MANIFEST).read_text()).get("format") == FORMAT)
    except (OSError, ValueError, AttributeError):
        return False


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
