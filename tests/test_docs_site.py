"""The documentation site, as ``.ci/run`` builds it before the tests
(``python -m sphinx -W -b html docs docs/_build/html``): every public name has its page, every
gallery example ran and its figure is in the site, and no page shows markup that failed to
render.

Without a built site (a plain ``python -m pytest``) these tests are skipped: build it first.
"""

import inspect
import re
import runpy
from pathlib import Path

import pytest

import combiners
import ensembles
import members

DOCS = Path(__file__).parents[1] / "docs"
HTML = DOCS / "_build" / "html"
PACKAGES = {"members": members, "combiners": combiners, "ensembles": ensembles}

built = pytest.mark.skipif(
    not (HTML / "index.html").is_file(),
    reason="the site is not built: python -m sphinx -W -b html docs docs/_build/html",
)


@built
@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_public_name_has_a_page(package):
    pages = {path.stem for path in (HTML / "api" / "generated").glob(f"{package}.*.html")}
    assert pages == {f"{package}.{name}" for name in PACKAGES[package].__all__}
    listing = (HTML / "api" / f"{package}.html").read_text()
    for name in PACKAGES[package].__all__:
        assert f"generated/{package}.{name}.html" in listing, name


@built
def test_no_page_shows_markup_that_failed_to_render():
    broken = [
        str(page.relative_to(HTML))
        for page in HTML.rglob("*.html")
        if 'class="problematic"' in page.read_text() or "system-message" in page.read_text()
    ]
    assert broken == []


@built
def test_the_guide_pages_are_in_the_site():
    for page in ["getting_started", *(p.stem for p in (HTML.parents[1] / "guide").glob("*.md"))]:
        found = list(HTML.rglob(f"{page}.html"))
        assert found, page


@built
def test_every_gallery_example_ran_and_its_figure_is_in_the_site():
    examples = sorted((HTML.parents[2] / "examples").glob("plot_*.py"))
    assert len(examples) >= 6
    for example in examples:
        page = HTML / "auto_examples" / f"{example.stem}.html"
        assert page.is_file(), example.name
        assert f"sphx_glr_{example.stem}_001.png" in page.read_text(), example.name
        assert (HTML / "_images" / f"sphx_glr_{example.stem}_001.png").is_file(), example.name


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_public_class_and_function_has_an_example(package):
    """Each has an ``Examples`` section; ``--doctest-modules`` runs them all."""
    module = PACKAGES[package]
    missing = [
        name
        for name in module.__all__
        if (inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name)))
        and "Examples" not in (getattr(module, name).__doc__ or "")
    ]
    assert missing == []


def ours(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] in PACKAGES


def public_api(package):
    """Qualified names of the package's public classes and functions, and of every method and
    property they define or inherit from a class of this library (not torch's, Lightning's or
    scikit-learn's, which document their own)."""
    names = []
    module = PACKAGES[package]
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.ismodule(obj):  # the metrics modules: the functions they define
            names += [
                f"{obj.__name__}.{attr}"
                for attr, value in vars(obj).items()
                if inspect.isfunction(value)
                and not attr.startswith("_")
                and value.__module__ == obj.__name__
            ]
            continue
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # data: COMBINERS, BACKBONES
        # by the defining module: "members.compress" is also the name of a module
        names.append(f"{obj.__module__}.{obj.__qualname__}")
        if not inspect.isclass(obj):
            continue
        for owner in obj.__mro__:
            if not ours(owner):
                continue
            for attr, value in vars(owner).items():
                if attr.startswith("_") or (owner is not obj and attr in vars(obj)):
                    continue
                if isinstance(value, staticmethod | classmethod):
                    value = value.__func__
                if inspect.isfunction(value) or isinstance(value, property):
                    names.append(f"{owner.__module__}.{owner.__qualname__}.{attr}")
    return sorted(set(names))


def test_the_public_api_covers_every_package():
    assert len(public_api("members")) > 50
    assert "members.compress.compress" in public_api("members")
    assert "ensembles._base.BaseEnsemble.fit" in public_api("ensembles")
    assert "combiners.base.BaseCombiner.combine" in public_api("combiners")
    assert "combiners.metrics.nll" in public_api("combiners")


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_numpydoc_validation_passes_on_the_public_api(package):
    """The checks the site's build runs (``docs/conf.py``: every one but those it skips, with
    its reasons), on every public class, function, method and property, rendered or not."""
    validate = pytest.importorskip("numpydoc.validate").validate
    conf = runpy.run_path(str(DOCS / "conf.py"))
    skipped = set(conf["NUMPYDOC_SKIPPED"])
    protocol = re.compile(conf["NUMPYDOC_PROTOCOL"])
    findings = [
        f"{name}: {code} {message}"
        for name in public_api(package)
        if not protocol.search(name)
        for code, message in validate(name)["errors"]
        if code not in skipped
    ]
    assert findings == []


def test_the_benchmarks_page_shows_every_marked_table_and_names_every_benchmark():
    """Each table is written once, in its guide page between ``<!-- benchmark: NAME -->``
    markers; the benchmarks page includes every one of them and names every script."""
    marked: list[str] = []
    for page in [DOCS / "getting_started.md", *sorted((DOCS / "guide").glob("*.md"))]:
        text = page.read_text()
        starts = re.findall(r"<!-- benchmark: ([a-z-]+) -->", text)
        assert starts == re.findall(r"<!-- /benchmark: ([a-z-]+) -->", text), page.name
        marked += starts
    benchmarks = (DOCS / "benchmarks.md").read_text()
    included = re.findall(r":start-after: <!-- benchmark: ([a-z-]+) -->", benchmarks)
    assert sorted(included) == sorted(marked)
    assert len(set(marked)) == len(marked) >= 10
    for script in sorted((DOCS.parent / "benchmarks").glob("*.py")):
        assert f"python benchmarks/{script.name}" in benchmarks, script.name
