"""``benchmarks/bench_startup.py``: a probe per console script, run as its entry point runs, reporting what loaded."""
import os
import sys

import pytest


@pytest.fixture
def bench_startup(repo_root):
    sys.path.insert(0, os.path.join(repo_root, 'benchmarks'))
    try:
        import bench_startup
    finally:
        sys.path.pop(0)
    return bench_startup


def test_every_console_script_has_a_help_probe_that_reports_torch_not_loaded(bench_startup, repo_root):
    with open(os.path.join(repo_root, 'setup.py'), encoding='utf-8') as f:
        listed = {line.split('=')[0].strip(" '") for line in f if line.strip().startswith("'sfmnet-")}
    assert set(bench_startup.SCRIPTS) == listed
    probes = bench_startup.probes(['sfmnet-infer'])
    assert list(probes)[-1] == 'sfmnet-infer --help'
    seconds, torch_loaded = bench_startup.run_once(probes['sfmnet-infer --help'])
    assert seconds > 0 and torch_loaded is False
