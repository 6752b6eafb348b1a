#!/usr/bin/env python
"""Build the documentation as a static HTML site from the notebooks, offline and without Quarto.

nbdev's `nbdev-docs` renders through Quarto, which cannot be installed here. This script takes the same steps with
tools that can, and honours nbdev's conventions the way its Quarto route does:

1. nbdev's `proc_nbs` runs nbdev's own docs processors on every notebook: frontmatter, `#| hide` and `#| export`
   cells removed, and a `show_doc` cell (`#| echo: false`, `#| output: asis`) after each exported name, executed so
   that its markdown output is the API entry;
2. each cell's Quarto directives are applied and stripped (`echo: false` hides the source, `output: asis` renders
   the markdown output as markdown, `output: false` and `include: false` drop what they name); API entries are made
   clean (Quarto's link attributes `{target=...}` become HTML attributes, long default values in signatures are
   abbreviated, classes say `class`, the source link is checked to name a file of the package);
3. outputs are shown as a reader should see them: carriage-return progress bars collapsed to their last state, ANSI
   colours stripped, and ipywidgets (which need a Python kernel to move) replaced by a note; their static pictures
   stay;
4. nbconvert's `basic` template renders the cells (no execution prompts, pictures embedded as data URIs) and every
   page gets one layout: a sidebar grouped as tutorials, chapters and reference, and a table of contents per page;
5. math is typeset in the browser by KaTeX, copied into the site (`_static/katex`) from a package index, so the
   site works without a network (see `katex_dist` for where it comes from);
6. links between chapters (`04_sampling.ipynb`) and nbdev's links from backticked names (`load_pretrained` →
   `{Documentation URL}/checkpoints.html#load_pretrained`) become links between this site's pages.

The page script records on `<body>` how many images loaded (`data-images-rendered`) and how many formulas KaTeX
typeset (`data-math-rendered`) or failed on (`data-math-errors`), which the browser test reads back.

    python tools/make_docs.py                 # writes _docs/
    python tools/make_docs.py --out /tmp/site
"""

import argparse
import html
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import urljoin

import nbformat
import yaml
from nbconvert import HTMLExporter
from nbdev.config import get_config, nbpath2html
from nbdev.serve import proc_nbs
from pygments.formatters import HtmlFormatter

sys.path.insert(0, str(Path(__file__).parent))
from make_readme import frontmatter_to_markdown as frontmatter_cells, sanitise  # one sanitiser for README and site

ASSETS = Path(__file__).parent / 'docs_assets'  # the site's own CSS and page script
CURRENT = ' class="current" aria-current="page"'
WIDGET = 'application/vnd.jupyter.widget-view+json'
WIDGET_NOTE = (
    '<div class="widget-note"><b>Interactive widget.</b> These sliders move when the notebook runs in Jupyter: '
    'their effect is computed by Python, which a static page does not have. The picture and table on this page show '
    'what they show at the default setting.</div>'
)
SECTIONS = [  # sidebar groups, in order: (title, test on the notebook's path relative to nbs/)
    ('Get started', lambda r: r.as_posix() == 'index.ipynb'),
    ('Tutorials', lambda r: r.parts[0] == 'tutorials'),
    ('Chapters', lambda r: len(r.parts) == 1 and r.stem[:2].isdigit() and int(r.stem[:2]) < 90),
    ('Reference', lambda r: len(r.parts) == 1 and r.stem[:2].isdigit() and int(r.stem[:2]) >= 90),
]


# --- KaTeX, from a package index, copied into the site ------------------------------------------------------------
def katex_dist(system: Path = Path('/usr/share/javascript/katex'), cache: Path = None) -> Path:
    """A folder holding KaTeX's browser files (katex.min.js, katex.min.css, fonts/, contrib/auto-render). Looked for
    in order: `$DP_SYNTH_KATEX` (a KaTeX `dist` folder you provide); Debian's `libjs-katex` + `fonts-katex`
    (installed, or downloaded with `apt-get download` and unpacked without root into ~/.cache/dp_synth/katex); npm's
    `katex` package (`npm pack`, no install). KaTeX is not vendored in this repository: it comes from the package
    index of the machine that builds the site."""
    if os.environ.get('DP_SYNTH_KATEX'):
        return _check_katex(Path(os.environ['DP_SYNTH_KATEX']), '$DP_SYNTH_KATEX')
    if (system / 'fonts').is_dir() and any((system / 'fonts').iterdir()):
        return _check_katex(system, 'Debian package libjs-katex')
    cache = cache or Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'dp_synth' / 'katex'
    for found in (cache / 'deb/usr/share/javascript/katex', cache / 'npm/package/dist'):
        if (found / 'katex.min.css').is_file():
            return _check_katex(found, str(found))
    errors = []
    if shutil.which('apt-get') and shutil.which('dpkg-deb'):
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(['apt-get', 'download', 'libjs-katex', 'fonts-katex'], cwd=tmp, capture_output=True)
            debs = sorted(Path(tmp).glob('*.deb'))
            if r.returncode == 0 and len(debs) == 2:
                (cache / 'deb').mkdir(parents=True, exist_ok=True)
                for deb in debs:
                    subprocess.run(['dpkg-deb', '-x', str(deb), str(cache / 'deb')], check=True)
                link = cache / 'deb/usr/share/javascript/katex/fonts'  # a symlink to /usr/share/fonts/truetype/katex
                if link.is_symlink():
                    link.unlink()
                    shutil.copytree(cache / 'deb/usr/share/fonts/truetype/katex', link)
                return _check_katex(cache / 'deb/usr/share/javascript/katex', 'apt-get download libjs-katex')
            errors.append(f'apt-get download: {r.stderr.decode()[-300:]}')
    if shutil.which('npm'):
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(['npm', 'pack', 'katex@0.16', '--silent'], cwd=tmp, capture_output=True, text=True)
            tgz = sorted(Path(tmp).glob('katex-*.tgz'))
            if r.returncode == 0 and tgz:
                with tarfile.open(tgz[0]) as t:
                    t.extractall(cache / 'npm', filter='data')
                return _check_katex(cache / 'npm/package/dist', 'npm pack katex')
            errors.append(f'npm pack: {r.stderr[-300:]}')
    raise SystemExit(
        'KaTeX (which typesets the math) was not found. Install it from a package index: '
        '`apt-get install libjs-katex` (Debian/Ubuntu), or have `npm` on the PATH, or set DP_SYNTH_KATEX to a '
        f'folder holding KaTeX\'s dist files. Tried: {"; ".join(errors) or "no apt-get or npm on this machine"}'
    )


def _check_katex(d: Path, where: str) -> Path:
    need = ['katex.min.js', 'katex.min.css', 'fonts']
    if missing := [n for n in need if not (d / n).exists()]:
        raise SystemExit(f'KaTeX from {where} ({d}) lacks {missing}: point DP_SYNTH_KATEX at a complete dist folder')
    if not any((d / 'contrib' / n).is_file() for n in ('auto-render.min.js', 'auto-render.js')):
        raise SystemExit(f'KaTeX from {where} ({d}) lacks contrib/auto-render.js')
    return d


def copy_katex(src: Path, dest: Path):
    "KaTeX's script, style, auto-render and fonts (woff2 and woff: what browsers load), with symlinks resolved."
    dest.mkdir(parents=True)
    for n in ('katex.min.js', 'katex.min.css'):
        shutil.copyfile(src / n, dest / n)
    (dest / 'contrib').mkdir()
    render = src / 'contrib' / 'auto-render.min.js'
    shutil.copyfile(
        render if render.is_file() else src / 'contrib' / 'auto-render.js', dest / 'contrib/auto-render.min.js'
    )
    (dest / 'fonts').mkdir()
    for f in (src / 'fonts').resolve().iterdir():
        if f.suffix in ('.woff2', '.woff'):
            shutil.copyfile(f, dest / 'fonts' / f.name)


# --- nbdev's directives and outputs, as its Quarto route treats them ------------------------------------------------
_DIRECTIVE = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')


def directives(src: str) -> tuple:
    "({name: value}, the source without them) for a cell's leading `#| name: value` lines (a bare name reads 'true')."
    lines, d = src.splitlines(), {}
    while lines and (m := _DIRECTIVE.match(lines[0])):
        d[m.group(1)] = m.group(2) or 'true'
        lines.pop(0)
    return d, '\n'.join(lines).strip('\n')


def collapse_stream(text: str) -> str:
    "What a terminal shows: each line's last carriage-return state (tqdm redraws its bar with \\r), ANSI stripped."
    text = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', text)
    return '\n'.join(line.rstrip('\r').split('\r')[-1] for line in text.split('\n'))


def _pandoc_attrs(attrs: str) -> str:
    "Pandoc's `{#id .class key=\"v\"}` as HTML attributes."
    out, classes = [], []
    for tok in re.findall(r'[\w-]+="[^"]*"|[\w-]+=\S+|[#.][\w-]+', attrs):
        if tok[0] == '#':
            out.append(f'id="{tok[1:]}"')
        elif tok[0] == '.':
            classes.append(tok[1:])
        else:
            k, v = tok.split('=', 1)
            if k != 'style':  # the site's stylesheet places source links
                out.append(f'{k}="{html.escape(v.strip(chr(34)))}"')
    if classes:
        out.append(f'class="{" ".join(classes)}"')
    return ' '.join(out)


def abbreviate_defaults(sig: str, limit: int = 40, keep: int = 3) -> str:
    "A signature with each bracketed default longer than `limit` characters cut to its first `keep` items and `…`."
    out, i = [], 0
    while i < len(sig):
        if sig[i] == '=' and i + 1 < len(sig) and sig[i + 1] in '([{':
            j, depth = i + 1, 0
            while j < len(sig):
                depth += sig[j] in '([{'
                depth -= sig[j] in ')]}'
                if depth == 0:
                    break
                j += 1
            value = sig[i + 1 : j + 1]
            if len(value) > limit:
                items = [s.strip() for s in value[1:-1].split(',')]  # (numbers and names: no nested commas to split)
                value = f'{value[0]}{", ".join(items[:keep])}, ...{value[-1]}'  # (`...`: valid Python, unlike …)
            out.append('=' + value)
            i = j + 1
        else:
            out.append(sig[i])
            i += 1
    return ''.join(out)


def _source_target(url: str, cfg):
    "(module file relative to the repository, line) that a show_doc source link names, or None."
    m = re.match(rf'{re.escape(cfg.git_url.rstrip("/"))}/blob/[^/]+/(.+?)#L(\d+)$', url)
    return (m.group(1), int(m.group(2))) if m else None


def clean_api_entry(md: str, cfg) -> str:
    """nbdev's show_doc markdown made clean for the page: Quarto's `[source](url){target=...}` as an HTML link,
    abbreviated defaults in the signature, `class` for classes (nbdev writes `def` for dataclasses)."""
    md = re.sub(
        r'\[([^\]]+)\]\(([^)\s]+)\)\{([^}]*)\}',
        lambda m: f'<a class="source-link" href="{m.group(2)}" {_pandoc_attrs(m.group(3))}>{m.group(1)}</a>',
        md,
    )
    kind = None
    if (src := re.search(r'class="source-link" href="([^"]+)"', md)) and (t := _source_target(src.group(1), cfg)):
        name = re.search(r'^#+\s+(\S+)', md, re.M)
        mod = t[0][:-3].replace('/', '.') if t[0].endswith('.py') else None
        try:
            obj = importlib.import_module(mod)
            for part in name.group(1).split('.'):
                obj = getattr(obj, part)
            kind = 'class' if inspect.isclass(obj) else None
        except (ImportError, AttributeError, TypeError):
            pass

    def sig(m):
        s = abbreviate_defaults(m.group(1))
        if kind == 'class':  # (and a class's signature returns nothing worth a `->None`)
            s = re.sub(r'\)\s*->\s*None:\s*$', '):\n', re.sub(r'^def ', 'class ', s))
        return '```python\n' + s + '```'

    return re.sub(r'```python\n(.*?)```', sig, md, count=1, flags=re.S)


def apply_directives(nb, cfg):
    "The notebook as Quarto would show it: directives applied and stripped, asis markdown as markdown cells."
    cells = []
    for c in nb.cells:
        if c.cell_type != 'code':
            cells.append(c)
            continue
        d, c.source = directives(c.source)
        if d.get('include') == 'false':
            continue
        if d.get('output') == 'false':
            c.outputs = []
        asis = [o for o in c.outputs if d.get('output') == 'asis' and 'text/markdown' in o.get('data', {})]
        c.outputs = [o for o in c.outputs if o not in asis]
        for o in c.outputs:
            if o.output_type == 'stream':
                o.text = collapse_stream(o.text)
        if any(WIDGET in o.get('data', {}) for o in c.outputs):  # no kernel on a static page: say so, once
            c.outputs = [o for o in c.outputs if WIDGET not in o.get('data', {})]
            c.outputs.insert(0, nbformat.v4.new_output('display_data', data={'text/html': WIDGET_NOTE}))
        c.outputs = [o for o in c.outputs if not (o.output_type == 'stream' and not o.text.strip())]
        if d.get('echo') == 'false':
            c.metadata.setdefault('transient', {})['remove_source'] = True
        if c.source.strip() or c.outputs:
            cells.append(c)
        for o in asis:
            cells.append(nbformat.v4.new_markdown_cell(clean_api_entry(o['data']['text/markdown'], cfg)))
    nb.cells = cells
    return nb


# --- the pages -----------------------------------------------------------------------------------------------------
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


def toc(body: str) -> str:
    "The page's table of contents: its h2 and h3 headings with ids (nbconvert gives markdown headings ids)."
    items = []
    for level, hid, inner in re.findall(r'<h([23])[^>]*\bid="([^"]+)"[^>]*>(.*?)</h\1>', body, re.S):
        text = re.sub(r'<a class="anchor-link".*?</a>', '', inner)
        text = html.unescape(re.sub(r'<[^>]+>', '', text)).strip()
        if text:
            items.append(f'<li class="l{level}"><a href="#{hid}">{html.escape(text)}</a></li>')
    return f'<aside class="toc"><h4>On this page</h4><ul>{"".join(items)}</ul></aside>' if items else ''


def sidebar(entries, rel, href) -> str:
    parts = []
    for name, test in SECTIONS:
        links = ''.join(
            f'<li{CURRENT if r == rel else ""}><a href="{href(rel, r)}">{html.escape(t)}</a></li>'
            for r, t, _ in entries
            if test(r)
        )
        if links:
            parts.append(f'<h4>{name}</h4><ul>{links}</ul>')
    return f'<nav class="sidebar" aria-label="pages">{"".join(parts)}</nav>'


def page(title, body, rel, entries, href, cfg) -> str:
    up = '../' * (len(rel.parts) - 1)
    repo = html.escape(cfg.git_url)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} – dp_synth</title>
<link rel="stylesheet" href="{up}_static/katex/katex.min.css">
<link rel="stylesheet" href="{up}_static/site.css">
<script defer src="{up}_static/katex/katex.min.js"></script>
<script defer src="{up}_static/katex/contrib/auto-render.min.js"></script>
<script defer src="{up}_static/site.js"></script>
</head><body>
<header class="top"><a class="brand" href="{href(rel, Path('index.ipynb'))}">dp_synth</a>
<span class="tagline">differentially private synthetic images</span><a class="repo" href="{repo}">Repository</a></header>
<div class="layout">{sidebar(entries, rel, href)}<main class="content">{body}</main>{toc(body)}</div>
</body></html>
"""


def build(out: Path) -> list:
    cfg = get_config()
    katex = katex_dist()
    proc = proc_nbs(n_workers=0)  # processed copies, same relative paths
    pages = sorted(
        p for p in proc.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_')
    )
    if out.exists():
        shutil.rmtree(out)
    (out / '_static').mkdir(parents=True)
    copy_katex(katex, out / '_static' / 'katex')
    css = (ASSETS / 'site.css').read_text() + HtmlFormatter(style='default').get_style_defs('.highlight')
    (out / '_static' / 'site.css').write_text(css)
    shutil.copyfile(ASSETS / 'site.js', out / '_static' / 'site.js')
    # the committed pictures that chapters link from their markdown (only nbs/images: never a search of nbs/, whose
    # ignored folders can hold run outputs or a user's private images)
    if (Path(cfg.nbs_path) / 'images').is_dir():
        shutil.copytree(Path(cfg.nbs_path) / 'images', out / 'images', dirs_exist_ok=True)
    entries = []
    for p in pages:
        rel = p.relative_to(proc)
        nb = sanitise(nbformat.read(p, as_version=4))
        nb = apply_directives(frontmatter_cells(nb), cfg)
        nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # validate after the changes
        title, _ = title_of(nb, rel.stem)
        entries.append((rel, title, nb))
    order = {name: i for i, (name, _) in enumerate(SECTIONS)}
    entries.sort(key=lambda e: (min(order[n] for n, test in SECTIONS if test(e[0])), e[0].as_posix()))

    def href(rel_from, rel_to):
        up = '../' * (len(rel_from.parts) - 1)
        return up + rel_to.with_suffix('.html').as_posix()

    prefix = doc_prefix(cfg)
    hosted = {nbpath2html(r).as_posix(): r for r, _, _ in entries}  # nbdev's page name ('train.html') -> notebook
    exporter = HTMLExporter(template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True)
    written = []
    for rel, title, nb in entries:
        body, _ = exporter.from_notebook_node(nb)

        def fix(m):
            target = m.group(2)
            page_, hash_, anchor = target[len(prefix) :].partition('#') if target.startswith(prefix) else ('', '', '')
            if page_ in hosted:
                return f'{m.group(1)}{href(rel, hosted[page_])}{hash_}{anchor}"'
            if target.startswith(('http:', 'https:', '#', 'data:', 'mailto:')):
                return m.group(0)
            t = re.sub(r'\.ipynb(#.*)?$', lambda mm: '.html' + (mm.group(1) or ''), target)
            if t.endswith('.md') and not t.startswith('/'):
                t = t[:-3] + '.html'
            return f'{m.group(1)}{t}"'

        body = re.sub(r'(href=")([^"]+)"', fix, body)
        dest = (out / rel).with_suffix('.html')
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(page(title, body, rel, entries, href, cfg))
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
