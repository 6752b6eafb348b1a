"The `dp_synth` command: help a newcomer can follow, JSON for scripts, exit codes scripts can rely on."
import json
import subprocess
import sys

from pathlib import Path

import pytest

EXE = Path(sys.executable).parent/'dp_synth'   # the console script pip installed beside this Python


def run(*args, env=None):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env)


def test_entry_point_installed():
    assert EXE.exists(), 'the dp_synth console script is not installed (pip install -e .)'
    r = run('--version')
    assert r.returncode == 0 and r.stdout.startswith('dp_synth ')


def test_help_lists_commands_with_examples():
    r = run('--help')
    assert r.returncode == 0
    for word in ('demo', 'data', 'examples:', 'dp_synth <command> --help'): assert word in r.stdout


@pytest.mark.parametrize('cmd', ['data', 'demo'])
def test_subcommand_help(cmd):
    r = run(cmd, '--help')
    assert r.returncode == 0 and 'example' in r.stdout and '--json' in r.stdout


def test_no_command_is_usage_error():
    r = run()
    assert r.returncode == 2 and 'usage: dp_synth' in r.stdout


def test_unknown_option_is_usage_error():
    r = run('data', 'digits', '--frobnicate')
    assert r.returncode == 2 and 'unrecognized arguments: --frobnicate' in r.stderr


def test_data_json():
    r = run('data', 'digits', '--split', 'test', '--json')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res['n'] == 359 and res['shape'] == [1, 8, 8] and sum(res['class_counts']) == 359


def test_data_error_exit_code_and_message():
    r = run('data', 'mnist', '--split', 'validation', '--json')
    assert r.returncode == 1
    assert json.loads(r.stdout)['error'] == 'SplitError'
    assert "dp_synth data: error: Unknown split 'validation' for mnist" in r.stderr


def test_demo_runs():
    r = run('demo', '--json')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res['status'] == 'demo not built yet'
    assert res['datasets']['mnist']['n'] == 60000 and res['datasets']['fashion_mnist']['n'] == 60000
