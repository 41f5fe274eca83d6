"""The documentation site's shape, checked without building it (`.ci/run` builds it with
``-W``, executing every tutorial; these tests need no Sphinx).

* every module of the package has its API page, and the API index lists every page, so a
  new module cannot go undocumented;
* every tutorial is a MyST notebook (``code-cell`` blocks, a kernelspec) listed in the
  tutorials' index, and ends with 2-4 exercises, each with a ``{dropdown}`` hint and a solution;
* the pages the issue asks for are in a toctree, so Sphinx builds them.
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "tinyntk"
NOT_MODULES = {"__init__", "__main__", "version"}      # no API of their own


def _toctree_entries(page: pathlib.Path) -> list:
    """The documents of every ``{toctree}`` block of a MyST page (``Title <doc>`` gives
    ``doc``)."""
    entries = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                titled = re.fullmatch(r".*<(.+)>", line)
                entries.append(titled.group(1) if titled else line)
    return entries


def test_every_module_has_an_api_page():
    modules = sorted(f.stem for f in PACKAGE.glob("*.py") if f.stem not in NOT_MODULES)
    def documented(m):
        page = DOCS / "api" / f"{m}.md"
        return page.exists() and f".. automodule:: tinyntk.{m}\n" in page.read_text()

    missing = [m for m in modules if not documented(m)]
    assert not missing, f"modules without an API page docs/api/<name>.md: {missing}"
    experiments = sorted(f.stem for f in (PACKAGE / "experiments").glob("*.py") if f.stem != "__init__")
    page = (DOCS / "api" / "experiments.md").read_text()
    absent = [m for m in experiments if f".. automodule:: tinyntk.experiments.{m}\n" not in page]
    assert not absent, f"experiment modules missing from docs/api/experiments.md: {absent}"


def test_the_api_index_lists_every_api_page():
    pages = {p.stem for p in (DOCS / "api").glob("*.md")} - {"index"}
    listed = set(_toctree_entries(DOCS / "api" / "index.md"))
    assert pages == listed, f"not in docs/api/index.md: {sorted(pages - listed)}; listed but absent: {sorted(listed - pages)}"


TUTORIALS = sorted(p for p in (DOCS / "tutorials").glob("*.md") if p.stem != "index")


def test_there_are_tutorials_and_the_index_lists_them():
    assert len(TUTORIALS) >= 2
    assert set(_toctree_entries(DOCS / "tutorials" / "index.md")) == {p.stem for p in TUTORIALS}


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_a_tutorial_is_an_executed_notebook_with_exercises_and_hints(page):
    text = page.read_text()
    assert text.startswith("---\njupytext:") and "kernelspec:" in text.split("---")[1], \
        f"{page.name}: no MyST notebook header (jupytext + kernelspec), so MyST-NB would not execute it"
    assert text.count("```{code-cell} ipython3") >= 3, f"{page.name}: too few code cells"
    assert "## Exercises" in text, f"{page.name}: no '## Exercises' section"
    exercises = text.split("## Exercises", 1)[1]
    items = re.findall(r"^(\d+)\. \*\*", exercises, flags=re.M)
    assert 2 <= len(items) <= 4, f"{page.name}: {len(items)} exercises, the issue asks for 2-4"
    assert exercises.count("```{dropdown} Hint") == len(items), \
        f"{page.name}: every exercise needs a collapsible hint"
    assert exercises.count("```{dropdown} Solution") == len(items), \
        f"{page.name}: every exercise needs a collapsible solution"
    assert "plt.show()" in text and "ax.set_xlabel" in text, f"{page.name}: no labelled figure"


def test_the_site_reaches_every_page():
    reached = set(_toctree_entries(DOCS / "index.md"))
    for wanted in ["tutorials/index", "code", "paper", "glossary", "api/index", "robustness", "reproduce/report"]:
        assert wanted in reached, f"docs/index.md's toctrees do not reach {wanted}"
        assert (DOCS / f"{wanted}.md").exists()
