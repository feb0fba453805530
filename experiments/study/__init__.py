"""Ensemble studies from one YAML file: ``ensembles-study CONFIG [--output DIR]``.

A study trains every member of a pool once (cached on disk), evaluates every combiner at every
ensemble size, optionally distills the full ensemble into one student, and writes
``results.csv`` / ``results.json`` (one row per member, ensemble and student), ``summary.md``
and plots. The package is split by job:

- :mod:`experiments.study.config`: the schema and its validation; packaged configs by name;
- :mod:`experiments.study.runner`: :class:`Study`, which trains, fuses and distills;
- :mod:`experiments.study.report` and :mod:`experiments.study.plots`: tables, summary, plots;
- :mod:`experiments.study.cli`: the ``ensembles-study`` command.
"""

from experiments.study.cli import main
from experiments.study.config import (
    ConfigError,
    DataConfig,
    DistillConfig,
    MemberConfig,
    StudyConfig,
    packaged_configs,
    read_config,
)
from experiments.study.runner import Study

__all__ = [
    "ConfigError",
    "DataConfig",
    "DistillConfig",
    "MemberConfig",
    "Study",
    "StudyConfig",
    "main",
    "packaged_configs",
    "read_config",
]
