"""A newest training state whose network file is missing or broken: ``--auto_resume`` passes over it (one log line
naming it and why) for the newest complete state, in either network format; an explicit ``path.resume_state`` is a
pre-flight error naming the missing file, exit 2, nothing created."""
import logging
import os
from os import path as osp

import pytest

from sfmnet_plugin.launch.cli import main as launch_main

SUFFIX = {'pth': '.pth', 'safetensors': '.safetensors'}


def train(options_path, root, *extra):
    """The training launcher in this process, with a fresh BasicSR logger (as in a new process: its terminal handler
    writes to this test's stderr); its exit status."""
    from basicsr.utils import logger as basicsr_logger

    logger = logging.getLogger('basicsr')
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    basicsr_logger.initialized_logger.clear()
    try:
        launch_main('train', root_path=str(root), argv=['-opt', str(options_path), *extra])
    except SystemExit as error:
        return error.code
    return 0


def snapshot(folder):
    found = {}
    for here, _, files in os.walk(folder):
        for name in files:
            with open(osp.join(here, name), 'rb') as f:
                found[osp.relpath(osp.join(here, name), folder)] = f.read()
    return found


@pytest.fixture
def trained(tmp_path, write_paired_folders, toy_base_options, write_yaml):
    """``trained(network_format)``: a toy run of 4 iterations with networks and states at 2 and 4."""
    def trained(network_format):
        data_root = tmp_path / 'data'
        options = toy_base_options(data_root)
        write_paired_folders(str(data_root / 'train'), count=4, gt_size=32, scale=options['scale'], seed=0)
        write_paired_folders(str(data_root / 'val'), count=1, gt_size=32, scale=options['scale'], seed=1)
        options.update(name='resumed', num_gpu=0)
        options['logger']['use_tb_logger'] = False
        options['path']['network_format'] = network_format
        options['train']['total_iter'] = 4
        options['val']['val_freq'] = 100
        path = write_yaml(tmp_path / 'train.yml', options)
        root = tmp_path / 'runs'
        assert train(path, root) == 0
        experiment = root / 'experiments' / 'resumed'
        assert {f'net_g_{i}{SUFFIX[network_format]}' for i in (2, 4)} <= set(os.listdir(experiment / 'models'))
        return path, root, experiment

    return trained


@pytest.mark.parametrize('network_format, damage', [('pth', 'deleted'), ('safetensors', 'deleted'),
                                                     ('safetensors', 'truncated')])
def test_auto_resume_passes_over_a_state_without_its_network(trained, network_format, damage, capsys,
                                                             read_training_log):
    path, root, experiment = trained(network_format)
    network = experiment / 'models' / f'net_g_4{SUFFIX[network_format]}'
    if damage == 'deleted':
        network.unlink()
    else:
        network.write_bytes(network.read_bytes()[:100])
    capsys.readouterr()
    assert train(path, root, '--auto_resume', '--force_yml', 'train:total_iter=6') == 0
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    log = read_training_log(experiment)
    assert 'Resuming training from epoch' in log and 'iter: 2.' in log
    notices = [line for line in log.splitlines() if '--auto_resume skips' in line]
    assert len(notices) == 1, log
    assert str(experiment / 'training_states' / '4.state') in notices[0] and 'net_g_4' in notices[0]
    assert ('is missing' if damage == 'deleted' else 'does not load') in notices[0]
    assert sum('--auto_resume skips' in line for line in err.splitlines()) == 1  # on the terminal too
    assert f'net_g_6{SUFFIX[network_format]}' in os.listdir(experiment / 'models')


def test_an_explicit_state_without_its_network_is_refused_before_anything_runs(trained, capsys):
    path, root, experiment = trained('pth')
    (experiment / 'models' / 'net_g_4.pth').unlink()
    state = experiment / 'training_states' / '4.state'
    before = snapshot(root)
    capsys.readouterr()
    status = train(path, root, '--force_yml', f'path:resume_state={state}', 'train:total_iter=6')
    err = capsys.readouterr().err
    assert status == 2 and 'Traceback' not in err
    problems = [line for line in err.splitlines() if line.startswith('  - ')]
    assert len(problems) == 1, err
    assert str(experiment / 'models' / 'net_g_4.pth') in problems[0] and 'is missing' in problems[0]
    assert '--auto_resume' in problems[0] and 'path.resume_state' in problems[0]
    assert snapshot(root) == before  # nothing created, nothing changed
