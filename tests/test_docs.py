"The documentation site builds offline from the notebooks, its links resolve, and pages render in headless Chromium."

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.browser  # every test here builds the site; the Chromium test browses it


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site') / '_docs'
    r = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'make_docs.py'), '--out', str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return out


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


def dom(page: Path) -> str:
    r = subprocess.run(
        [
            _chromium(),
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-dev-shm-usage',
            '--virtual-time-budget=10000',
            '--dump-dom',
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.parametrize(
    'page, api_name', [('09_fid.html', 'inception_features'), ('06_accounting.html', 'calibrate_sigma')]
)
def test_api_docs_and_plots_render_in_chromium(site, page, api_name):
    d = dom(site / page)
    m = re.search(r'data-images-rendered="(\d+)"', d)
    assert m and int(m.group(1)) >= 1, 'no image rendered (or the page script did not run)'
    # nbdev's show_doc renders each exported name as a heading followed by its signature
    assert re.search(rf'<h[2-4][^>]*>\s*{api_name}\s*<', d) or re.search(rf'<h[2-4][^>]*id="{api_name}"', d), (
        f'no API documentation heading for {api_name}'
    )
    text = re.sub(r'<[^>]+>', ' ', d)
    assert re.search(rf'def\s+{api_name}\s*\(', text), f'no rendered signature for {api_name}'
    assert '<nav class="dps">' in d
