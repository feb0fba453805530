"""The ``ensembles-study`` console script (also ``python -m experiments.study``)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

from experiments.study.config import ConfigError, packaged_configs, read_config
from experiments.study.runner import Study


def main(argv: list[str] | None = None) -> int:
    """Run the study a config describes; exit 2 with one line for a config that cannot run."""
    parser = argparse.ArgumentParser(
        prog="ensembles-study", description="Run an ensemble study described by a YAML config."
    )
    parser.add_argument(
        "config",
        help="the study's YAML file, or the name of a packaged config "
        f"({', '.join(packaged_configs())})",
    )
    parser.add_argument("--output", help="output folder (default: the config's output key)")
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="members trained at once (-1: every core; default: the config's n_jobs, else 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--verbose", action="store_true", help="also Lightning's per-member progress bars"
    )
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # one line per warning, naming the tool, not a source line of the library
        warnings.showwarning = _one_line_warning
        return _run(args)


def _one_line_warning(
    message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
) -> None:
    print(f"ensembles-study: {category.__name__}: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    try:
        config = read_config(args.config)
        study = Study(
            config, args.output, quiet=args.quiet, verbose=args.verbose, n_jobs=args.n_jobs
        )
        start = time.perf_counter()
        study.run()
    except (ConfigError, FileNotFoundError, ImportError) as error:
        print(f"ensembles-study: error: {args.config}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        where = " ".join(getattr(interrupt, "__notes__", [])) or "interrupted"
        print(f"ensembles-study: {where}", file=sys.stderr)
        return 130
    print(
        f"study finished in {time.perf_counter() - start:.0f} s; wrote {study.output}/summary.md, "
        "results.csv, results.json and plots/",
        file=sys.stderr,
    )
    print((study.output / "summary.md").read_text())
    return 0
