"""The documentation builds with `mkdocs build --strict`, its generated pages are fresh,
and its pictures are well-formed SVG."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

from tests.ci import unavailable
from tests.delivery.support import REPO, tool

DOCS = REPO / "docs"


def _mkdocs() -> list[str]:
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        unavailable("mkdocs is not installed (pip install mkdocs); it is a dev dependency")
    return [sys.executable, "-m", "mkdocs"]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [*_mkdocs(), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "img" / "level-ladder.svg").is_file()
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    pages = set(_nav_pages(config["nav"]))
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == on_disk
    for required in ("index.md", "concepts.md", "quickstart.md", "install.md",
                     "policies.md", "reviews.md", "monitoring.md", "operations.md",
                     "comparison.md", "reference/api.md"):
        assert required in pages
    assert config["theme"]["name"] == "mkdocs"
    assert "plugins" not in config


def test_api_reference_is_fresh() -> None:
    generator = tool("gen_api_docs")
    page = DOCS / "reference" / "api.md"
    assert page.read_text() == generator.render(), "run .venv/bin/python tools/gen_api_docs.py"
    for kind in ("MLTechnology", "LevelReview", "MLTRLPolicy"):
        assert f"## {kind}" in page.read_text()


@pytest.mark.parametrize("name", ["level-ladder.svg", "control-loop.svg"])
def test_pictures_are_svg(name: str) -> None:
    root = ElementTree.parse(DOCS / "img" / name).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title") is not None
    assert "viewBox" in root.attrib
    referenced = [page for page in DOCS.rglob("*.md") if f"img/{name}" in page.read_text()]
    assert referenced, f"{name} is not used by any page"


def test_level_ladder_colours_phases() -> None:
    text = (DOCS / "img" / "level-ladder.svg").read_text()
    for name in ("First Principles", "Proof of Concept (PoC) Development", "Flight-ready",
                 "Deployment"):
        assert name in text
    circles = re.findall(r'<circle cx="34" cy="\d+" r="14" fill="(#[0-9a-f]{6})"/>', text)
    by_level = circles  # drawn in level order, 0 first
    assert len(by_level) == 10
    assert len(set(by_level[0:3])) == len(set(by_level[3:6])) == len(set(by_level[6:9])) == 1
    assert len({by_level[0], by_level[3], by_level[6], by_level[9]}) == 4


def test_docs_match_the_chart() -> None:
    """The numbers the install page quotes are the chart's."""
    install = (DOCS / "install.md").read_text()
    values = yaml.safe_load((REPO / "charts" / "mltrl-operator" / "values.yaml").read_text())
    assert values["webhook"]["timeoutSeconds"] == 5 and "at most 5 seconds" in install
    assert values["ha"]["replicas"] == 2
