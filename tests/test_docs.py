"""The documentation site builds offline from the notebooks, its links resolve, and every page reads right in headless
Chromium: math typeset, nbdev's directives honoured, API entries clean, widgets shown as pictures, images loaded.

One screenshot per page type (home, chapter, tutorial) is kept as a test artefact, outside git: in
$DP_SYNTH_ARTIFACTS (default: build/test-artifacts/docs, which .gitignore leaves out)."""

import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.browser  # every test here builds the site; the Chromium tests browse it

# What a reader must never see on a page: nbdev/Quarto directives, Quarto attribute syntax, untypeset math,
# execution prompts, widget reprs. A directive is `#|` and a name (a progress bar's `##########|` is not one); prose
# that names a directive in inline code (`#| slow`) is deliberate and checked apart (see DIRECTIVE_IN_CODE).
LEAKS = {
    'a Quarto directive (#|)': re.compile(r'#\|\s*[A-Za-z]'),
    "Quarto's link attributes ({target=)": re.compile(r'\{target='),
    'untypeset display math ($$)': re.compile(r'\$\$'),
    'untypeset LaTeX (\\frac)': re.compile(r'\\frac'),
    'an execution prompt (In [)': re.compile(r'\bIn \['),
    'a widget repr (VBox()': re.compile(r'VBox\('),
}
# the tutorials saved with their outputs (01 and 04 run the pipeline for minutes: their pages show the code only)
PICTURED = ['tutorials/02_epsilon.html', 'tutorials/03_tuning.html', 'tutorials/05_results.html', '06_accounting.html']
DIRECTIVE_IN_CODE = re.compile(r'#\| ?[a-z_-]+(: ?[\w-]+)?')
SCREENSHOTS = {'home': 'index.html', 'chapter': '06_accounting.html', 'tutorial': 'tutorials/02_epsilon.html'}


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site') / '_docs'
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'make_docs.py'), '--out', str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    print(f'site built in {time.time() - t0:.0f} s')
    return out


def pages_of(site):
    return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html'))


def test_every_notebook_has_a_page(site):
    nbs = {
        p.relative_to(REPO / 'nbs').with_suffix('.html')
        for p in (REPO / 'nbs').rglob('*.ipynb')
        if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_')
    }
    pages = {p.relative_to(site) for p in site.rglob('*.html')}
    assert nbs <= pages, sorted(map(str, nbs - pages))


def test_links_between_pages_resolve(site):
    broken = []
    for page in site.rglob('*.html'):
        for href in re.findall(r'href="([^"#]+\.html)(?:#[^"]*)?"', page.read_text()):
            if href.startswith(('http:', 'https:')):
                continue
            if not (page.parent / href).resolve().is_file():
                broken.append(f'{page.relative_to(site)} → {href}')
    assert not broken, broken[:20]
    index = (site / 'index.html').read_text()
    assert 'href="09_fid.html"' in index and 'href="00_data.html"' in index


def test_site_works_offline(site):
    "Every script and stylesheet is a file of the site (KaTeX included): nothing is fetched from a network."
    for page in site.rglob('*.html'):
        text = page.read_text()
        refs = re.findall(r'<script[^>]*\bsrc="([^"]+)"', text) + re.findall(r'<link[^>]*\bhref="([^"]+)"', text)
        assert refs, page
        for ref in refs:
            assert not re.match(r'(https?:)?//', ref), f'{page.relative_to(site)} loads {ref} from the network'
            assert (page.parent / ref).resolve().is_file(), f'{page.relative_to(site)}: {ref} is missing'
    assert list((site / '_static/katex/fonts').glob('*.woff2')), "KaTeX's fonts were not copied"


def test_sidebar_groups_every_page(site):
    "Each page's sidebar lists every page once, grouped as tutorials, chapters and reference, and marks itself."
    n = len(pages_of(site))
    for rel in ('index.html', '06_accounting.html', 'tutorials/02_epsilon.html'):
        text = (site / rel).read_text()
        side = re.search(r'<nav class="sidebar".*?</nav>', text, re.S).group(0)
        assert [h for h in re.findall(r'<h4>([^<]+)</h4>', side)] == [
            'Get started',
            'Tutorials',
            'Chapters',
            'Reference',
        ]
        assert len(re.findall(r'<li', side)) == n
        assert len(re.findall(r'aria-current="page"', side)) == 1
    toc = re.search(r'<aside class="toc">.*?</aside>', (site / '06_accounting.html').read_text(), re.S).group(0)
    assert 'href="#calibrate_sigma"' in toc and 'The ledger' in toc


def test_api_entries_are_clean(site):
    """show_doc entries: a heading, a signature whose long defaults are abbreviated, `class` for classes, and a source
    link that names a file of the package at the line that defines the name."""
    text = (site / '06_accounting.html').read_text()
    entries = re.findall(r'<a class="source-link" href="([^"]+)"[^>]*>source</a></p>\s*<h3 id="([^"]+)"', text)
    assert len(entries) >= 10, 'too few API entries on the accounting page'
    for url, name in entries:
        m = re.match(r'https://github\.com/dp-synth/dp_synth/blob/main/(dp_synth/\w+\.py)#L(\d+)$', url)
        assert m, url
        line = (REPO / m.group(1)).read_text().splitlines()[int(m.group(2)) - 1]
        assert re.match(rf'\s*(async\s+)?(def|class)\s+{name}\b', line), f'{url} does not point at {name}: {line!r}'
    sig = re.search(r'<h3 id="PrivacyLedger">.*?<pre>(.*?)</pre>', text, re.S).group(1)
    sig = re.sub(r'<[^>]+>', '', sig)
    assert sig.startswith('class PrivacyLedger(') and '...' in sig and '512' not in sig, sig
    assert max(map(len, sig.splitlines())) < 100, sig


def _chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe is None:
        if os.environ.get('DP_SYNTH_SKIP_BROWSER'):
            pytest.skip('DP_SYNTH_SKIP_BROWSER is set')
        pytest.fail(
            "headless Chromium is needed for the docs test: install Debian's package (apt-get install chromium), "
            "or set DP_SYNTH_SKIP_BROWSER=1 to skip this test"
        )
    return exe


def chromium(page: Path, *args) -> str:
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--virtual-time-budget=10000']
    r = subprocess.run([_chromium(), *flags, *args, page.as_uri()], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


class VisibleText(HTMLParser):
    """The text a reader sees in a rendered DOM: without scripts, styles, the head, and KaTeX's MathML copy of each
    formula (kept for screen readers, visually hidden, and holding the TeX source)."""

    SKIP = {'script', 'style', 'head', 'template', 'math', 'annotation'}
    VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}

    def __init__(self, inline_code=True):
        super().__init__()
        self.stack, self.skip_at, self.parts, self.inline_code = [], None, [], inline_code

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        self.stack.append(tag)
        hidden = tag in self.SKIP or 'katex-mathml' in (dict(attrs).get('class') or '') or 'hidden' in dict(attrs)
        hidden |= tag == 'code' and not self.inline_code and 'pre' not in self.stack
        if self.skip_at is None and hidden:
            self.skip_at = len(self.stack)

    def handle_endtag(self, tag):
        if tag in self.VOID or tag not in self.stack:
            return
        while self.stack:
            t = self.stack.pop()
            if self.skip_at is not None and len(self.stack) < self.skip_at:
                self.skip_at = None
            if t == tag:
                break

    def handle_data(self, data):
        if self.skip_at is None:
            self.parts.append(data)

    @classmethod
    def of(cls, dom: str, inline_code=True) -> str:
        "The visible text; with `inline_code=False`, without prose's inline code (`<code>` outside `<pre>`)."
        p = cls(inline_code)
        p.feed(dom)
        return ' '.join(p.parts)


def test_visible_text_parser():
    dom = (
        '<html><head><title>t</title><style>a{}</style></head><body><p>$x$ <span class="katex"><span class="katex-mathml">'
        '<math><annotation>\\frac{1}{2}</annotation></math></span><span class="katex-html">½</span></span></p>'
        '<img src="a.png"><script>var a = "VBox(";</script><p>seen</p></body></html>'
    )
    text = VisibleText.of(dom)
    assert (
        VisibleText.of('<p>the <code>#| slow</code> cells</p><pre><code>#| x</code></pre>', False) == 'the   cells #| x'
    )
    assert '\\frac' not in text and 'VBox(' not in text and '½' in text and 'seen' in text and 'a{}' not in text


@pytest.fixture(scope='module')
def doms(site):
    "Each page's DOM after Chromium has run its scripts (KaTeX typesets the math, the page records what loaded)."
    return {rel: chromium(site / rel, '--dump-dom') for rel in pages_of(site)}


def test_no_page_leaks_directives_math_or_reprs(doms):
    problems = []
    for rel, d in doms.items():
        text = VisibleText.of(d, inline_code=False)
        for what, pattern in LEAKS.items():
            if m := pattern.search(text):
                problems.append(f'{rel}: {what} in "…{text[max(0, m.start() - 60) : m.end() + 40]}…"')
        for code in re.findall(r'<code>([^<]*#\|[^<]*)</code>', d):  # prose naming a directive: only `#| name`
            if not DIRECTIVE_IN_CODE.fullmatch(code.strip()):
                problems.append(f'{rel}: inline code with a directive that is not prose about it: {code!r}')
        errors = re.search(r'data-math-errors="(\d+)"', d)
        if not errors:
            problems.append(f'{rel}: the page script did not run (no data-math-errors on <body>)')
        elif int(errors.group(1)):
            problems.append(f'{rel}: KaTeX could not typeset a formula (class katex-error)')
    assert not problems, '\n'.join(problems[:30])


def test_math_is_typeset(doms):
    "The accounting chapter's equations are KaTeX elements, inline and display; every page's math is typeset."
    d = doms['06_accounting.html']
    assert 'data-math-rendered=' in d, 'the page script did not run'
    assert int(re.search(r'data-math-rendered="(\d+)"', d).group(1)) >= 20
    assert 'class="katex-display"' in d and '<span class="katex">' in d
    assert int(re.search(r'data-math-rendered="(\d+)"', doms['tutorials/02_epsilon.html']).group(1)) >= 1  # e^ε


def test_images_load(doms, site):
    "Every image on the tutorial pages (and the chapters with plots) loads in the browser."
    for rel, d in doms.items():
        n_img = len(re.findall(r'<img\b', (site / rel).read_text()))
        loaded = int(re.search(r'data-images-rendered="(\d+)"', d).group(1))
        assert loaded == n_img, f'{rel}: {loaded} of {n_img} images loaded'
        if rel in PICTURED:
            assert n_img >= 1, f'{rel} shows no picture'


def test_widgets_show_static_pictures(doms):
    "The slider tutorial shows the note, the plot at the default setting and the ε table, never a Python repr."
    text = VisibleText.of(doms['tutorials/02_epsilon.html'])
    assert 'These sliders move when the notebook runs in Jupyter' in text
    assert 'ε after this many steps' in text and '10000' in text
    assert int(re.search(r'data-images-rendered="(\d+)"', doms['tutorials/02_epsilon.html']).group(1)) >= 2


def test_screenshots(site):
    "One screenshot per page type, kept as a test artefact (not in git)."
    dest = Path(os.environ.get('DP_SYNTH_ARTIFACTS', REPO / 'build' / 'test-artifacts')) / 'docs'
    dest.mkdir(parents=True, exist_ok=True)
    for kind, rel in SCREENSHOTS.items():
        png = dest / f'{kind}.png'
        png.unlink(missing_ok=True)
        chromium(site / rel, f'--screenshot={png}', '--window-size=1400,2000', '--hide-scrollbars')
        assert png.is_file() and png.stat().st_size > 20_000, png


@pytest.mark.network
def test_katex_from_debian_without_root(tmp_path):
    "Without Debian's installed package, the builder fetches libjs-katex and fonts-katex with `apt-get download`."
    if not (shutil.which('apt-get') and shutil.which('dpkg-deb')):
        pytest.skip('not a Debian machine: the route is npm or DP_SYNTH_KATEX')
    sys.path.insert(0, str(REPO / 'tools'))
    from make_docs import copy_katex, katex_dist

    d = katex_dist(system=tmp_path / 'none', cache=tmp_path / 'cache')
    copy_katex(d, tmp_path / 'site')
    assert (tmp_path / 'site/katex.min.js').stat().st_size > 100_000
    assert len(list((tmp_path / 'site/fonts').glob('*.woff2'))) >= 15
