"`dp_synth run` and `dp_synth demo`: the main job end to end, its JSON, its resumption after a kill, its time limit."

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import EXE, run_cli

# A miniature of the demo: the same stages, six DP steps, a few images.
TINY = [
    '--dataset',
    'mnist',
    '--model',
    'fmnist-small',
    '--epsilon',
    '10',
    '--steps',
    '6',
    '--batch-size',
    '64',
    '--max-grad-norm',
    '0.3',
    '--lr',
    '2e-3',
    '--K',
    '1',
    '--n-synthetic',
    '40',
    '--sample-steps',
    '3',
    '--fid-n',
    '40',
    '--more-data',
    '20',
    '--classifier-epochs',
    '1',
    '--warm-start-steps',  # (the recipe's central images stay on: their release is composed into the ledger)
    '2',
    '--memorisation',
    'pixel',
    '--device',
    'cpu',
]


def _check_finished_run(res: dict, args: list, steps: int):
    "The JSON on stdout, the files of a finished run, its owner-only report and release; a second call spends nothing."
    for k in ('epsilon_spent', 'delta', 'fid', 'fid_n', 'accuracy', 'run_dir', 'sigma', 'steps'):
        assert k in res, k
    assert res['steps'] == steps and 9.9 < res['epsilon_spent'] <= 10 and res['fid_n'] == 40
    out = Path(res['run_dir'])
    for f in ('report.md', 'report.html', 'synthetic.npz', 'evaluation.json', 'finetune/checkpoint.pt',
              'finetune/model.pt', 'finetune/privacy.json'):  # fmt: skip
        assert (out / f).is_file(), f
    html = (out / 'report.html').read_text()
    assert 'Privacy statement' in html and html.count('data:image/png;base64,') >= 3 and 'dp_synth run' in html
    assert 'OWNER ONLY' in html  # the evaluation report is the owner's
    release = sorted(p.name for p in (out / 'release').iterdir())
    assert release == ['README.md', 'epsilon.png', 'model.pt', 'privacy.json', 'synthetic.npz']
    from dp_synth.release import release_reveals  # every field of the demo-sized release is accounted for

    kinds = {w for _, _, w in release_reveals(out / 'release')}
    assert {'answer:count', 'answer:central', 'post:dpsgd', 'public:image schema'} <= kinds
    st = json.loads((out / 'release' / 'privacy.json').read_text())
    assert any('chosen by looking at results on mnist itself' in c for c in st['not_covered'])  # the demo's tuning
    assert oct((out / 'finetune' / 'checkpoint.pt').stat().st_mode & 0o777) == oct(0o600)
    for f in (out / 'stages').glob('*.json'):  # (evaluate's marker holds the test-set accuracy, per class too)
        assert oct(f.stat().st_mode & 0o777) == oct(0o600), f
    assert (out / 'stages' / 'evaluate.json').is_file()
    # every stage is done: a second call is quick and spends nothing more
    t = time.time()
    r2 = run_cli('run', '--out', str(out), *args, '--json')
    assert r2.returncode == 0 and json.loads(r2.stdout)['epsilon_spent'] == res['epsilon_spent']
    assert time.time() - t < 60
    # a changed privacy setting in the same directory is refused, not silently restarted
    r3 = run_cli('run', '--out', str(out), *[a if a != '10' else '5' for a in args])
    assert r3.returncode == 1 and 'epsilon' in r3.stderr


def test_run_end_to_end_then_killed_run_resumes_to_same_epsilon(tmp_path):
    """`dp_synth run --json` end to end (JSON on stdout, files, report, release, a second call, a refused change);
    then SIGINT in the middle of fine-tuning and the same command: same steps, and the ε its plan made before the kill
    (σ and q from its own noisy count Ñ, drawn once); the uninterrupted run drew another Ñ, so its ε agrees to the
    calibration's tolerance, not to the last digit."""
    args = [a if a != '6' else '30' for a in TINY]
    straight = run_cli('run', '--out', str(tmp_path / 'straight'), *args, '--json')
    assert straight.returncode == 0, straight.stderr[-3000:]
    ref = json.loads(straight.stdout)
    _check_finished_run(ref, args, 32)  # the ledger's steps: 30 of DP-SGD, the noisy count, the central images
    out = tmp_path / 'killed'
    # A shell that starts a job with `&` (as `nohup bash .ci/run &` does) leaves it ignoring SIGINT, and Python then
    # installs no KeyboardInterrupt handler: restore the default in the child so that Ctrl-C means what it does in a
    # terminal. stdout is not read here, so it goes nowhere rather than into a pipe that could fill and block the run.
    p = subprocess.Popen(
        [str(EXE), 'run', '--out', str(out), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []

    def watch():
        for chunk in iter(lambda: p.stderr.read(64), ''):
            seen.append(chunk)

    threading.Thread(target=watch, daemon=True).start()
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        text = ''.join(seen)
        if 'DP fine-tuning on' in text and any(f'| {k}/30' in text for k in range(3, 20)):
            break
        time.sleep(0.2)
    assert p.poll() is None, 'the run ended before it could be interrupted'
    p.send_signal(signal.SIGINT)
    assert p.wait(120) == 130
    ck = out / 'finetune' / 'checkpoint.pt'
    assert ck.is_file() and not (out / 'finetune' / 'model.pt').exists()
    from dp_synth.checkpoints import load_checkpoint

    killed = load_checkpoint(ck)
    done_steps, plan, count = killed['meta']['step'], killed['plan'], killed['before']['count']
    assert 0 < done_steps < 30
    resumed = run_cli('run', '--out', str(out), *args, '--json')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    res = json.loads(resumed.stdout)
    assert res['steps'] == ref['steps'] == 32
    statement = json.loads((out / 'finetune' / 'privacy.json').read_text())
    assert statement['steps'] == 32 and statement['mechanisms'][0]['steps'] == 30
    assert (statement['n_private'], statement['sigma'], statement['sample_rate']) == (
        count['noisy_n'], plan['sigma'], plan['sample_rate'])  # fmt: skip
    assert res['epsilon_spent'] == pytest.approx(plan['planned_epsilon'], rel=1e-12)
    assert res['epsilon_spent'] == pytest.approx(ref['epsilon_spent'], rel=1e-4) and res['epsilon_spent'] <= 10


@pytest.mark.slow  # the full demo takes up to 15 minutes
def test_demo_full_size(tmp_path):
    "The demo at its real size (slow). Its time on a fresh machine is a benchmark: benchmarks/experiments/fresh_demo.sh."
    t = time.time()
    r = run_cli('demo', '--out', str(tmp_path / 'demo'), '--json')
    minutes = (time.time() - t) / 60
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    for k in ('epsilon_spent', 'delta', 'fid', 'fid_n', 'accuracy', 'run_dir'):
        assert k in res
    assert 9.9 < res['epsilon_spent'] <= 10 and res['fid_n'] == 1000 and res['fid_floor'] is not None
    print(f'the demo took {minutes:.1f} minutes')
