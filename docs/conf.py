"""Sphinx configuration of the documentation site.

Built with ``python -m sphinx -W -b html docs docs/_build/html`` (``.ci/run`` does).

The API reference is generated from the packages' ``__all__`` (one page per public name,
:func:`write_api_pages`), so a name added to a package gets its page without editing a list.
"""

from __future__ import annotations

import importlib
from pathlib import Path

DOCS = Path(__file__).parent
PACKAGES = {
    "members": "Networks as scikit-learn estimators: backbones, the Lightning module, training, "
    "the batched engine, compression.",
    "combiners": "Fusion rules on member outputs of shape ``(n_members, n_samples, n_outputs)``, "
    "calibration and the metrics.",
    "ensembles": "Ensembles of any scikit-learn estimators: fusion without leakage, snapshot "
    "ensembles, the pool search, distillation, uncertainty.",
}

project = "torch-fusion-ensembles"
author = "the torch-fusion-ensembles developers"
copyright = "2026, " + author

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "api/generated/*.examples", "auto_examples/*.ipynb"]
autosummary_generate = True
templates_path = ["_templates"]
autodoc_inherit_docstrings = False  # Lightning's and scikit-learn's docstrings are theirs
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3
# the gallery: every examples/plot_*.py runs when the site is built, its figures go in the page
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "remove_config_comments": True,
}
html_theme = "pydata_sphinx_theme"
html_title = project
html_theme_options = {"navigation_with_keys": False}


def public_names(package: str) -> list[str]:
    """The names of ``package.__all__``, as the API reference lists them."""
    return list(importlib.import_module(package).__all__)


def write_api_pages() -> None:
    """``api/<package>.rst`` for each package: an autosummary table of its ``__all__``."""
    for package, summary in PACKAGES.items():
        lines = [
            f"``{package}``",
            "=" * (len(package) + 4),
            "",
            f".. automodule:: {package}",
            "   :no-members:",
            "",
            summary,
            "",
            f".. currentmodule:: {package}",
            "",
            ".. autosummary::",
            "   :toctree: generated",
            "",
            *(f"   {name}" for name in public_names(package)),
            "",
        ]
        page = DOCS / "api" / f"{package}.rst"
        text = "\n".join(lines)
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


write_api_pages()


def skip_metadata_requests(app, what, name, obj, skip, options):  # type: ignore[no-untyped-def]
    """scikit-learn writes a ``set_<method>_request`` for every estimator; its own docs
    describe them (metadata routing), with references to its glossary that this site lacks."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-skip-member", skip_metadata_requests)
