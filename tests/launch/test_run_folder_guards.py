"""Launcher runs that must not lose a user's files: path-like names, two live runs with one name, bad
option values from the file or --force_yml, zero iterations. Each is refused with one line and a non-zero exit
status; the user's folders are byte-identical afterwards."""
import os
import signal
import subprocess
import sys
from os import path as osp

import pytest

from sfmnet_plugin.launch.cli import main as launch_main


def snapshot(folder):
    """Every file under ``folder`` with its bytes (and every folder), to compare before and after."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            found[osp.relpath(osp.join(root, name), folder) + '/'] = None
        for name in files:
            with open(osp.join(root, name), 'rb') as f:
                found[osp.relpath(osp.join(root, name), folder)] = f.read()
    return found


@pytest.fixture
def toy(tmp_path, toy_base_options, write_paired_folders):
    data_root = tmp_path / 'data'
    base = toy_base_options(data_root)
    write_paired_folders(str(data_root / 'train'), count=8, gt_size=32, scale=base['scale'], seed=0)
    write_paired_folders(str(data_root / 'val'), count=2, gt_size=32, scale=base['scale'], seed=1)
    base['logger']['use_tb_logger'] = False
    base['num_gpu'] = 0
    victim = tmp_path / 'victim_dir'
    victim.mkdir()
    (victim / 'thesis.txt').write_text('years of work')
    return {'tmp': tmp_path, 'root': tmp_path / 'runs', 'options': base, 'victim': victim}


@pytest.fixture(scope='session')
def launch(launcher_env, repo_root, write_yaml):
    def launch(toy, stage, options, *extra, name='run.yml'):
        path = write_yaml(toy['tmp'] / name, options)
        return subprocess.run([sys.executable, osp.join(repo_root, f'sfmnet_plugin/{stage}.py'), '-opt', str(path),
                               *extra], cwd=repo_root, env=launcher_env(toy['root']), capture_output=True, text=True,
                              timeout=300)

    return launch


def assert_refused(result, *needles):
    assert result.returncode not in (0, None) and result.returncode > 0, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if 'error' in line.lower()]
    assert errors and all(any(needle in line for line in errors) for needle in needles), result.stderr[-3000:]


@pytest.mark.parametrize('how', ['option file', '--force_yml'])
def test_an_experiment_name_with_a_path_is_refused(toy, how, launch):
    before = snapshot(toy['tmp'] / 'victim_dir')
    options = dict(toy['options'], name='../../victim_dir' if how == 'option file' else 'toy')
    extra = ('--force_yml', 'name=../../victim_dir') if how == '--force_yml' else ()
    result = launch(toy, 'train', options, *extra)
    assert_refused(result, "name: '../../victim_dir' is not a plain name")
    assert snapshot(toy['victim']) == before
    assert not [p for p in os.listdir(toy['tmp']) if '_archived_' in p] and not toy['root'].exists()


def test_a_test_dataset_name_with_a_path_is_refused(toy, tmp_path, launch):
    import torch
    from basicsr.archs import build_network

    checkpoint = tmp_path / 'net.pth'
    torch.save({'params': build_network(dict(toy['options']['network_g'])).state_dict()}, checkpoint)
    options = dict(toy['options'], name='toy_test', model_type='SRModel')
    options['datasets'] = {'test_1': dict(options['datasets']['val'], name='../../../../x')}
    options['path'] = {'pretrain_network_g': str(checkpoint), 'strict_load_g': True}
    options['val'] = dict(options['val'], save_img=True)
    options.pop('train')
    before = snapshot(tmp_path)
    result = launch(toy, 'test', options)
    assert_refused(result, "datasets.test_1.name: '../../../../x' is not a plain name")
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k != 'run.yml'} == before


@pytest.mark.parametrize('entry, needle', [
    ('train:optim_g:lr=1e9', "train.optim_g.lr: '1e9' is text, not a number"),
    ('datasets:train:batch_size_per_gpu=0', 'datasets.train.batch_size_per_gpu: 0 must be >= 1'),
    ('datasets:train:batch_size_per_gpu=-2', 'datasets.train.batch_size_per_gpu: -2 must be >= 1'),
    ('logger:print_freq=0', 'logger.print_freq: 0 must be >= 1'),
    ('datasets:train:dataset_enlarge_ratio=0', 'datasets.train.dataset_enlarge_ratio: 0 must be >= 1'),
    ('num_gpu=64', 'num_gpu: 64 but this machine has'),
    ('train:total_iter=0', 'the run would train zero iterations'),
    ('train:total_iter=-3', 'the run would train zero iterations'),
])
def test_bad_values_through_force_yml_are_one_line_and_leave_nothing(toy, entry, needle, capsys, write_yaml):
    # In this process, through the function the launcher scripts call: the refusal happens before anything runs, and
    # the tests above check that the scripts turn it into the exit status and stderr of a process.
    path = write_yaml(toy['tmp'] / 'run.yml', dict(toy['options'], name='toy'))
    with pytest.raises(SystemExit) as exit_info:
        launch_main('train', root_path=str(toy['root']), argv=['-opt', str(path), '--force_yml', entry])
    stderr = capsys.readouterr().err
    assert_refused(subprocess.CompletedProcess([], exit_info.value.code, '', stderr), needle)
    assert not toy['root'].exists()


def test_a_second_run_with_the_same_name_is_refused_and_the_first_keeps_its_folder(toy, launcher_env, repo_root,
                                                                                   wait_for, write_yaml, launch):
    options = dict(toy['options'], name='shared')
    options['train'] = dict(options['train'], total_iter=100000)
    options['val'] = dict(options['val'], val_freq=100000)
    path = write_yaml(toy['tmp'] / 'long.yml', options)
    experiment = toy['root'] / 'experiments' / 'shared'
    first = subprocess.Popen([sys.executable, osp.join(repo_root, 'sfmnet_plugin/train.py'), '-opt', str(path)],
                             cwd=repo_root, env=launcher_env(toy['root']), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: osp.isfile(experiment / 'training_states' / '2.state'), 180, 'the first run\'s checkpoint')
        second = launch(toy, 'train', options, name='second.yml')
        assert_refused(second, f'is in use by a running process (PID {first.pid})')
        assert not [p for p in os.listdir(experiment.parent) if '_archived_' in p]
        assert first.poll() is None  # the first run goes on, in its own folder
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The dead run's lock is gone with it: the same name resumes at once.
    options['train']['total_iter'] = 6
    resumed = launch(toy, 'train', options, '--auto_resume', name='third.yml')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'net_g_6.pth' in os.listdir(experiment / 'models')
