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
# numpydoc's validation of every docstring the site renders (``-W`` turns a finding into a
# failed build); tests/test_docstrings.py runs the same checks over the whole public API.
# Every check but these:
NUMPYDOC_SKIPPED = {
    "ES01": "an extended summary: short methods say all in their summary",
    "SA01": "a See Also section: the guide pages link related names",
    "EX01": "an Examples section on every method: every public class and function has one",
    "SS05": "a summary starting with a verb: ours often name what is returned",
}
numpydoc_validation_checks = {"all", *NUMPYDOC_SKIPPED}
# the methods of torch's and Lightning's protocols (forward, training_step, the hooks): their
# contract is documented by torch and Lightning, and ours add nothing a user calls
NUMPYDOC_PROTOCOL = (
    r"\.(forward|training_step|validation_step|configure_optimizers|on_[a-z_]+|state_dict"
    r"|load_state_dict)$"
)
# the registries are dicts: numpydoc would read Python's docstring of dict (their ``#:``
# comments document them)
numpydoc_validation_exclude = {
    NUMPYDOC_PROTOCOL,
    r"^combiners\.COMBINERS$",
    r"^members\.BACKBONES$",
}
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

# the study config's reference: generated from its schema (the dataclasses jsonargparse reads)
STUDY_SECTIONS = {  # the YAML key of each dataclass, in the page's order
    "StudyConfig": "(the file)",
    "DataConfig": "data",
    "MemberConfig": "members[]",
    "DistillConfig": "distill",
    "SearchConfig": "search",
    "ShiftConfig": "shift",
}


def type_name(hint: object) -> str:
    """A type hint as the reference shows it: ``int or None``, ``list of str``."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in typing.get_args(hint))
    if origin in (list, dict):
        inner = " to ".join(type_name(arg) for arg in typing.get_args(hint))
        return f"{origin.__name__} of {inner}"
    if hint is type(None):
        return "null"
    name = getattr(hint, "__name__", str(hint))
    return f"[{name}](#{name.lower()})" if name in STUDY_SECTIONS else f"`{name}`"


def default_text(field: object) -> str:
    import dataclasses

    if field.default is not dataclasses.MISSING:  # type: ignore[attr-defined]
        value = field.default  # type: ignore[attr-defined]
    elif field.default_factory is not dataclasses.MISSING:  # type: ignore[attr-defined]
        value = field.default_factory()  # type: ignore[attr-defined]
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "its defaults"
    return "`null`" if value is None else f"`{value!r}`".replace("'", "")


def write_study_schema() -> None:
    """``guide/study_schema.md``: every key of a study config with its type and default (read
    from the dataclasses) and its meaning (their docstrings' Parameters). A key without a
    description, or a description of no key, fails the build."""
    import dataclasses
    import inspect
    import typing

    from numpydoc.docscrape import NumpyDocString

    from experiments.study import config

    lines = [
        "# Study config reference",
        "",
        "Every key of a study's YAML file (`ensembles-study CONFIG`), generated from the schema",
        "that validates it (the dataclasses of `experiments/study/config.py`, read by",
        "jsonargparse), when this site is built. Estimators and combiners are named by",
        "`class_path` / `init_args` (or a class path alone), as in LightningCLI. The guide page",
        "[Studies](studies.md) shows a whole file.",
        "",
    ]
    for name, key in STUDY_SECTIONS.items():
        cls = getattr(config, name)
        doc = NumpyDocString(inspect.getdoc(cls) or "")
        described = {entry.name: " ".join(entry.desc) for entry in doc["Parameters"]}
        fields = {field.name: field for field in dataclasses.fields(cls)}
        if set(described) != set(fields):
            raise ValueError(
                f"{name}: documented keys {sorted(described)} differ from the schema's "
                f"{sorted(fields)}"
            )
        hints = typing.get_type_hints(cls)
        lines += [f"## {name}", "", f"Key: `{key}`." if key != "(the file)" else "The file.", ""]
        lines += [" ".join(doc["Summary"]), ""]
        if doc["Extended Summary"]:
            lines += [" ".join(doc["Extended Summary"]), ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for field_name, field in fields.items():
            lines.append(
                f"| `{field_name}` | {type_name(hints[field_name])} | {default_text(field)} | "
                f"{described[field_name]} |"
            )
        lines.append("")
    page = DOCS / "guide" / "study_schema.md"
    text = "\n".join(lines)
    if not page.exists() or page.read_text() != text:
        page.write_text(text)


write_study_schema()


def skip_foreign_members(app, what, name, obj, skip, options):  # type: ignore[no-untyped-def]
    """A class page shows the methods this library writes, its own and those it inherits from
    its own base classes (``EnsembleClassifier.fit`` is ``BaseEnsemble``'s), not those of
    torch, Lightning or scikit-learn, whose docs describe them (with references to glossaries
    this site lacks). scikit-learn's ``set_<method>_request`` are generated per estimator."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    function = getattr(obj, "fget", obj)  # a property's getter
    function = getattr(function, "__func__", function)  # a classmethod's function
    module = getattr(function, "__module__", None)
    if what == "class" and callable(function) and module is not None:
        if module.split(".")[0] not in PACKAGES:
            return True
    return None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-skip-member", skip_foreign_members)
