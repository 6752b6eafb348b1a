#!/usr/bin/env python
"""Build the documentation as a static HTML site from the notebooks, without Quarto.

nbdev's `nbdev-docs` renders through Quarto, which cannot be installed here. This script takes the offline route:

1. nbdev's `proc_nbs` runs the docs processors on every notebook (frontmatter, `#| hide`, `#| export` cells shown
   as source, and `show_doc` cells that render the API documentation of every exported name);
2. the processed notebooks are sanitised (nbconvert rejects nbdev's `has_sd` cell key and `execution` metadata)
   and rendered with nbconvert's HTMLExporter (pictures stay embedded as data URIs);
3. links between chapters (`04_sampling.ipynb`) become links between pages (`04_sampling.html`), and every page
   gets the same navigation bar listing the chapters and tutorials, in order;
4. nbdev's links from backticked names (`load_pretrained` → `{Documentation URL}/checkpoints.html#load_pretrained`, or
   `/checkpoints.html#...` with no Documentation URL) point at a site nobody hosts: they become links to this site's pages.

Each page carries a small script that, once the page has loaded, records on `<body>` how many images rendered
(`data-images-rendered`), which the browser test reads back.

    python tools/make_docs.py                 # writes _docs/
    python tools/make_docs.py --out /tmp/site
"""

import argparse
import html
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urljoin

import nbformat
import yaml
from nbconvert import HTMLExporter
from nbdev.config import get_config, nbpath2html
from nbdev.serve import proc_nbs

sys.path.insert(0, str(Path(__file__).parent))
from make_readme import frontmatter_to_markdown as frontmatter_cells, sanitise  # one sanitiser for README and site

CHECK_SCRIPT = (
    '<script>window.addEventListener("load",function(){var n=0;for(const i of document.images)'
    '{if(i.complete&&i.naturalWidth>0)n++;}document.body.setAttribute("data-images-rendered",n);});</script>'
)
NAV_CSS = (
    '<style>nav.dps{position:sticky;top:0;z-index:10;background:#f7f7f9;border-bottom:1px solid #ddd;'
    'padding:.4rem 1rem;font:14px system-ui,sans-serif}nav.dps a{margin-right:.8rem;white-space:nowrap}'
    'nav.dps b{margin-right:1rem}</style>'
)


def title_of(nb, fallback):
    for c in nb.cells:
        src = c.source.strip()
        if c.cell_type == 'raw' or (src.startswith('---') and src.endswith('---')):
            try:
                fm = yaml.safe_load(src.strip('-')) or {}
            except yaml.YAMLError:
                fm = {}
            if fm.get('title'):
                return str(fm['title']), fm.get('description', '')
        if c.cell_type == 'markdown' and src.startswith('# '):
            return src.splitlines()[0][2:].strip(), ''
    return fallback, ''


def doc_prefix(cfg) -> str:
    "Where nbdev's backtick links point: its `_qual_sym` joins doc_host and doc_baseurl (from [project.urls] Documentation)."
    return urljoin(urljoin(cfg.doc_host + '/', cfg.doc_baseurl) + '/', 'X.html')[: -len('X.html')]


def build(out: Path) -> list:
    cfg = get_config()
    proc = proc_nbs(n_workers=0)  # processed copies, same relative paths
    pages = sorted(
        p for p in proc.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_')
    )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    entries = []
    for p in pages:
        rel = p.relative_to(proc)
        nb = sanitise(nbformat.read(p, as_version=4))
        nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # validate after sanitising
        title, _ = title_of(nb, rel.stem)
        entries.append((rel, title, frontmatter_cells(nb)))

    def href(rel_from, rel_to):
        up = '../' * (len(rel_from.parts) - 1)
        return up + rel_to.with_suffix('.html').as_posix()

    prefix = doc_prefix(cfg)
    hosted = {nbpath2html(r).as_posix(): r for r, _, _ in entries}  # nbdev's page name ('train.html') -> notebook
    exporter = HTMLExporter(template_name='lab')
    written = []
    for rel, title, nb in entries:
        body, _ = exporter.from_notebook_node(nb)

        def fix(m):
            target = m.group(2)
            page, hash_, anchor = target[len(prefix) :].partition('#') if target.startswith(prefix) else ('', '', '')
            if page in hosted:
                return f'{m.group(1)}{href(rel, hosted[page])}{hash_}{anchor}"'
            if target.startswith(('http:', 'https:', '#', 'data:', 'mailto:')):
                return m.group(0)
            t = re.sub(r'\.ipynb(#.*)?$', lambda mm: '.html' + (mm.group(1) or ''), target)
            if t.endswith('.md') and not t.startswith('/'):
                t = t[:-3] + '.html'
            return f'{m.group(1)}{t}"'

        body = re.sub(r'(href=")([^"]+)"', fix, body)
        links = ' '.join(
            f'<a href="{href(rel, r)}">{html.escape(r.stem if r.stem != "index" else "Home")}</a>'
            for r, _, _ in entries
            if len(r.parts) == 1 and r.stem != 'index'
        )
        tuts = ' '.join(
            f'<a href="{href(rel, r)}">{html.escape(t)}</a>' for r, t, _ in entries if r.parts[0] == 'tutorials'
        )
        nav = (
            f'<nav class="dps"><b><a href="{href(rel, Path("index.ipynb"))}">dp_synth</a></b> chapters: {links}'
            + (f'<br>tutorials: {tuts}' if tuts else '')
            + '</nav>'
        )
        body = body.replace('</head>', NAV_CSS + CHECK_SCRIPT + '</head>', 1)
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, body, count=1)
        dest = (out / rel).with_suffix('.html')
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(body)
        written.append(dest)
    return written


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=None, help='output folder (default: _docs beside pyproject.toml)')
    a = ap.parse_args()
    out = Path(a.out) if a.out else get_config().config_path / '_docs'
    pages = build(out)
    print(f'wrote {len(pages)} pages to {out}')
    sys.exit(0 if pages else 1)
