"""The book (`make book`, build/book) opened in a real browser: headless Chromium, driven by
selenium, loads every page from a local server and checks what a reader would see -- no
console errors, every image loaded, every formula typeset by the bundled MathJax, every internal
link resolving, no request leaving the machine, the search finding "adapter", every page of the
table of contents there, and each notebook page offering its notebook as an .ipynb.

Chromium and its driver are Debian's packages (`chromium`, `chromium-driver`); the setup
installs them with apt-get when they are missing, and the tests skip, saying why, when that
is not possible. The book must have been built first: `.ci/run` runs `make book` before the
tests; without a build these tests fail and say so.
"""
import functools
import http.server
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("selenium", reason="the book extra (make book) installs selenium")
from selenium import webdriver                                           # noqa: E402
from selenium.webdriver.common.by import By                              # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait                  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "build" / "book"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TIMEOUT = 60           # seconds for a page, its images and its formulas, on a busy machine

pytestmark = pytest.mark.slow


def chromium_and_driver():
    """Paths of chromium and chromedriver, installed from Debian's packages when missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if not shutil.which("apt-get"):
            pytest.skip("no chromium and chromedriver here, and no apt-get to install them")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                pytest.skip(f"Chromium could not be installed: `{' '.join(command)}` exited with "
                            f"{result.returncode}: {result.stderr.strip()[-500:]}")
    return shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server():
    """The built book over HTTP on a free port of 127.0.0.1 -> its base URL."""
    if not (BOOK / "index.html").exists():
        pytest.fail(f"no book in {BOOK}: run `make book` first", pytrace=False)
    handler = functools.partial(QuietHandler, directory=str(BOOK))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary, driver_path = chromium_and_driver()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})     # the console
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


# In the page: wait for every image and for MathJax (when the page loads it), then report.
INSPECT_PAGE = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
Promise.all(images.map(img => img.decode().catch(() => null))).then(async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const formulas = Array.from(document.querySelectorAll('.math'));
  done({
    images: images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth})),
    formulas: formulas.map(el => ({tex: el.textContent.slice(0, 80),
                                   typeset: el.querySelector('mjx-container') !== null
                                            && el.querySelector('mjx-merror') === null})),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    ids: Array.from(document.querySelectorAll('[id]')).map(el => el.id),
    requests: performance.getEntriesByType('resource').map(r => r.name),
    text: document.body.innerText,
    title: document.title,
  });
});
"""


def book_pages():
    return sorted(str(p.relative_to(BOOK)) for p in BOOK.rglob("*.html")
                  if not p.relative_to(BOOK).parts[0].startswith("_"))


@pytest.fixture(scope="module")
def pages(browser, server):
    """Every page of the book, opened in Chromium -> {page: what INSPECT_PAGE found, plus the
    console's messages}."""
    found = {}
    for page in book_pages():
        browser.get(server + page)
        found[page] = browser.execute_async_script(INSPECT_PAGE)
        found[page]["console"] = browser.get_log("browser")
    return found


def toc_files():
    """The pages book/_toc.yml names (its root and every `file:`), as paths without suffix."""
    text = (ROOT / "book" / "_toc.yml").read_text("utf-8")
    return re.findall(r"^\s*(?:-\s*file|root):\s*(\S+)\s*$", text, re.MULTILINE)


def test_the_book_has_its_pages(pages):
    names = set(pages)
    assert {"index.html", "README.html", "book/api.html", "search.html"} <= names, sorted(names)
    # every page of the table of contents was built, and every page in docs/ is in it
    toc = toc_files()
    missing = sorted(f"{page}.html" for page in toc if f"{page}.html" not in names)
    assert not missing, missing
    unlisted = sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")
                      if f"docs/{p.stem}" not in toc)
    assert not unlisted, f"not in book/_toc.yml: {unlisted}"
    notebooks = sorted(p for p in names if p.startswith("notebooks/"))
    assert len(notebooks) == len(NOTEBOOKS)
    for page in notebooks:
        # the outputs are there, and say what produced them
        assert "Outputs made with minibert" in pages[page]["text"], page
        assert pages[page]["images"], f"{page}: no figure"
    # every page but the redirect to the README names the version, and the machine in its footer
    release = importlib.metadata.version("minibert")
    for page, found in pages.items():
        if page != "index.html":
            assert found["title"].endswith(f"minibert {release}"), (page, found["title"])
            assert f"Built with minibert {release}, Python" in found["text"], page


def test_no_console_errors(pages):
    errors = {page: [m["message"] for m in found["console"] if m["level"] == "SEVERE"]
              for page, found in pages.items()}
    errors = {page: e for page, e in errors.items() if e}
    assert not errors, "\n".join(f"{page}: {m}" for page, e in errors.items() for m in e)


def test_every_image_loaded(pages, capsys):
    images = [(page, img) for page, found in pages.items() for img in found["images"]]
    broken = [(page, img["src"]) for page, img in images if img["width"] == 0]
    report(capsys, f"{len(pages)} pages, {len(images)} images")
    assert images and not broken, broken


def test_every_formula_typeset(pages, capsys):
    formulas = [(page, f) for page, found in pages.items() for f in found["formulas"]]
    untypeset = [(page, f["tex"]) for page, f in formulas if not f["typeset"]]
    report(capsys, f"{len(formulas)} formulas typeset by MathJax")
    assert formulas and not untypeset, untypeset[:10]


def test_no_request_leaves_the_machine(pages, server):
    outside = {page: [r for r in found["requests"] if not r.startswith(server)]
               for page, found in pages.items()}
    assert not {page: r for page, r in outside.items() if r}


def test_every_internal_link_resolves(pages, server, capsys):
    """Links into the book lead to a page or file it has, and a #fragment to an id on that page."""
    ids = {server + page: set(found["ids"]) for page, found in pages.items()}
    internal = {link for found in pages.values() for link in found["links"] if link.startswith(server)}
    broken = []
    for link in sorted(internal):
        target, _, fragment = link.partition("#")
        target = target.split("?")[0]
        if target.endswith("/"):
            target += "index.html"
        if target in ids:
            if fragment and urllib.parse.unquote(fragment) not in ids[target]:
                broken.append(link)
        elif not served(target):
            broken.append(link)
    report(capsys, f"{len(internal)} internal links")
    assert len(internal) > len(pages) and not broken, broken


def served(url):
    try:
        with urllib.request.urlopen(url) as response:
            response.read()           # the whole file, as a reader's download would
            return response.status == 200
    except urllib.error.HTTPError:
        return False


def test_each_notebook_page_offers_its_ipynb(pages, browser, server):
    """On each notebook page a visible link to its .ipynb, which downloads as nbformat 4 JSON
    holding the notebook's cells: those of its jupytext source."""
    jupytext = pytest.importorskip("jupytext", reason="the dev extra installs jupytext")
    assert NOTEBOOKS
    for source in NOTEBOOKS:
        page, url = f"notebooks/{source.stem}.html", f"{server}notebooks/{source.stem}.ipynb"
        assert url in pages[page]["links"], f"{page}: no link to {url}"
        browser.get(server + page)
        links = browser.find_elements(By.CSS_SELECTOR, f'a[href$="{source.stem}.ipynb"]')
        shown = [a for a in links if a.is_displayed()]
        assert shown, f"{page}: the link to its .ipynb is not visible"
        with urllib.request.urlopen(url) as response:
            notebook = json.loads(response.read().decode("utf-8"))
        assert notebook["nbformat"] == 4, (url, notebook.get("nbformat"))
        expected = [cell.source for cell in jupytext.read(source).cells]
        cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                 for c in notebook["cells"]]
        assert cells and cells[0] == expected[0], (url, cells[:1], expected[:1])
        assert cells == expected, f"{url}: its cells differ from {source.name}'s"


def test_search_finds_adapter(browser, server):
    """Type into the search page's box, as a reader does, and wait for the results."""
    browser.get(server + "search.html")
    box = next(b for b in browser.find_elements(By.CSS_SELECTOR, "input[name=q]") if b.is_displayed())
    box.send_keys("adapter")
    box.submit()
    results = WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#search-results ul.search li"))
    pages = {r.find_element(By.TAG_NAME, "a").get_attribute("href").split("?")[0] for r in results}
    assert server + "notebooks/01_adapter_module.html" in pages, sorted(pages)
    assert not [m for m in browser.get_log("browser") if m["level"] == "SEVERE"]


def report(capsys, line):
    with capsys.disabled():
        print(f"\nbook in Chromium: {line}")
