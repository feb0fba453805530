"""The documentation site, as ``.ci/run`` builds it before the tests
(``python -m sphinx -W -b html docs docs/_build/html``): every public name has its page, every
gallery example ran and its figure is in the site, and no page shows markup that failed to
render.

Without a built site (a plain ``python -m pytest``) these tests are skipped: build it first.
"""

import inspect
from pathlib import Path

import pytest

import combiners
import ensembles
import members

HTML = Path(__file__).parents[1] / "docs" / "_build" / "html"
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
