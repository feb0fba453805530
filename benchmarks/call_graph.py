"""The path of one ``EnsembleClassifier.fit`` through the library's modules.

Issue 35's measure of how hard the code is to follow: a profile hook records every call from
one function of the four packages (``members``, ``combiners``, ``ensembles``, ``experiments``)
to another, through any number of frames of other libraries (Lightning calling a
``MemberModule`` is a call from ``members.training`` to ``members.module``). It prints:

- ``modules``: how many of the library's modules the fit visits;
- ``crossings``: the distinct calls (caller function, callee function) whose two functions lie
  in different modules: the module boundaries the path crosses;
- ``returns``: the distinct crossings into a module that is already on the call stack below
  the caller, i.e. a module the path had left and comes back to (an object calling back into
  its owner, as a training plan calling its estimator);
- with ``--list``, those calls themselves.

Distinct calls, not dynamic ones: a loop over batches or members counts once. Run::

    python benchmarks/call_graph.py [--list]

The fit: two ``NeuralClassifier`` members (an MLP and a 1-D CNN, 2 epochs) on 300 rows of a
``make_classification`` set, every option of the ensemble at its default (the held-out fifth,
learned weights, the refit on all rows, the fusion guard).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from sklearn.datasets import make_classification

from ensembles import EnsembleClassifier
from members import NeuralClassifier

PACKAGES = ("members", "combiners", "ensembles", "experiments")
ROOT = Path(__file__).resolve().parents[1]


def _module(frame) -> str | None:  # type: ignore[no-untyped-def]
    """The dotted name of the library module ``frame`` runs in, or ``None``."""
    try:
        path = Path(frame.f_code.co_filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    if path.parts[0] not in PACKAGES or path.suffix != ".py":
        return None
    return ".".join(path.with_suffix("").parts)


def trace(function) -> tuple[set[str], set[tuple[str, str]], set[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """Run ``function()`` under the profile hook; return the modules it visited, its
    crossings and its returns, as ``(caller, callee)`` pairs of ``module:function``."""
    modules: set[str] = set()
    crossings: set[tuple[str, str]] = set()
    returns: set[tuple[str, str]] = set()

    def hook(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event != "call":
            return
        module = _module(frame)
        if module is None:
            return
        modules.add(module)
        # the library frames below this one, innermost first
        below = []
        outer = frame.f_back
        while outer is not None:
            name = _module(outer)
            if name is not None:
                below.append((name, outer.f_code.co_qualname))
            outer = outer.f_back
        if not below or below[0][0] == module:
            return
        edge = (f"{below[0][0]}:{below[0][1]}", f"{module}:{frame.f_code.co_qualname}")
        crossings.add(edge)
        if any(name == module for name, _ in below[1:]):
            returns.add(edge)

    sys.setprofile(hook)
    try:
        function()
    finally:
        sys.setprofile(None)
    return modules, crossings, returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the crossings and returns")
    args = parser.parse_args()
    X, y = make_classification(300, 12, n_informative=6, n_classes=3, random_state=0)
    ensemble = EnsembleClassifier(
        [
            ("mlp", NeuralClassifier("mlp", max_epochs=2, random_state=0)),
            ("cnn", NeuralClassifier("cnn1d", max_epochs=2, random_state=1)),
        ],
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        modules, crossings, returns = trace(lambda: ensemble.fit(X, y))
    print(f"modules {len(modules)}  crossings {len(crossings)}  returns {len(returns)}")
    if args.list:
        for caller, callee in sorted(crossings):
            print(f"{'return' if (caller, callee) in returns else 'cross '}  {caller} -> {callee}")


if __name__ == "__main__":
    main()
