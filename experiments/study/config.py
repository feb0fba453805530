"""The study's config: its schema (dataclasses read by jsonargparse) and its validation.

A config names the library's classes (or any importable class) with ``class_path`` /
``init_args``, as in LightningCLI, and is validated before anything trains::

    data: {source: mnist1d}
    members:
      - name: cnn1d
        estimator: {class_path: members.NeuralClassifier, init_args: {module: cnn1d}}
        seeds: [0, 1, 2]
    combiners:
      mean: combiners.MeanCombiner
      weighted: combiners.WeightedCombiner

The configs in ``experiments/configs/`` ship with the package and run by name
(``ensembles-study mnist1d``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone

from combiners import BaseCombiner, MeanCombiner
from ensembles.distillation import distill_options
from experiments.study.compare import CompareConfig

# packaged configs that are LightningCLI configs (experiments/train_member.py), not studies
LIGHTNING_CLI_CONFIGS = ("member_cnn1d.yaml",)
SUBSETS = ("random", "greedy")
CALIBRATIONS = (None, "temperature")


@dataclass
class DataConfig:
    """Where the data comes from and how it is split.

    Parameters
    ----------
    source
        ``mnist1d``, ``digits28`` (upscaled, jittered 28x28 digits), a scikit-learn bundled set
        (``digits``, ``breast_cancer``, ``wine``, ``iris``, ``diabetes``) or a ``.npz`` / ``.csv``
        file.
    target
        The target's column of a ``.csv`` file.
    task
        ``classification`` or ``regression``; read from the targets when omitted.
    test_size
        Share of the rows held out as the test set (MNIST-1D keeps its standard split).
    validation_size
        Share of the training data held out from the members to fit the combiners (and the
        temperature), so every combiner is compared on the same members.
    seed
        Seed of the train/test split.
    ood_classes
        Classes left out of training and testing; their test rows are the out-of-distribution
        inputs of ``compare`` (as ``benchmarks/uncertainty.py ood`` holds out classes).
    """

    source: str = "mnist1d"
    target: str | None = None
    task: str | None = None
    test_size: float = 0.2
    validation_size: float = 0.2
    seed: int = 0
    ood_classes: list[int] | None = None


@dataclass
class MemberConfig:
    """One entry of the pool: an estimator, trained once per seed (its ``random_state``).

    Parameters
    ----------
    name
        The entry's name; its members are ``<name>_s<seed>`` (``<name>`` for one seed).
    estimator
        Any scikit-learn estimator, by ``class_path`` / ``init_args`` or a class path alone.
    seeds
        One member per seed.
    fine_tune
        The name of an earlier entry of one seed: each member of this entry starts from that
        entry's fitted network (``init=``), a fine-tune, so that the entry's members can be
        averaged in weight space (``soup``).
    """

    name: str
    estimator: BaseEstimator
    seeds: list[int] = field(default_factory=lambda: [0])
    fine_tune: str | None = None


@dataclass
class SoupConfig:
    """Weight-space fusion against output fusion and distillation (:mod:`.soups`).

    Parameters
    ----------
    members
        The entries whose members are the soup's ingredients (fine-tunes of one network).
    independent
        An entry of at least two networks trained from different seeds: their naive average
        and their averages after weight matching (``align="weights"``) and after activation
        matching on the training rows (``align="activations"``), and the interpolation curves
        between its first two.
    steps
        Points of the interpolation curve.
    """

    members: list[str] = field(default_factory=list)
    independent: str | None = None
    steps: int = 11


@dataclass
class DistillConfig:
    """Distill the full ensemble fused by ``combiner`` into ``student``.

    The other keys are those of ``EnsembleClassifier.distill`` (``null``: its default for the
    method).

    Parameters
    ----------
    student
        The student estimator (``class_path`` / ``init_args``).
    combiner
        The name of the study's combiner whose ensemble is the teacher.
    method
        ``function_matching`` or ``cached``.
    temperature
        Softens the teacher's and the student's distributions.
    alpha
        Weight of the teacher term against the labels.
    augment
        The views the student learns on: ``auto``, ``noise``, ``mixup``, ``munge`` or ``null``.
    n_augment
        Augmented copies of the transfer set (``cached`` only).
    budget
        The student's epochs as a multiple of its ``max_epochs`` (``function_matching``).
    validation_fraction
        Share of the transfer set held out to stop the student early.
    warm_start
        Start from the best member of the student's architecture.
    members
        The entries of ``members`` whose members make the teacher (default: the whole pool).
    """

    student: BaseEstimator
    combiner: str = "mean"
    method: str = "function_matching"
    temperature: float | None = None
    alpha: float | None = None
    augment: str | None = "auto"
    n_augment: int = 1
    budget: float | None = None
    validation_fraction: float | None = None
    warm_start: bool | None = None
    members: list[str] | None = None

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``distill`` besides the student."""
        return {
            k: v for k, v in asdict(self).items() if k not in ("student", "combiner", "members")
        }


# what a search space may say about one parameter, in YAML: a fixed value, a list of choices
# (numbers, strings, layer widths) or a range {low, high, log}; typed so that no value of a
# space is ever read as a class to instantiate
_Plain = str | int | float | bool | None
SpaceValue = _Plain | list[_Plain | list[int]] | dict[str, float | bool]


@dataclass
class SearchConfig:
    """Search the pool and compare it with a deep ensemble at equal budget.

    ``EnsembleSearchClassifier`` / ``EnsembleSearchRegressor``; with ``baseline``, a deep
    ensemble of ``estimator`` is compared with it at equal budget: ``n_trials`` seeds, the same
    held-out split (``data.validation_size`` of the training data) and the same selection.

    Parameters
    ----------
    estimator
        The template every trial configures (default: the first member's estimator).
    space
        A preset (``mlp``, ``cnn1d``, ``cnn2d``, ``any``), or a mapping of parameter to a value,
        a list of choices or a range ``{low, high, log}``, or a list of such mappings.
    n_trials
        Trials of the search (and seeds of the deep ensemble).
    ensemble_size
        Members the selection keeps.
    extra_seeds
        Retrain the selected configurations with this many more seeds each.
    objectives
        ``nll`` (or ``rmse``) first, then ``latency`` and ``parameters`` for a Pareto front.
    baseline
        Also build the deep ensemble of ``estimator`` seeds.
    """

    estimator: BaseEstimator | None = None
    space: str | dict[str, SpaceValue] | list[dict[str, SpaceValue]] = "mlp"
    n_trials: int = 24
    ensemble_size: int = 5
    extra_seeds: int = 0
    objectives: list[str] | None = None
    baseline: bool = True


@dataclass
class ShiftConfig:
    """Evaluate under dataset shift (:mod:`experiments.shift`).

    The test inputs are corrupted by each of ``corruptions`` at each of ``severities``, and
    scored for the mean member, the full pool fused by ``combiner``, that ensemble calibrated
    (temperature, fitted on the clean validation data; classification) and the student (with
    ``distill``).

    Parameters
    ----------
    corruptions
        Some of ``noise``, ``scale``, ``shift``, ``occlusion``, and ``mnist1d`` (fresh MNIST-1D
        rows drawn with harder generator settings; MNIST-1D studies only).
    severities
        Ints in 1 to 5.
    layout
        How a row's features lie: ``tabular``, ``signal`` or ``image`` (of ``image_shape``).
    image_shape
        ``[height, width]`` of an image row (a square when omitted).
    combiner
        The name of the study's combiner whose ensemble is scored.
    """

    corruptions: list[str] = field(default_factory=lambda: ["noise", "scale", "shift", "occlusion"])
    severities: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    layout: str = "tabular"
    image_shape: list[int] | None = None
    combiner: str = "mean"


@dataclass
class StudyConfig:
    """One ensemble study: the keys of a study's YAML file.

    Parameters
    ----------
    members
        The pool: a list of entries (``name``, ``estimator``, ``seeds``).
    data
        Where the data comes from and how it is split.
    combiners
        Fusion rules by name (``class_path`` / ``init_args``, or a class path alone); the plain
        mean when omitted.
    sizes
        Ensemble sizes to score (default: 1 to all members).
    subsets
        How the members of each size are drawn: ``random`` or ``greedy`` (forward selection on
        the validation NLL).
    draws
        Random draws per size (``subsets: random``).
    calibration
        ``temperature`` (classification), fitted on the validation data, or ``null``.
    distill
        Distil the ensemble into one student (optional).
    search
        A searched pool against a deep ensemble (optional).
    shift
        Every model on corrupted test inputs (optional).
    compare
        Whole systems (single network, deep ensemble, ensembles inside one network...) side by
        side, as ratios to a baseline (optional; :mod:`experiments.study.compare`).
    soup
        Soups of the pool's fine-tunes against their output ensemble and the student
        (optional; :mod:`experiments.study.soups`).
    seed
        Seed of the validation split, the draws and the student.
    output
        The output folder (``--output`` overrides it).
    n_jobs
        Member trainings at once (``--n-jobs`` overrides it).
    """

    members: list[MemberConfig]
    data: DataConfig = field(default_factory=DataConfig)
    combiners: dict[str, BaseCombiner] | None = None
    sizes: list[int] | None = None
    subsets: str = "random"
    draws: int = 3
    calibration: str | None = None
    distill: DistillConfig | None = None
    search: SearchConfig | None = None
    shift: ShiftConfig | None = None
    compare: CompareConfig | None = None
    soup: SoupConfig | None = None
    seed: int = 0
    output: str = "study"
    # member trainings at once (EnsembleClassifier's n_jobs); ensembles-study --n-jobs overrides;
    # checked by Study, where the two meet
    n_jobs: int | None = None


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key or value."""


def _parser() -> Any:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="ensembles-study", exit_on_error=False)
    parser.add_class_arguments(StudyConfig)
    return parser


def packaged_configs() -> list[str]:
    """Names of the study configs shipped with the package (``ensembles-study NAME``)."""
    folder = resources.files("experiments") / "configs"
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml") and entry.name not in LIGHTNING_CLI_CONFIGS
    )


def find_config(config: str | Path) -> Path:
    """The file a config argument names: a path, or the name of a packaged config."""
    path = Path(config)
    if path.is_dir():
        raise ConfigError(f"config {str(path)!r} is a directory; expected a YAML file")
    if path.is_file():
        return path
    name = str(config).removesuffix(".yaml")
    if name in packaged_configs():
        with resources.as_file(resources.files("experiments") / "configs" / f"{name}.yaml") as p:
            return Path(p)
    raise ConfigError(
        f"config file {str(config)!r} does not exist, and it is not the name of a packaged "
        f"config ({', '.join(packaged_configs())})"
    )


def read_config(path: str | Path) -> StudyConfig:
    """Parse and validate a study config (a file, or a packaged config's name); every problem
    is a :class:`ConfigError`."""
    from jsonargparse import ArgumentError

    path = find_config(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"config {str(path)!r} is not a text (UTF-8) YAML file; is it the right file?"
        ) from None
    if not text.strip():
        raise ConfigError(
            f"config {str(path)!r} is empty; a study config is a YAML mapping with at least "
            "data and members (see the packaged ones: ensembles-study --help)"
        )
    parser = _parser()
    try:
        namespace = parser.parse_path(str(path))
        fields = parser.instantiate(namespace)
    except (ArgumentError, ValueError, TypeError, ImportError, AttributeError) as error:
        raise ConfigError(" ".join(str(error).split())) from None
    config = StudyConfig(**{name: fields[name] for name in StudyConfig.__dataclass_fields__})
    _check(config)
    return config


def _check(config: StudyConfig) -> None:
    """What the schema's types cannot say; checked before anything trains."""
    from members.registry import get_backbone

    if not config.members:
        raise ConfigError("members must list at least one estimator")
    names = [member.name for member in config.members]
    if len(set(names)) != len(names):
        raise ConfigError(f"members: names must be unique; got {names}")
    for member in config.members:
        if not member.seeds:
            raise ConfigError(f"members[{member.name}].seeds must hold at least one seed")
        module = member.estimator.get_params().get("module")
        if isinstance(module, str):
            try:
                get_backbone(module)
            except ValueError as error:
                raise ConfigError(f"members[{member.name}]: {error}") from None
    if config.subsets not in SUBSETS:
        raise ConfigError(f"subsets={config.subsets!r} is not one of {list(SUBSETS)}")
    if config.calibration not in CALIBRATIONS:
        raise ConfigError(f"calibration={config.calibration!r} is not one of {CALIBRATIONS}")
    if config.draws < 1:
        raise ConfigError(f"draws must be >= 1; got {config.draws}")
    if not 0.0 <= config.data.validation_size < 1.0:
        raise ConfigError(
            f"data.validation_size must be in [0, 1); got {config.data.validation_size}"
        )
    n_members = sum(len(member.seeds) for member in config.members)
    bad_sizes = [size for size in config.sizes or [] if not 1 <= size <= n_members]
    if bad_sizes:
        raise ConfigError(f"sizes {bad_sizes} are outside 1..{n_members} (the pool's size)")
    combiners = study_combiners(config)
    _check_fixed_rules(combiners, config.sizes or list(range(1, n_members + 1)))
    learns = any(combiner.learns for combiner in combiners.values()) or config.calibration
    if learns and config.data.validation_size == 0:
        raise ConfigError(
            "data.validation_size must be > 0: a combiner that learns (or calibration) is "
            "fitted on data the members did not train on"
        )
    if config.distill is not None and config.distill.combiner not in combiners:
        raise ConfigError(
            f"distill.combiner={config.distill.combiner!r} is not one of the combiners "
            f"{sorted(combiners)}"
        )
    unknown = set(config.distill.members or []) - set(names) if config.distill else set()
    if unknown:
        raise ConfigError(f"distill.members names {sorted(unknown)}, which are not members")
    if config.distill is not None:
        try:
            distill_options(**config.distill.options())
        except ValueError as error:
            raise ConfigError(f"distill: {error}") from None
    if config.search is not None:
        _check_search(config)
    if config.shift is not None:
        _check_shift(config, combiners)
    if config.compare is not None:
        _check_compare(config)
    _check_fine_tunes(config)
    if config.soup is not None:
        _check_soup(config)
    if config.data.ood_classes is not None and not config.data.ood_classes:
        raise ConfigError("data.ood_classes must name at least one class, or be left out")


def _check_fine_tunes(config: StudyConfig) -> None:
    earlier: dict[str, MemberConfig] = {}
    for member in config.members:
        parent = member.fine_tune
        if parent is not None:
            where = f"members[{member.name}].fine_tune={parent!r}"
            if parent not in earlier:
                raise ConfigError(f"{where} must name an earlier entry of members")
            if len(earlier[parent].seeds) != 1:
                raise ConfigError(f"{where}: that entry must have one seed, the network to tune")
            params = member.estimator.get_params()
            if "init" not in params or type(member.estimator) is not type(
                earlier[parent].estimator
            ):
                raise ConfigError(
                    f"{where}: a fine-tune is a network estimator of the class of the entry it "
                    f"starts from ({type(earlier[parent].estimator).__name__}); got "
                    f"{type(member.estimator).__name__}"
                )
        earlier[member.name] = member


def _check_soup(config: StudyConfig) -> None:
    soup = config.soup
    assert soup is not None
    entries = {member.name: member for member in config.members}
    if not soup.members:
        raise ConfigError("soup.members must name the entries whose members are averaged")
    for name in [*soup.members, *([soup.independent] if soup.independent else [])]:
        if name not in entries:
            raise ConfigError(f"soup: {name!r} is not one of the members {sorted(entries)}")
        if "init" not in entries[name].estimator.get_params():
            raise ConfigError(f"soup: members[{name}] must be network estimators to average")
    if soup.independent is not None and len(entries[soup.independent].seeds) < 2:
        raise ConfigError(f"soup.independent={soup.independent!r} must have at least 2 seeds")
    if config.data.validation_size == 0:
        raise ConfigError(
            "soup needs data.validation_size > 0: the greedy soup chooses its ingredients on "
            "rows the members did not train on"
        )
    if soup.steps < 3:
        raise ConfigError(f"soup.steps must be >= 3; got {soup.steps}")


def _check_compare(config: StudyConfig) -> None:
    compare = config.compare
    assert compare is not None
    seeds = {member.name: len(member.seeds) for member in config.members}
    names = [system.name for system in compare.systems]
    if not names:
        raise ConfigError("compare.systems must list at least one system")
    if len(set(names)) != len(names):
        raise ConfigError(f"compare.systems: names must be unique; got {names}")
    for system in compare.systems:
        if system.member not in seeds:
            raise ConfigError(
                f"compare.systems[{system.name}].member={system.member!r} is not one of the "
                f"members {sorted(seeds)}"
            )
        if not 1 <= system.size <= seeds[system.member]:
            raise ConfigError(
                f"compare.systems[{system.name}].size={system.size} must be between 1 and the "
                f"{seeds[system.member]} seeds of members[{system.member}]"
            )
    if compare.baseline not in names:
        raise ConfigError(f"compare.baseline={compare.baseline!r} is not one of {names}")


def _check_fixed_rules(combiners: dict[str, BaseCombiner], sizes: list[int]) -> None:
    """A fixed rule (given weights, say) fitted at every ensemble size the study fuses, on no
    rows: its own checks run before anything trains, not after the pool did."""
    for name, combiner in combiners.items():
        if combiner.learns:
            continue
        for size in sizes:
            try:
                clone(combiner).fit(np.zeros((size, 0, 2)))
            except (ValueError, TypeError) as error:
                raise ConfigError(
                    f"combiners.{name} cannot fuse the ensembles of {size} member(s) the study "
                    f"builds (sizes {sizes}): {error}; set sizes to those it can fuse"
                ) from None


def _check_shift(config: StudyConfig, combiners: dict[str, BaseCombiner]) -> None:
    from experiments.shift import CORRUPTIONS, LAYOUTS, SEVERITIES

    shift = config.shift
    assert shift is not None
    known = [*CORRUPTIONS, "mnist1d"]
    bad = [kind for kind in shift.corruptions if kind not in known]
    if bad or not shift.corruptions:
        raise ConfigError(f"shift.corruptions must name some of {known}; got {shift.corruptions}")
    if "mnist1d" in shift.corruptions and config.data.source != "mnist1d":
        raise ConfigError("shift.corruptions: 'mnist1d' needs data.source: mnist1d")
    if not shift.severities or any(s not in SEVERITIES for s in shift.severities):
        raise ConfigError(f"shift.severities must be ints in 1..5; got {shift.severities}")
    if shift.layout not in LAYOUTS:
        raise ConfigError(f"shift.layout must be one of {list(LAYOUTS)}; got {shift.layout!r}")
    if shift.image_shape is not None and len(shift.image_shape) != 2:
        raise ConfigError(f"shift.image_shape must be [height, width]; got {shift.image_shape}")
    if shift.combiner not in combiners:
        raise ConfigError(
            f"shift.combiner={shift.combiner!r} is not one of the combiners {sorted(combiners)}"
        )


def _check_search(config: StudyConfig) -> None:
    from ensembles.search_space import parse_space

    search = config.search
    assert search is not None
    for name, low in (("n_trials", 1), ("ensemble_size", 1), ("extra_seeds", 0)):
        if getattr(search, name) < low:
            raise ConfigError(f"search.{name} must be >= {low}; got {getattr(search, name)}")
    try:
        parse_space(search.space)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"search.space: {error}") from None
    if not 0.0 < config.data.validation_size < 1.0:
        raise ConfigError(
            "data.validation_size must be > 0 for search: every trial is judged, and the "
            "ensemble selected, on that share of the training data"
        )


def study_combiners(config: StudyConfig) -> dict[str, BaseCombiner]:
    """The study's combiners by name; the plain mean when the config names none."""
    return config.combiners or {"mean": MeanCombiner()}
