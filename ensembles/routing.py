"""Which members take part in a fit, and what each gets besides ``(X, y)``.

A member set to ``"drop"`` takes no part (:func:`is_drop`). ``sample_weight`` and other fit
metadata reach the members by scikit-learn's metadata routing when it is enabled
(:func:`metadata_router`), else ``sample_weight`` goes to every member, each of which must
take it (:func:`route_fit`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.validation import has_fit_parameter

from ensembles.splits import PREFIT

DROP = "drop"


def is_drop(estimator: Any) -> bool:
    """Whether a member is switched off (``set_params(<name>="drop")``).

    Examples
    --------
    >>> is_drop("drop"), is_drop(None)
    (True, False)
    """
    return isinstance(estimator, str) and estimator == DROP


def route_fit(
    ensemble: Any,
    active: list[tuple[str, Any]],
    sample_weight: np.ndarray | None,
    fit_params: dict[str, Any],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """What each member of ``ensemble`` (the ``active`` ones, by name) gets in ``fit`` besides
    ``(X, y)``, and what the splitter's ``split`` gets: by metadata routing when it is enabled,
    else
    ``sample_weight`` to every member (each must take it). Prefit members are not
    trained: they get nothing."""
    if ensemble.cv == PREFIT:
        if fit_params:
            raise TypeError(
                f"{type(ensemble).__name__}.fit got {sorted(fit_params)}, but with "
                "cv='prefit' no member is trained: there is nothing to pass them to"
            )
        return {name: {} for name, _ in active}, {}
    if _routing_enabled():
        weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        routed = process_routing(ensemble, "fit", **weights, **fit_params)
        split = dict(routed["splitter"].split) if "splitter" in routed else {}
        return {name: dict(routed[name].fit) for name, _ in active}, split
    if fit_params:
        raise TypeError(
            f"{type(ensemble).__name__}.fit got {sorted(fit_params)}: metadata other than "
            "sample_weight reaches the members through scikit-learn's metadata routing "
            "only: sklearn.set_config(enable_metadata_routing=True), then "
            "member.set_fit_request(<name>=True) on the members that take it"
        )
    if sample_weight is None:
        return {name: {} for name, _ in active}, {}
    for name, estimator in active:
        if not has_fit_parameter(estimator, "sample_weight"):
            raise TypeError(
                f"member {name!r} ({type(estimator).__name__}) takes no sample_weight in "
                "fit, so a weighted fit cannot reach it and the ensemble would not learn "
                f"the weighted problem; drop it (set_params({name}='drop')), or enable "
                "metadata routing (sklearn.set_config(enable_metadata_routing=True)) and "
                "say which members take the weights with set_fit_request"
            )
    return {name: {"sample_weight": sample_weight} for name, _ in active}, {}


def metadata_router(ensemble: Any) -> MetadataRouter:
    """``ensemble``'s metadata routing (scikit-learn's): it uses ``sample_weight`` itself (its
    combiner and calibration) and routes ``fit`` metadata to each member that requests
    it, and ``split`` metadata (``groups``) to a splitter ``cv``."""
    router = MetadataRouter(owner=ensemble).add_self_request(ensemble)
    for name, estimator in ensemble.members:
        if not is_drop(estimator) and ensemble.cv != PREFIT:  # prefit members are not fitted
            router.add(
                **{name: estimator},
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
    if hasattr(ensemble.cv, "split"):
        router.add(
            splitter=ensemble.cv, method_mapping=MethodMapping().add(caller="fit", callee="split")
        )
    return router
