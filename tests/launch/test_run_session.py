"""A newcomer's first run: reproducible weights, a one-screen terminal, a correct ETA, one final validation,
helpful --help texts, and CPU thread settings that share a machine."""
import re
import subprocess
import sys
import time

import pytest
import torch

from sfmnet_plugin.launch import cli as launcher_cli
from sfmnet_plugin.utils import cpu_threads


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory, launcher_env, run_options, repo_root, write_run_faces, write_yaml):
    """The same tiny training (3 iterations, validation at the last one) in two processes, with 2 threads."""
    tmp = tmp_path_factory.mktemp('runs')
    write_run_faces(str(tmp), 6)
    opt = run_options(tmp, train__total_iter=3, val__val_freq=3, logger__save_checkpoint_freq=3)
    opt['train']['frequency_branch_pixel_opt'] = {'type': 'L1Loss', 'loss_weight': 1.0}
    opt['train']['frequency_opt'] = {'type': 'FrequencyLoss', 'loss_weight': 0.01}
    runs = []
    for index in range(2):
        root = tmp / f'root{index}'
        env = dict(launcher_env(root), OMP_NUM_THREADS='2')
        env.pop('OMP_WAIT_POLICY', None)
        env.pop('GOMP_SPINCOUNT', None)
        result = subprocess.run([sys.executable, 'sfmnet_plugin/train.py', '-opt',
                                 str(write_yaml(tmp / f'run{index}.yml', dict(opt, name='twice')))],
                                cwd=repo_root, env=env, capture_output=True, text=True, timeout=400)
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append((root / 'experiments' / 'twice', result.stderr))
    return runs


def test_two_processes_train_identical_weights(two_runs, read_training_log):
    weights = [torch.load(experiment / 'models' / 'net_g_latest.pth', weights_only=True)['params']
               for experiment, _ in two_runs]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    last = torch.load(two_runs[0][0] / 'models' / 'net_g_3.pth', weights_only=True)['params']
    assert all(torch.equal(last[key], weights[0][key]) for key in last)  # latest = after iteration 3
    logs = [read_training_log(experiment) for experiment, _ in two_runs]
    psnrs = [re.findall(r'# psnr: ([0-9.]+)', log) for log in logs]
    assert psnrs[0] == psnrs[1] and len(psnrs[0]) == 1


def test_terminal_shows_a_banner_and_the_log_file_keeps_everything(two_runs, read_training_log):
    experiment, terminal = two_runs[0]
    log = read_training_log(experiment)
    assert len(terminal.splitlines()) < 40
    for verbose in ('Version Information', 'network_g:[', 'SFMNet(', 'Training statistics', 'is created.'):
        assert verbose not in terminal and verbose in log
    assert 'SFMNet training: twice (SFMNetModel) on cpu, 2 CPU threads' in terminal
    assert re.search(r'net_g +SFMNet, 98,672 parameters', terminal)
    assert re.search(r'train +faces_train: 6 images, batch 2 -> 3 iterations per epoch', terminal)
    assert re.search(r'val +faces_val: 2 images', terminal)
    assert 'schedule  3 iterations; checkpoints every 3, validation every 3, progress every 1' in terminal
    assert 'options and network in train_twice_' in terminal


def test_eta_is_never_negative_and_the_final_weights_are_validated_once(two_runs, read_training_log):
    experiment, terminal = two_runs[0]
    etas = re.findall(r'\[eta: ([^,]+),', terminal)
    assert len(etas) == 3 and etas[-1] == '0:00:00' and not any('day' in eta for eta in etas)
    log = read_training_log(experiment)
    assert log.count('Validation faces_val') == 1
    assert 'faces_val: the final weights were validated at iteration 3 already.' in log
    assert 'Best: ' in log and '@ 3 iter' in log  # never logged as iteration total_iter + 1


@pytest.mark.parametrize('stage', ['train', 'test'])
def test_launcher_help_describes_the_command(stage, capsys):
    with pytest.raises(SystemExit) as exit_info:
        launcher_cli.main(stage, argv=['--help'])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert 'option file (-opt) is a BasicSR YAML file' in text and 'examples:' in text
    assert f'sfmnet-{stage} -opt options/{stage}_SFMNet_x8.yml' in text
    assert ('--auto_resume' in text) is (stage == 'train')


def test_test_launcher_rejects_auto_resume(capsys):
    with pytest.raises(SystemExit) as exit_info:
        launcher_cli.main('test', argv=['-opt', 'options/test_SFMNet_x8.yml', '--auto_resume'])
    assert exit_info.value.code == 2
    assert 'unrecognized arguments: --auto_resume' in capsys.readouterr().err


def test_prepare_celeba_help_shows_its_real_output_default(repo_root):
    result = subprocess.run([sys.executable, 'datasets_prep/prepare_celeba.py', '--help'], cwd=repo_root,
                            capture_output=True, text=True, timeout=120)
    text = ' '.join(result.stdout.split())
    assert 'default: datasets/CelebA, or datasets/CelebA_aligned with --protocol aligned' in text
    assert 'default: None' not in text


def test_wait_policy_default_is_set_only_before_torch_and_never_over_a_user_value():
    environ = {}
    assert cpu_threads.set_openmp_wait_policy_default(environ, modules={}) is True
    assert environ == {'GOMP_SPINCOUNT': '10000'}
    for user_setting in ({'OMP_WAIT_POLICY': 'PASSIVE'}, {'GOMP_SPINCOUNT': '0'}):
        environ = dict(user_setting)
        assert cpu_threads.set_openmp_wait_policy_default(environ, modules={}) is False
        assert environ == user_setting
    environ = {}
    assert cpu_threads.set_openmp_wait_policy_default(environ, modules={'torch': torch}) is False
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


def test_entry_points_never_override_a_user_setting():
    from sfmnet_plugin.utils.cpu_tuning import apply_process_settings

    for user_setting in ({'OMP_WAIT_POLICY': 'PASSIVE'}, {'GOMP_SPINCOUNT': '0'}):
        environ = dict(user_setting, SFMNET_RETURN_FREED_MEMORY='1')
        apply_process_settings(restart=True, environ=environ, modules={'torch': torch})  # no restart: returns
        assert environ == dict(user_setting, SFMNET_RETURN_FREED_MEMORY='1')


def test_entry_points_restart_once_when_torch_was_loaded_first(torch_load_spin_counts):
    """``sfmnet-train`` and ``python -m sfmnet_plugin.train`` import torch (through the package) before their main
    runs: once a run is about to start, the launcher re-executes its command line with the variable set."""
    statement = ('import sfmnet_plugin; from sfmnet_plugin.utils.cpu_tuning import apply_process_settings; '
                 'apply_process_settings(restart=True); print("run")')
    loads, lines, result = torch_load_spin_counts(statement)
    assert result.returncode == 0, result.stderr[-2000:]
    assert loads == ['None', '10000'] and lines.count('run') == 1


def test_busy_machine_warning():
    assert cpu_threads.busy_machine_warning(2, cpus=2, others=0) is None
    assert cpu_threads.busy_machine_warning(1, cpus=2, others=1) is None
    warning = cpu_threads.busy_machine_warning(2, cpus=2, others=1)
    assert warning.startswith('the machine is busy (1 other running process on 2 CPUs, 2 threads here)')


def test_other_runnable_processes_does_not_count_this_one():
    """This process is running while it reads /proc/loadavg; a busy child process is one more."""
    alone = cpu_threads.other_runnable_processes()
    busy = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    try:
        time.sleep(0.5)
        with_busy_child = cpu_threads.other_runnable_processes(samples=9)
    finally:
        busy.kill()
        busy.wait()
    assert alone is not None and with_busy_child >= 1
