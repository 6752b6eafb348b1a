"The `dp_synth` command: help a newcomer can follow, JSON for scripts, exit codes scripts can rely on."

import json

import pytest

from conftest import EXE, run_cli

SUBCOMMANDS = ['data', 'demo', 'run', 'pretrain', 'sample', 'finetune', 'evaluate', 'budget', 'audit']


def test_entry_point_installed():
    assert EXE.exists(), 'the dp_synth console script is not installed (pip install -e .)'
    r = run_cli('--version')
    assert r.returncode == 0 and r.stdout.startswith('dp_synth ')


def test_help_lists_commands_with_examples():
    r = run_cli('--help')
    assert r.returncode == 0
    for word in ('demo', 'data', 'examples:', 'dp_synth <command> --help'):
        assert word in r.stdout


@pytest.mark.parametrize('cmd', SUBCOMMANDS)
def test_subcommand_help(cmd):
    "Every subcommand's --help exits 0, shows an example and offers --json."
    r = run_cli(cmd, '--help')
    assert r.returncode == 0 and 'example' in r.stdout and '--json' in r.stdout


def test_no_command_is_usage_error():
    r = run_cli()
    assert r.returncode == 2 and 'usage: dp_synth' in r.stdout


def test_unknown_option_is_usage_error():
    r = run_cli('data', 'digits', '--frobnicate')
    assert r.returncode == 2 and 'unrecognized arguments: --frobnicate' in r.stderr


def test_data_json():
    r = run_cli('data', 'digits', '--split', 'test', '--json')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res['n'] == 359 and res['shape'] == [1, 8, 8] and sum(res['class_counts']) == 359


def test_data_error_exit_code_and_message():
    r = run_cli('data', 'mnist', '--split', 'validation', '--json')
    assert r.returncode == 1
    assert json.loads(r.stdout)['error'] == 'SplitError'
    assert "dp_synth data: error: Unknown split 'validation' for mnist" in r.stderr


def test_pretrain_then_sample(tmp_path):
    "pretrain writes a resumable checkpoint and a release model; sample reads either, by path, to npz or a folder."
    out = tmp_path / 'run'
    args = [
        'pretrain',
        '--out',
        str(out),
        '--dataset',
        'digits',
        '--image-size',
        '8',
        '--preset',
        'tiny',
        '--steps',
        '3',
        '--batch-size',
        '8',
        '--sample-every',
        '0',
        '--json',
    ]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res['finished'] and res['step'] == 3 and (out / 'model.pt').exists() and len(res['release']['sha256']) == 64
    r = run_cli(*args[:-1], '--steps', '5', '--json')  # more steps (the last --steps wins): resumes from step 3
    assert r.returncode == 0 and json.loads(r.stdout)['step'] == 5
    r = run_cli(
        'sample',
        '--from',
        str(out / 'model.pt'),
        '--n',
        '20',
        '--steps',
        '4',
        '--out',
        str(tmp_path / 's.npz'),
        '--json',
    )
    assert r.returncode == 0, r.stderr
    import numpy as np

    z = np.load(tmp_path / 's.npz')
    assert (
        z['images'].shape == (20, 1, 8, 8)
        and z['images'].dtype == np.uint8
        and np.bincount(z['labels']).tolist() == [2] * 10
    )
    r = run_cli('sample', '--from', str(out), '--n', '10', '--steps', '3', '--out', str(tmp_path / 'folder'))
    assert r.returncode == 0 and 'wrote 10 images' in r.stdout
    from dp_synth.data import load_dataset

    assert len(load_dataset(tmp_path / 'folder')) == 10


def test_pretrain_refuses_changed_config(tmp_path):
    out = tmp_path / 'run'
    base = [
        'pretrain',
        '--out',
        str(out),
        '--dataset',
        'digits',
        '--image-size',
        '8',
        '--preset',
        'tiny',
        '--steps',
        '1',
        '--sample-every',
        '0',
    ]
    run_cli(*base, check=True)
    r = run_cli(*base, '--lr', '0.01')
    assert (
        r.returncode == 1
        and 'trained with a different config (lr: 0.0005 → 0.01)' in r.stderr
        and '--no-resume' in r.stderr
    )


def test_bad_config_values_are_input_errors(tmp_path):
    r = run_cli('pretrain', '--out', str(tmp_path / 'x'), '--channels', '2')
    assert r.returncode == 1 and 'channels must be 0 (keep), 1 or 3, got 2' in r.stderr
    (tmp_path / 'c.json').write_text('{"batchsize": 3}')
    r = run_cli('pretrain', '--out', str(tmp_path / 'x'), '--config', str(tmp_path / 'c.json'))
    assert r.returncode == 1 and "unknown fields ['batchsize']" in r.stderr


def test_sample_unknown_model():
    r = run_cli('sample', '--from', 'no-such-model', '--out', 'x.npz')
    assert r.returncode == 1 and 'is neither a shipped checkpoint' in r.stderr


def test_budget_json_both_directions():
    r = run_cli(
        'budget',
        '--epsilon',
        '10',
        '--delta',
        '1e-5',
        '--batch-size',
        '256',
        '--dataset-size',
        '60000',
        '--epochs',
        '10',
        '--json',
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    for k in ('epsilon', 'delta', 'sigma', 'sample_rate', 'steps'):
        assert k in res
    assert res['epsilon'] <= 10 and res['steps'] == 2344
    r2 = run_cli(
        'budget', '--sigma', str(res['sigma']), '--sample-rate', str(res['sample_rate']), '--steps', '2344', '--json'
    )
    assert json.loads(r2.stdout)['epsilon'] == pytest.approx(res['epsilon'], rel=1e-9)


@pytest.mark.parametrize(
    'args,msg',
    [
        (['--epsilon', '0', '--sample-rate', '0.1', '--steps', '10'], 'epsilon must be positive'),
        (['--epsilon', '-2', '--sample-rate', '0.1', '--steps', '10'], 'epsilon must be positive'),
        (['--sigma', '1', '--delta', '1.5', '--sample-rate', '0.1', '--steps', '10'], 'delta must lie in (0, 1)'),
        (['--sigma', '1', '--delta', '0', '--sample-rate', '0.1', '--steps', '10'], 'delta must lie in (0, 1)'),
        (['--sigma', '1', '--sample-rate', '1.5', '--steps', '10'], 'the sample rate must lie in (0, 1]'),
        (['--sigma', '1', '--sample-rate', '0', '--steps', '10'], 'the sample rate must lie in (0, 1]'),
        (['--sigma', '1', '--steps', '10'], 'give the sample rate, or a positive batch size and dataset size'),
        (['--sample-rate', '0.1', '--steps', '10'], 'give exactly one of --sigma'),
    ],
)
def test_budget_refuses_nonsense(args, msg):
    r = run_cli('budget', *args)
    assert r.returncode == 1 and msg in r.stderr


def test_budget_warns_when_delta_not_below_1_over_n():
    r = run_cli(
        'budget', '--sigma', '1', '--batch-size', '10', '--dataset-size', '1000', '--steps', '10', '--delta', '0.01'
    )
    assert r.returncode == 0 and 'warning: delta=0.01 is not below 1/N = 0.001' in r.stderr


def test_finetune_cli_with_ledger(tmp_path):
    "finetune a tiny public model on digits: the plan is checked, the ledger lands in the checkpoint, ε ≤ target."
    pub = tmp_path / 'pub'  # public: Fashion-MNIST shrunk to 8×8; private: the 8×8 digits
    run_cli(
        'pretrain',
        '--out',
        str(pub),
        '--dataset',
        'fashion_mnist',
        '--image-size',
        '8',
        '--preset',
        'tiny',
        '--steps',
        '2',
        '--sample-every',
        '0',
        check=True,
    )
    same = tmp_path / 'same'  # a "public" model pre-trained on the private dataset itself
    run_cli(
        'pretrain',
        '--out',
        str(same),
        '--dataset',
        'digits',
        '--image-size',
        '8',
        '--preset',
        'tiny',
        '--steps',
        '1',
        '--sample-every',
        '0',
        check=True,
    )
    r = run_cli(
        'finetune',
        '--out',
        str(tmp_path / 'bad'),
        '--model',
        str(same),
        '--dataset',
        'digits',
        '--epsilon',
        '5',
        '--steps',
        '1',
    )
    assert (
        r.returncode == 1 and 'same dataset (digits)' in r.stderr and not (tmp_path / 'bad' / 'checkpoint.pt').exists()
    )
    base = [
        'finetune',
        '--out',
        str(tmp_path / 'ft'),
        '--model',
        str(pub),
        '--dataset',
        'digits',
        '--epsilon',
        '5',
        '--steps',
        '4',
        '--batch-size',
        '64',
        '--K',
        '2',
        '--json',
    ]
    r = run_cli(*base)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert (
        res['finished']
        and res['steps'] == 5  # the ledger's steps: the noisy count of N, then 4 of DP-SGD
        and 0 < res['epsilon_spent'] <= 5
        and (tmp_path / 'ft' / 'model.pt').exists()
    )
    report = json.loads((tmp_path / 'ft' / 'privacy.json').read_text())
    assert (
        report['steps'] == 5
        and report['mechanisms'][0]['steps'] == 4
        and report['epsilon_spent'] == pytest.approx(res['epsilon_spent'])
        and report['ledger'][0] == [50.0, 1.0, 1]
        and report['ledger'][1][2] == 4
    )
    r = run_cli(*base[:-1], '--steps', '40', '--json')  # resuming with more steps at the same sigma would overspend
    assert r.returncode == 1 and 'would spend epsilon=' in r.stderr
    r = run_cli(
        'finetune',
        '--out',
        str(tmp_path / 'ft2'),
        '--model',
        str(pub),
        '--dataset',
        'digits',
        '--epsilon',
        '1',
        '--noise-multiplier',
        '0.2',
        '--steps',
        '50',
        '--batch-size',
        '64',
    )
    assert (
        r.returncode == 1 and 'would spend epsilon=' in r.stderr and not (tmp_path / 'ft2' / 'checkpoint.pt').exists()
    )


def test_every_setting_flag_has_help():
    "Each config field's flag explains itself: its help is the field's comment (fastcore's docments), never empty."
    from dp_synth.cli import _defaults
    from dp_synth.config import EvalConfig, FinetuneConfig, RunConfig, TrainConfig

    for cls in (TrainConfig, FinetuneConfig, EvalConfig, RunConfig):
        missing = sorted(k for k, v in _defaults(cls)[1].items() if not v)
        assert not missing, f"{cls.__name__} fields without a comment (their --help is empty): {missing}"
