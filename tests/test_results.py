"""The results pages agree with their rows: RESULTS.md is what benchmarks/render.py makes of the row files, and the
figures that chapter 16 and the results tutorial state in prose are row values. Fast, JSON only, no torch."""

import json
import re
import subprocess
import sys

import pytest

from conftest import REPO

BENCH = REPO / 'benchmarks'
sys.path.insert(0, str(BENCH))
import render  # noqa: E402
from _results import ANCHORS, OTHER_ANCHORS, ROWS  # noqa: E402

PAGES = [REPO / 'nbs' / '16_study.ipynb', REPO / 'nbs' / 'tutorials' / '05_results.ipynb']
# Figures in those pages' prose that are not a row's value, each with why: a published figure not in _results'
# anchors or a count's arithmetic.
NOT_ROWS = {
    '16.7': 'chance on six classes (the CIFAR-10 animal proxy)',
    '76.9': "DPDM's published noise-multiplicity ablation (K = 1), quoted beside ours",
}


def markdown(nb_path) -> str:
    return '\n'.join(
        ''.join(c['source']) for c in json.loads(nb_path.read_text())['cells'] if c['cell_type'] == 'markdown'
    )


def test_results_md_is_rendered_from_the_rows():
    "RESULTS.md is byte for byte what the renderer makes of the template and the rows (run benchmarks/render.py)."
    assert (BENCH / 'RESULTS.md').read_text() == render.render_results()
    r = subprocess.run([sys.executable, str(BENCH / 'render.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_changed_row_changes_the_page():
    "The tables follow their rows: nudge one row's accuracy and the rendered page changes where that row is named."
    cache = {'study': render.load_rows('study')}
    row = next(r for r in cache['study'] if r['_id'] == 'long-mnist-eps10/seed1')
    text = render.TEMPLATE.read_text()
    before = render.render(text, cache)
    row['accuracy'] += 0.01
    after = render.render(text, cache)
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed and all('long-mnist-eps10' in a or 'two seeds' in a for a, _ in changed), changed[:3]


def test_placeholders_cover_the_row_tables():
    """Every table line of the template that names a study, GPU or end-to-end row states its accuracies as
    placeholders: a percentage left literal in such a line is a published anchor's, never a row's typed by hand."""
    names = {r['row'] for f in ('study', 'gpu_fmnist', 'results') for r in render.load_rows(f)}
    anchors = {f"{100 * a['accuracy']:.1f}%" for a in [*ANCHORS.values(), *OTHER_ANCHORS]}
    lines, bad = 0, []
    for line in render.TEMPLATE.read_text().splitlines():
        first = line.split('|')[1].strip() if line.startswith('|') and line.count('|') > 2 else ''
        tok = re.match(r'\**([A-Za-z][\w.\-]*)', first)
        if not tok or tok.group(1) not in names:
            continue
        lines += 1
        rest = re.sub(r'\{\{.*?\}\}', '', '|'.join(line.split('|')[2:]))
        bad += [(tok.group(1), x) for x in re.findall(r'(?<![\w.])\d+\.\d+%', rest) if x not in anchors]
    assert lines > 60, lines
    assert not bad, bad


def test_placeholder_syntax():
    "The placeholder grammar: a mean over seeds with its spread, a percentage, a nested field and minutes."
    cache = {
        'x': [
            dict(_id='a/seed0', row='a', seed=0, accuracy=0.9, fid=30.0, all=dict(accuracy=0.5), seconds=120),
            dict(_id='a/seed1', row='a', seed=1, accuracy=0.8, fid=40.0, all=dict(accuracy=0.7), seconds=240),
        ]
    }
    assert render.render('{{x:a accuracy %.1f±.1f}}', cache) == '85.0% ± 5.0'
    assert (
        render.render('{{x:a@1 fid .0f}} {{x:a@0 all.accuracy %.0f}} {{x:a@1 seconds/60 .1f}}', cache) == '40 50% 4.0'
    )
    with pytest.raises(AssertionError):
        render.render('{{x:b accuracy %.1f}}', cache)


def row_values() -> set:
    "Every figure the rows support, as prose writes it (one decimal): accuracies in %, FIDs, seeds' means and spreads."
    out = set()

    def add(xs, k=1.0):
        out.add(f'{k * sum(xs) / len(xs):.1f}')
        if len(xs) > 1:
            out.add(f'{k * (max(xs) - min(xs)) / 2:.1f}')

    for f in ('study', 'results', 'gpu_fmnist'):
        by_row = {}
        for r in render.load_rows(f):
            by_row.setdefault(r['row'], []).append(r)
        for rs in by_row.values():
            add([r['accuracy'] for r in rs], 100)
            fids = [r['fid'] for r in rs if r.get('fid') is not None]
            if fids:
                add(fids)
            for r in rs:
                add([r['accuracy']], 100)
                for m in r.get('more_data') or []:
                    add([m['accuracy']], 100)
                if r.get('fid') is not None:
                    add([r['fid']])
                    if r.get('fid_floor'):
                        add([r['fid_floor']])
    # the Fashion-MNIST recipe's three seeds at N = 5,000 (the tutorial's headline)
    study = {r['_id']: r for r in render.load_rows('study')}
    n5000 = [
        study['long-fmnist-eps10-lr2e-3/seed0']['accuracy'],
        next(m['accuracy'] for m in study['long-fmnist-eps10-lr2e-3-n10000/seed1']['more_data'] if m['n'] == 5000),
        study['long-fmnist-eps10-lr2e-3-snap/seed2']['accuracy'],
    ]
    add(n5000, 100)
    n10000 = [m['accuracy'] for r in study.values() for m in r.get('more_data') or [] if m['n'] == 10000]
    add(n10000, 100)
    for r in render.load_rows('self_filter'):
        for k in ('all', 'filtered', 'random'):
            add([r[k]['accuracy']], 100)
        for x in r['kept_by_class'].values():
            add([x], 100)
    pc = render.load_rows('per_class_fmnist')[0]
    for k in ('synthetic', 'real'):
        for x in pc[k]:
            add([x], 100)
        add(pc[k], 100)
    for m in render.load_rows('ceiling_fmnist_real')[0]['more_data']:
        add([m['accuracy']], 100)
    # the demo's fresh-machine runs and the sampler sweep (FID to one or two decimals, as the pages state them)
    for r in [*render.load_rows('demo'), *render.load_rows('sampler_sweep')]:
        if r.get('accuracy') is not None:
            add([r['accuracy']], 100)
        out.add(f"{r['fid']:.1f}")
    for a in [*ANCHORS.values(), *OTHER_ANCHORS]:
        add([a['accuracy']], 100)
        if 'fid' in a:
            add([a['fid']])
    return out


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_stated_figures_are_row_values(page):
    """Every accuracy (a one-decimal percentage) and FID that the page's prose states is a row's value (or a mean or
    spread over a row's seeds), or a published anchor; NOT_ROWS lists the few others with their reason."""
    values = row_values()
    text = markdown(page)
    stated = re.findall(r'(\d+\.\d)%', text) + re.findall(r'FID (?:of |at |\*\*)?(\d+\.\d)', text)
    assert len(stated) > 20, 'the pattern no longer finds the figures'
    unknown = sorted({x for x in stated if x not in values and x not in NOT_ROWS})
    assert not unknown, f'{page.name} states figures that no row holds: {unknown}'


def test_the_check_has_teeth():
    "A figure that no row holds is caught: the value set is not so dense that anything passes."
    values = row_values()
    misses = [f'{x / 10:.1f}' for x in range(500, 1000) if f'{x / 10:.1f}' not in values]
    assert len(misses) > 250, len(misses)


HEADLINES = [
    # (page, the text the page states, the rows and how they render)
    ('05_results.ipynb', '96.2% ± 0.4', '{{study:long-mnist-eps10 accuracy %.1f±.1f}}'),
    ('05_results.ipynb', '95.2% ± 0.1', '{{study:long-mnist-eps1 accuracy %.1f±.1f}}'),
    (
        '05_results.ipynb',
        '(90.7% and 90.3%)',
        '({{study:long-dp-merf-mnist-eps10 accuracy %.1f}} and {{study:long-dp-merf-mnist-eps1 accuracy %.1f}})',
    ),
    ('05_results.ipynb', 'reaches 82.2%', 'reaches {{gpu_fmnist:gpu-fmnist-recipe-no-noise accuracy %.1f}}'),
    ('05_results.ipynb', 'DP-MERF scores 62.5%', 'DP-MERF scores {{study:long-dp-merf-fmnist-eps10 accuracy %.1f}}'),
    ('05_results.ipynb', '21.3% (MNIST, ε = 10)', '{{results:mnist-eps10 accuracy %.1f}} (MNIST, ε = 10)'),
    ('05_results.ipynb', 'K = 16 at 5.8%', 'K = 16 at {{results:K16/multiplicity accuracy %.1f}}'),
    (
        '16_study.ipynb',
        'scored **95.8%**, FID 36.7',
        'scored **{{study:long-mnist-eps10@1 accuracy %.1f}}**, FID {{study:long-mnist-eps10@1 fid .1f}}',
    ),
    (
        '16_study.ipynb',
        'two seeds **96.2% ± 0.4**, FID 33.8 ± 3.0',
        'two seeds **{{study:long-mnist-eps10 accuracy %.1f±.1f}}**, FID {{study:long-mnist-eps10 fid .1f±.1f}}',
    ),
    ('16_study.ipynb', 'It scored **72.7%**', 'It scored **{{study:long-fmnist-eps10-lr2e-3 accuracy %.1f}}**'),
    (
        '16_study.ipynb',
        '**10.2%** of real shirts',
        '**{{per_class_fmnist:per_class_fmnist synthetic.6 %.1f}}** of real shirts',
    ),
]


@pytest.mark.parametrize('page,stated,template', HEADLINES, ids=[h[1] for h in HEADLINES])
def test_headline_figures_agree_with_their_rows(page, stated, template):
    "The headline figures in prose, each tied to the row it names: the page states exactly what the row renders."
    path = next(p for p in PAGES if p.name == page)
    assert render.render(template) == stated
    assert stated in ' '.join(markdown(path).split()), f'{page} no longer states {stated!r}'


def test_results_tutorial_opens_with_the_headline_and_keeps_history_apart():
    """The tutorial's first section is the headline rows (the 60-minute rows of study.json); the superseded rows of
    results.json are read only under a heading that says they are history, with their date and why."""
    cells = json.loads(PAGES[1].read_text())['cells']
    heads = [(i, ''.join(c['source'])) for i, c in enumerate(cells) if ''.join(c['source']).startswith('## ')]
    assert 'headline' in heads[0][1].lower()
    history = next(i for i, h in heads if 'superseded' in h.lower())
    assert '2026-11-29' in heads[[i for i, _ in heads].index(history)][1]
    reads = [
        i for i, c in enumerate(cells) if c['cell_type'] == 'code' and 'RESULTS_JSON.read_text' in ''.join(c['source'])
    ]
    assert reads and all(i > history for i in reads), (reads, history)
    first_code = next(''.join(c['source']) for i, c in enumerate(cells) if i > heads[0][0] and c['cell_type'] == 'code')
    assert 'long-mnist-eps10' in first_code and 'long-fmnist-eps10-lr2e-3' in first_code and 'dp-merf' in first_code


def test_row_files_live_in_results_and_scripts_in_their_kind():
    "benchmarks/ shows its kinds: row files in results/, scripts in speed/, experiments/, gpu/; peers/ a package."
    assert sorted(p.name for p in BENCH.glob('*.json')) == []
    assert {p.name for p in ROWS.glob('*.json')} >= {'results.json', 'study.json', 'audit.json', 'gpu_fmnist.json'}
    assert sorted(p.name for p in BENCH.glob('*.py')) == ['_results.py', 'render.py']
    for kind in ('speed', 'experiments', 'gpu'):
        assert list((BENCH / kind).glob('*.py')), kind
    assert (BENCH / 'peers' / '__init__.py').is_file()


# What a placeholder's field measures, by its last named part (digits are list indices), and what the template's words
# ask for: a column header's quantities, in order, and the words just before or after a placeholder. A placeholder must
# read the quantity its text states, not a field that merely equals that number today (a re-measured row would print
# nonsense): the template was once converted from typed numbers by matching values, and `steps` stood for a claimed
# eps of 1, `finetune_seconds/60` for an image size of 14, `accuracy .0f` for a count of seeds.
FIELD_KINDS = {
    'epsilon': 'epsilon', 'epsilon_claimed': 'epsilon', 'epsilon_lower': 'epsilon', 'epsilon_lower_all': 'epsilon',
    'sigma': 'sigma', 'noise_multiplier': 'sigma', 'select_sigma': 'sigma', 'central_sigma': 'sigma',
    'accuracy': 'accuracy', 'fid': 'fid', 'fid_floor': 'fid', 'seconds': 'seconds', 'finetune_seconds': 'seconds',
    'steps': 'steps', 'fid_n': 'fid_n', 'n_synthetic': 'count', 'kept': 'count', 'canaries': 'count', 'n': 'count',
    'sample_rate': 'q', 'K': 'K', 'batch_size': 'B', 'auc': 'auc', 'auc_all': 'auc', 'tpr_at_1pct_fpr': 'tpr',
    'ceiling': 'ceiling', 'consistent': 'consistent', 'consistent_all': 'consistent', 'seed': 'seed',
    'guidance': 'guidance', 'central_size': 'size',
    'epsilon_spent': 'epsilon', 'install_seconds': 'seconds', 'total_seconds': 'seconds', 'demo_seconds': 'seconds',
    'sample_seconds': 'seconds', 'np_ex_s': 'rate', 'dp_ex_s': 'rate', 'op_ex_s': 'rate', 'img_s': 'rate',
    'net_s': 'rate', 'dp_ratio': 'ratio', 'op_ratio': 'ratio', 'memorisation_pixel': 'ratio',
    'memorisation_inception': 'ratio', 'max_feature_diff': 'difference', 'rel_fid_diff': 'fraction',
}  # fmt: skip
# a column header's words -> the kind they name (settings written with their value, "N = 5,000", are stripped first)
HEADER_WORDS = [
    (r'ε|epsilon', 'epsilon'), (r'σ', 'sigma'), (r'accuracy', 'accuracy'), (r'FID|floor', 'fid'), (r'\bN\b', 'count'),
    (r'\bkept\b', 'count'), (r'\bsteps\b', 'steps'), (r'\bB\b', 'B'), (r'\bq\b', 'q'), (r'\bK\b', 'K'),
    (r'AUC', 'auc'), (r'TPR', 'tpr'), (r'ceiling', 'ceiling'), (r'consistent', 'consistent'), (r'\bseeds?\b', 'seed'),
    (r'\bmin\b', 'minutes'), (r'\bs\b|\bseconds\b', 'seconds'), ('RATE', 'rate'), ('RELATIVE', 'fraction'),
]  # fmt: skip
# header words read as one quantity before the words above are looked for: a rate "images/s" (not seconds nor steps),
# and a relative difference (a fraction, shown as a percentage, not an FID)
HEADER_TOKENS = [(r'[\w-]+/s\b', ' RATE '), (r'relative \w+ difference', ' RELATIVE ')]
BEFORE = [(r'σ = $', 'sigma'), (r'ε = $', 'epsilon'), (r'\bq = $', 'q'), (r'\bK = $', 'K'), (r'\bB = $', 'B'),
          (r'\bN = $', 'count'), (r'\bguidance $', 'guidance'), (r'\}\}×$', 'size')]  # fmt: skip
AFTER = [(r'^ steps\b', 'steps'), (r'^×\{\{', 'size'), (r'^ min\b', 'seconds')]  # "11.4 min": seconds/60
SPEC = re.compile(
    r'%?,?\.\d+[fe](±\.\d+f)?'
)  # fixed point (thousands commas), exponent, a percentage, a spread; or none


def field_kind(file: str, path: str) -> str | None:
    "The kind of quantity a placeholder's field holds (per_class_fmnist's `synthetic.3` is class 3's accuracy)."
    parts = [p for p in path.removesuffix('/60').split('.') if not p.isdigit()]
    if 'seconds' in parts[:-1]:  # a stage's seconds: `seconds.fid` is the FID stage's time, not an FID
        return 'seconds'
    last = parts[-1]
    if file == 'per_class_fmnist' and last in ('synthetic', 'real'):
        return 'accuracy'
    return FIELD_KINDS.get(last)


def header_kinds(header: str) -> list:
    """The kinds a column header names, in its order; [] for a column of free text (its placeholders' words decide).
    A bare N beside FID ("FID (N; floor at N)") is FID's sample count, `fid_n`, not the number of synthetic images."""
    h = re.sub(r'\b(N|B|C|K|q|δ|σ|ε)\s*=\s*[\d.,e-]+', '', header)
    for pat, token in HEADER_TOKENS:
        h = re.sub(pat, token, h)
    hits = sorted((m.start(), kind) for pat, kind in HEADER_WORDS for m in re.finditer(pat, h))
    return ['fid_n' if kind == 'count' and 'FID' in h and h[i] == 'N' else kind for i, kind in hits]


def placeholder_problems(text: str) -> list:
    """Every placeholder of a template whose field is not the quantity its column header or neighbouring words state,
    or whose format does not suit it: (line number, placeholder, why)."""
    out, header = [], None
    for n, line in enumerate(text.splitlines(), 1):
        is_row = line.startswith('|') and line.count('|') > 2
        if not is_row:
            header = None
        elif header is None:
            header = [c.strip() for c in line.strip().strip('|').split('|')]
        cells = line.split('|')[1:-1] if is_row else [line]
        seen = {}
        for col, cell in enumerate(cells):
            wanted = header_kinds(header[col]) if is_row and col < len(header) else []
            at = 0  # the header's quantities are met in order: "DP steps (σ)" is `484 (0.513)`
            for m in render.PLACEHOLDER.finditer(cell):
                file, _, _, path, spec = m.groups()
                ph, kind, spec = m.group(0), field_kind(file, path), (spec or '').strip()

                def bad(why):
                    out.append((n, ph, why))

                if kind is None:
                    bad(f'field {path!r} of no known kind: add it to FIELD_KINDS')
                    continue
                if is_row and ph in seen and not re.search(r'×$', cell[: m.start()]):
                    bad(f'the same placeholder twice in one row (also in column {header[seen[ph]]!r})')
                seen.setdefault(ph, col)
                # the words next to it name its quantity ("none (σ = 0)" in a column of claimed eps): they decide
                named = [(pat, k) for pat, k in BEFORE if re.search(pat, cell[: m.start()])]
                named += [(pat, k) for pat, k in AFTER if re.search(pat, cell[m.end() :])]
                named = [(re.sub(r'\\b|[$^\\]', '', pat), k) for pat, k in named]
                for words, k in named:
                    if kind != k:
                        bad(f'written next to {words!r}, so a {k}, but {path!r} is a {kind}')
                if spec and not SPEC.fullmatch(spec):
                    bad(f'format {spec!r}: a placeholder is formatted `.Nf`, `%.Nf`, with `±.Nf`, or not at all')
                if (kind in ('accuracy', 'fraction')) != spec.startswith('%'):
                    bad('an accuracy (or a fraction) is shown as a percentage (`%.1f`), and only those are')
                if re.match(r' min\b', cell[m.end() :]) and not path.endswith('/60'):
                    bad('written before "min": minutes, so `/60`')
                if path.endswith('/60') and kind != 'seconds':
                    bad('`/60` (minutes) on a field that holds no seconds')
                if wanted and not named:
                    as_time = {'minutes': 'seconds'}
                    hit = next((i for i in range(at, len(wanted)) if as_time.get(wanted[i], wanted[i]) == kind), None)
                    if hit is None:
                        bad(f'column {header[col]!r} states {wanted[at:]}, but {path!r} is a {kind}')
                        continue
                    at = hit
                    if kind == 'seconds' and (wanted[hit] == 'minutes') != path.endswith('/60'):
                        fix = 'add' if wanted[hit] == 'minutes' else 'drop'
                        bad(f'column {header[col]!r} is in {wanted[hit]}: {fix} `/60`')
    return out


def test_placeholders_read_the_quantity_their_text_states():
    """Each placeholder's field is the quantity that its column header or the words around it state (eps, sigma,
    accuracy, FID, seconds or minutes, steps, counts, sizes, guidance, seeds), formatted as such: not a field that only
    happens to hold the same number today."""
    text = render.TEMPLATE.read_text()
    assert len(render.PLACEHOLDER.findall(text)) > 500
    problems = placeholder_problems(text)
    assert not problems, '\n'.join(f'line {n}: {ph}: {why}' for n, ph, why in problems)


BAD_PLACEHOLDERS = [
    # (what a wrong placeholder looked like, as a one-row table or a line of text)
    '| step | claimed ε | σ, q, steps |\n|---|---|---|\n| real | {{audit:r steps .0f}} | 4.046, 1, {{audit:r steps .0f}} |',
    '| step | claimed ε |\n|---|---|\n| sigma0 | none (σ = {{audit:r seconds/60 .0f}}) |',
    '| row | what changed |\n|---|---|\n| g4 | the same, guidance {{study:g4 finetune_seconds/60 .0f}} |',
    '| row | what changed |\n|---|---|\n| c | central images at {{study:c finetune_seconds/60 .0f}}×{{study:c finetune_seconds/60 .0f}} |',
    '| row | what changed |\n|---|---|\n| v | a vote (q = 0.02, σ = {{study:v epsilon .0f}}) |',
    '| row | seeds | CNN accuracy |\n|---|---|---|\n| a | {{study:a accuracy .0f}} | {{study:a accuracy %.1f}} |',
    '| row | seed | ε (σ) |\n|---|---|---|\n| a | {{gpu_fmnist:a@0 sigma .0f}} | {{gpu_fmnist:a@0 epsilon .5f}} ({{gpu_fmnist:a@0 sigma .3f}}) |',
    '| step | consistent |\n|---|---|\n| real | {{audit:r ceiling .0f}}/{{audit:r ceiling .0f}} |',
    '| row | steps × B (q), K |\n|---|---|\n| demo | {{audit:d steps .0f}} × 256 ({{audit:d sample_rate .5f}}), {{audit:d auc .0f}} |',
    '| row | FID (N; floor at N) |\n|---|---|\n| a | {{results:a fid .1f}} ({{results:a fid_n .0f}}; {{results:a fid_floor ,}}) |',
    '| row | FID (N; floor at N) |\n|---|---|\n| a | {{results:a fid .1f}} ({{results:a n_synthetic .0f}}; {{results:a fid_floor}}) |',
    '| row | proven ε ≥ (each audit) |\n|---|---|\n| r | {{audit:r epsilon_lower .2f}}, {{audit:r epsilon_lower .2f}} |',
    '| row | run min | run s |\n|---|---|---|\n| a | {{study:a seconds .1f}} | {{study:a seconds/60 .0f}} |',
    '| row | CNN accuracy |\n|---|---|\n| a | {{study:a fid .1f}} |',
    'scored {{study:a accuracy .3f}} at {{study:a steps/60 .1f}} minutes',
]


@pytest.mark.parametrize('snippet', BAD_PLACEHOLDERS, ids=range(len(BAD_PLACEHOLDERS)))
def test_the_quantity_check_has_teeth(snippet):
    "Each kind of wrong placeholder once found in the template (or that the check is meant to catch) is caught."
    assert placeholder_problems(snippet)
