"""A fork server for the crash tests (tests/test_guarantee.py): imports dp_synth once, then forks one child per job.

Each line on stdin is a JSON job {cfg, out, secret, fault}; the child sets $DP_SYNTH_FAULT (`point:step:KILL|INT`, see
`dp_synth.files.fault_point`) and runs `finetune`; the parent prints {"signal": ..., "code": ...} for it. Forking from a
process that has imported torch but never computed with it is safe, and saves the 3 s import per job.
"""

import json
import os
import signal
import sys

import torch

torch.set_num_threads(1)
from dp_synth.finetune import FinetuneConfig, finetune  # noqa: E402


def job(spec):
    os.environ.pop('DP_SYNTH_FAULT', None)
    if spec.get('fault'):
        os.environ['DP_SYNTH_FAULT'] = spec['fault']
    finetune(FinetuneConfig(**spec['cfg']), spec['out'], progress=False, secret_seed=spec.get('secret'))


if __name__ == '__main__':
    # A job started with `&` (as `nohup bash .ci/run &`) inherits SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: restore it, so that the injected SIGINT means what Ctrl-C means in a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for line in sys.stdin:
        spec = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                job(spec)
            except KeyboardInterrupt:
                code = 130
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(
            json.dumps(
                dict(
                    signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                    code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                )
            ),
            flush=True,
        )
