"""Parameter constraints in scikit-learn's ``_parameter_constraints`` vocabulary.

Estimators declare ``_parameter_constraints`` and call ``self._validate_params()`` at the start
of ``fit``; backbones call :func:`check_params` in ``__init__``, before torch sees a value. Both
raise scikit-learn's ``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``) in one
shape: ``The 'lr' parameter of NeuralClassifier must be a float in the range (0.0, inf). Got
nan instead.``

The constraints below extend that vocabulary where this library needs more (a registered
backbone name, a list of callbacks, a sequence of layer widths); they subclass scikit-learn's
own constraint classes, so ``make_constraint`` and ``check_param_validation`` accept them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "ListOf",
    "Names",
    "PositiveInts",
    "RealNotInt",
    "StrOptions",
    "check_params",
]


class Names(StrOptions):
    """A string among the keys of ``registry`` at the time of the check (it may grow)."""

    def __init__(self, registry: Mapping[str, Any], what: str) -> None:
        self.registry, self.what = registry, what
        super().__init__(set())

    @property  # type: ignore[override]
    def options(self) -> set[str]:
        return set(self.registry)

    @options.setter
    def options(self, value: Any) -> None:  # StrOptions.__init__ assigns it
        pass

    def __str__(self) -> str:
        return f"one of the {self.what}s {sorted(self.registry)}"


class ListOf(Options):
    """A list whose every element is an instance of ``kind``."""

    def __init__(self, kind: type, what: str) -> None:
        super().__init__(list, set())
        self.kind, self.what = kind, what

    def is_satisfied_by(self, val: Any) -> bool:
        return isinstance(val, list) and all(isinstance(item, self.kind) for item in val)

    def __str__(self) -> str:
        return f"a list of {self.what}"


class PositiveInts(Options):
    """A sequence (list or tuple) of ints >= 1, such as layer widths; non-empty unless
    ``allow_empty``."""

    def __init__(self, *, allow_empty: bool = False) -> None:
        super().__init__(Sequence, set())
        self.allow_empty = allow_empty

    def is_satisfied_by(self, val: Any) -> bool:
        return (
            isinstance(val, list | tuple)
            and (self.allow_empty or len(val) > 0)
            and all(
                isinstance(v, Integral) and not isinstance(v, bool) and int(v) >= 1 for v in val
            )
        )

    def __str__(self) -> str:
        return f"a {'' if self.allow_empty else 'non-empty '}list or tuple of ints >= 1"


def _positive_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= 1


def check_params(caller: str, constraints: dict[str, list[Any]], **params: Any) -> None:
    """Raise ``InvalidParameterError`` naming the first of ``params`` that breaks its
    constraint (the shape of scikit-learn's messages).

    Examples
    --------
    >>> from numbers import Real
    >>> check_params("MLP", {"dropout": [Interval(Real, 0, 1, closed="left")]}, dropout=0.5)
    >>> check_params("MLP", {"dropout": [Interval(Real, 0, 1, closed="left")]}, dropout=1.5)
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'dropout' parameter of MLP must be a float in the range [0.0, 1.0). Got 1.5 instead.
    """  # noqa: E501
    validate_parameter_constraints(constraints, params, caller_name=caller)
