"""Experiments on top of the library: YAML ensemble studies (:mod:`experiments.study`, the
``ensembles-study`` command), data sources (:mod:`experiments.data`), the LightningCLI scripts
(``train_member``, ``ensemble_from_checkpoints``) and the comparison scripts (``mnist1d_*``,
``checkpoint_resume``). It uses only the public API of ``ensembles``, ``members`` and
``combiners``; nothing there imports it.

The study configs in ``experiments/configs/`` ship with the package.
"""
