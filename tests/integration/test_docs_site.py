"""The generated docsite (tools/build-docs, `make docs`): a headless browser opens the module page of wa_phone and
the procedures index, and every link to a local file on them resolves - the file exists and, with a #fragment, the
target page has an element with that id.

Debian's chromium renders each page (`--dump-dom`, the DOM after the theme's scripts ran) with every host name
mapped to nothing (`--host-resolver-rules`), so the browser reaches no network. `make test` builds the site before
pytest runs; run alone, this test builds it when .build/docs is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / ".build" / "docs"
COLLECTION_PAGES = SITE / "collections" / "cerniq" / "outreach"
WA_PHONE_PAGE = COLLECTION_PAGES / "wa_phone_module.html"
PROCEDURES_PAGE = COLLECTION_PAGES / "docsite" / "procedures.html"
PROCEDURES = sorted(p.stem for p in (ROOT / "docs" / "procedures").glob("*.md"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root in a container
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


_LINK_ATTRS = {("href", "a"), ("href", "link"), ("href", "area"), ("src", "script"), ("src", "img"), ("src", "iframe")}


class _Links(HTMLParser):
    """Every href/src of a page and every id it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif (name, tag) in _LINK_ATTRS:
                self.links.append(value)


def _parse(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def site() -> Path:
    if not WA_PHONE_PAGE.exists() or not PROCEDURES_PAGE.exists():
        subprocess.run([str(ROOT / "tools" / "build-docs")], check=True, cwd=ROOT, timeout=900)
    return SITE


@pytest.fixture(scope="module")
def browser() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is missing: run tools/system-deps; the docsite test needs a headless browser")
    return path


def _render(browser: str, page: Path, profile: Path) -> str:
    """The page's DOM after chromium loaded it and ran its scripts."""
    result = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "<body" in result.stdout, f"chromium rendered nothing for {page}: {result.stderr[-2000:]}"
    return result.stdout


def _broken_links(page: Path, links: list[str], site: Path = SITE) -> list[str]:
    """Links to local files that do not resolve (missing file, or a #fragment the target page lacks)."""
    broken = []
    ids_of: dict[Path, set[str]] = {}
    for link in links:
        parts = urlsplit(link)
        if parts.scheme and parts.scheme != "file":
            continue  # http(s), mailto: - not a local file
        if parts.scheme == "file":
            target = Path(unquote(parts.path))
        elif parts.path:
            target = (page.parent / unquote(parts.path)).resolve()
        else:
            target = page
        if not target.is_file():
            broken.append(f"{link} -> {target} does not exist")
            continue
        if site.resolve() not in target.resolve().parents:
            broken.append(f"{link} -> {target} is outside the site")
            continue
        if parts.fragment and target.suffix == ".html":
            if target not in ids_of:
                ids_of[target] = _parse(target.read_text(encoding="utf-8")).ids
            if unquote(parts.fragment) not in ids_of[target]:
                broken.append(f"{link} -> {target.name} has no element with id {parts.fragment!r}")
    return broken


def test_wa_phone_module_page_has_no_broken_internal_link(site, browser, tmp_path):
    dom = _parse(_render(browser, WA_PHONE_PAGE, tmp_path / "profile"))
    # The page documents the module: its options and return values rendered from DOCUMENTATION/RETURN.
    assert "ansible-collections-cerniq-outreach-wa-phone-module" in dom.ids
    assert "parameter-phone_id" in dom.ids, sorted(i for i in dom.ids if i.startswith("parameter-"))[:20]
    assert any(i.startswith("return-") for i in dom.ids)
    local = [link for link in dom.links if not urlsplit(link).scheme]
    assert len(local) > 20, local  # the theme's assets, the index, the option anchors
    assert _broken_links(WA_PHONE_PAGE, dom.links) == []


def test_procedures_index_links_every_procedure_guide_and_none_is_broken(site, browser, tmp_path):
    dom = _parse(_render(browser, PROCEDURES_PAGE, tmp_path / "profile"))
    assert "ansible-collections-cerniq-outreach-docsite-procedures" in dom.ids, sorted(dom.ids)
    targets = {os.path.basename(urlsplit(link).path) for link in dom.links}
    missing = [name for name in PROCEDURES if f"{name}.html" not in targets]
    assert PROCEDURES and missing == [], f"procedure guides not linked from the procedures index: {missing}"
    assert _broken_links(PROCEDURES_PAGE, dom.links) == []


def test_the_link_check_finds_a_missing_page_a_missing_anchor_and_a_page_outside_the_site(tmp_path):
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "sub" / "other.html").write_text('<html><body><p id="here">x</p></body></html>', encoding="utf-8")
    (tmp_path / "outside.html").write_text("<html></html>", encoding="utf-8")
    page = site / "sub" / "page.html"
    page.write_text("<html></html>", encoding="utf-8")
    links = ["other.html#here", "other.html", "https://example.org/x", "#top", "missing.html", "other.html#gone",
             "../../outside.html"]
    broken = _broken_links(page, links, site)
    assert [b.split(" ->")[0] for b in broken] == ["#top", "missing.html", "other.html#gone", "../../outside.html"]
