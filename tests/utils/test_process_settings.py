"""The process settings of the plugin's entry points: the OpenMP wait default and the allocator default, each on
unless the user chose otherwise, and never set by ``import sfmnet_plugin`` alone; the busy-machine note."""
import os
import subprocess
import sys
import time

import pytest
import torch

from sfmnet_plugin.utils import process_settings
from sfmnet_plugin.utils.process_settings import OPT_OUT_VARIABLE, keep_freed_memory_default


@pytest.mark.parametrize('environ', [
    {'MALLOC_MMAP_THRESHOLD_': '131072'},
    {'MALLOC_TRIM_THRESHOLD_': '0'},
    {'GLIBC_TUNABLES': 'glibc.malloc.mmap_threshold=131072'},
    {OPT_OUT_VARIABLE: '1'},
])
def test_a_user_setting_or_the_opt_out_wins(environ):
    assert keep_freed_memory_default(environ) is False


def test_other_platforms_are_left_alone():
    assert keep_freed_memory_default({}, platform='darwin') is False


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc only')
def test_entry_points_keep_freed_memory_and_import_alone_does_not():
    # A 64 MiB block freed and requested again: with glibc's default it is unmapped and mapped anew (another
    # address range each time is not guaranteed, so count the process's minor page faults instead).
    script = '''
import resource, sys
import torch
import sfmnet_plugin  # noqa: F401
if sys.argv[1] == "entry":
    from sfmnet_plugin.utils.process_settings import apply_process_settings
    apply_process_settings()
for _ in range(3):
    torch.ones(16, 1024, 1024)  # 64 MiB, freed at once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(16, 1024, 1024)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''
    faults = {}
    for mode in ('import', 'entry'):
        result = subprocess.run([sys.executable, '-c', script, mode], capture_output=True, text=True, check=True,
                                env={'PATH': '/usr/bin:/bin', 'OMP_NUM_THREADS': '1',
                                     'PYTHONPATH': os.environ.get('PYTHONPATH', '')})
        faults[mode] = int(result.stdout.split()[-1])
    assert faults['import'] > 10 * 16 * 1024 * 1024 // 4096 // 2  # glibc's default: every block faulted in again
    assert faults['entry'] < faults['import'] / 10  # reused: already mapped


def test_wait_policy_default_is_set_only_before_torch_and_never_over_a_user_value():
    environ = {}
    assert process_settings.set_openmp_wait_policy_default(environ, modules={}) is True
    assert environ == {'GOMP_SPINCOUNT': '10000'}
    for user_setting in ({'OMP_WAIT_POLICY': 'PASSIVE'}, {'GOMP_SPINCOUNT': '0'}):
        environ = dict(user_setting)
        assert process_settings.set_openmp_wait_policy_default(environ, modules={}) is False
        assert environ == user_setting
    environ = {}
    assert process_settings.set_openmp_wait_policy_default(environ, modules={'torch': torch}) is False
    assert environ == {}


# Prints GOMP_SPINCOUNT at the moment torch is first imported (when torch loads libgomp, which reads it once),
# then runs the statement given as argv[1] with the rest of argv as the command line.
TORCH_LOAD_PROBE = '''
import os, runpy, sys

class TorchLoadProbe:
    def find_spec(self, name, path=None, target=None):
        if name == 'torch':
            print('torch loads with GOMP_SPINCOUNT', os.environ.get('GOMP_SPINCOUNT'), flush=True)
            sys.meta_path.remove(self)

sys.meta_path.insert(0, TorchLoadProbe())
statement, sys.argv = sys.argv[1], sys.argv[2:]
exec(statement)
'''


@pytest.fixture(scope='session')
def torch_load_spin_counts(launcher_env, repo_root):
    def torch_load_spin_counts(statement, *argv):
        """What GOMP_SPINCOUNT was each time torch loaded, running ``statement`` as a program without a wait setting."""
        env = dict(launcher_env(repo_root))
        env.pop('OMP_WAIT_POLICY', None)
        env.pop('GOMP_SPINCOUNT', None)
        result = subprocess.run([sys.executable, '-c', TORCH_LOAD_PROBE, statement, *argv], cwd=repo_root, env=env,
                                capture_output=True, text=True, timeout=240)
        lines = result.stdout.splitlines()
        return [line.split()[-1] for line in lines if line.startswith('torch loads')], lines, result

    return torch_load_spin_counts


def test_import_alone_leaves_the_spin_count_unset(torch_load_spin_counts):
    statement = 'import sfmnet_plugin, os; print("after", os.environ.get("GOMP_SPINCOUNT"))'
    loads, lines, _ = torch_load_spin_counts(statement)
    assert loads == ['None'] and lines[-1] == 'after None'


@pytest.mark.parametrize('script', ['sfmnet_plugin/train.py', 'sfmnet_plugin/test.py', 'basicsr/train.py',
                                    'basicsr/test.py'])
def test_script_launchers_set_the_spin_count_before_torch_loads(script, torch_load_spin_counts):
    loads, _, result = torch_load_spin_counts('runpy.run_path(sys.argv[0], run_name="__main__")', script, '--help')
    assert result.returncode == 0 and 'examples:' in result.stdout
    assert loads == ['10000']


@pytest.mark.parametrize('module, argv, status', [
    ('sfmnet_cli.train', ['-opt', 'missing.yml'], 2),  # the launcher refuses the missing option file
    ('sfmnet_cli.infer', ['missing.png', '--output', 'out', '--checkpoint', 'missing.pth'], 1),
])
def test_console_scripts_set_the_spin_count_before_torch_loads(module, argv, status, torch_load_spin_counts):
    """The console scripts' command lines (sfmnet_cli) apply the settings before the library imports torch: the
    OpenMP default takes effect, and sfmnet-train needs no restart for it (torch loads once)."""
    statement = f'import sys; from {module} import main; sys.exit(main())'
    loads, _, result = torch_load_spin_counts(statement, module, *argv)
    assert result.returncode == status, result.stderr[-2000:]
    assert loads == ['10000']


def test_entry_points_never_override_a_user_setting():
    for user_setting in ({'OMP_WAIT_POLICY': 'PASSIVE'}, {'GOMP_SPINCOUNT': '0'}):
        environ = dict(user_setting, SFMNET_RETURN_FREED_MEMORY='1')
        # the user's setting: no restart, the call returns
        process_settings.apply_process_settings(restart=True, environ=environ, modules={'torch': torch})
        assert environ == dict(user_setting, SFMNET_RETURN_FREED_MEMORY='1')


def test_entry_points_restart_once_when_torch_was_loaded_first(torch_load_spin_counts):
    """``sfmnet-train`` and ``python -m sfmnet_plugin.train`` import torch (through the package) before their main
    runs: once a run is about to start, the launcher re-executes its command line with the variable set."""
    statement = ('import sfmnet_plugin; from sfmnet_plugin.utils.process_settings import apply_process_settings; '
                 'apply_process_settings(restart=True); print("run")')
    loads, lines, result = torch_load_spin_counts(statement)
    assert result.returncode == 0, result.stderr[-2000:]
    assert loads == ['None', '10000'] and lines.count('run') == 1


def test_busy_machine_warning():
    assert process_settings.busy_machine_warning(2, cpus=2, others=0) is None
    assert process_settings.busy_machine_warning(1, cpus=2, others=1) is None
    warning = process_settings.busy_machine_warning(2, cpus=2, others=1)
    assert warning.startswith('the machine is busy (1 other running process on 2 CPUs, 2 threads here)')


def test_other_runnable_processes_does_not_count_this_one():
    """This process is running while it reads /proc/loadavg; a busy child process is one more."""
    alone = process_settings.other_runnable_processes()
    busy = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    try:
        time.sleep(0.5)
        with_busy_child = process_settings.other_runnable_processes(samples=9)
    finally:
        busy.kill()
        busy.wait()
    assert alone is not None and with_busy_child >= 1
