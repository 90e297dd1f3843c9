"""End-to-end runs of the training launchers: outputs, option inheritance, resume after a kill, CPU DDP."""
import os
import signal
import subprocess
import sys
from os import path as osp

import pytest
import torch
import yaml

SCALE = 2  # the scale of toy_base_options (conftest.py)


@pytest.fixture
def toy_run(tmp_path, write_paired_folders, write_yaml, toy_base_options):
    """Generated data, a base option file and a child that inherits from it through ``_base_``."""
    data_root = tmp_path / 'data'
    write_paired_folders(str(data_root / 'train'), count=8, gt_size=32, scale=SCALE, seed=0)
    write_paired_folders(str(data_root / 'val'), count=2, gt_size=32, scale=SCALE, seed=1)
    options_dir = tmp_path / 'options'
    options_dir.mkdir()
    write_yaml(options_dir / 'toy_base.yml', toy_base_options(data_root))
    child = write_yaml(options_dir / 'train_toy.yml', {'_base_': './toy_base.yml', 'name': 'toy_child'})
    return {'root': tmp_path / 'runs', 'options': str(child), 'experiment': tmp_path / 'runs' / 'experiments'}


@pytest.fixture(scope='session')
def assert_complete_training_outputs(read_training_log):
    def assert_complete_training_outputs(experiment_dir, root, name, iters=(2, 4)):
        """Checkpoints, states, log with metrics, TensorBoard events and the merged option file."""
        models = set(os.listdir(experiment_dir / 'models'))
        assert {f'net_g_{i}.pth' for i in iters} | {'net_g_latest.pth'} <= models
        assert {f'{i}.state' for i in iters} <= set(os.listdir(experiment_dir / 'training_states'))
        log = read_training_log(experiment_dir)
        assert '# psnr:' in log and 'End of training' in log
        events = os.listdir(root / 'tb_logger' / name)
        assert any(e.startswith('events.out.tfevents') for e in events)
        saved = yaml.safe_load(open(experiment_dir / 'train_toy.yml', encoding='utf-8'))
        # The saved options are the ones the run used: the child's own keys, everything from the base and the
        # --force_yml edits (applied by the launcher to the merged file, never by BasicSR's exec).
        assert saved['name'] == name and saved['network_g']['type'] == 'SRVGGNetCompact' and '_base_' not in saved

    return assert_complete_training_outputs


def test_script_launcher_trains_validates_and_saves(toy_run, run_launcher, assert_complete_training_outputs):
    run_launcher(['sfmnet_plugin/train.py', '-opt', toy_run['options']], toy_run['root'])
    assert_complete_training_outputs(toy_run['experiment'] / 'toy_child', toy_run['root'], 'toy_child')


def test_console_script_launcher(toy_run, launcher_env, repo_root, assert_complete_training_outputs):
    console_script = osp.join(osp.dirname(sys.executable), 'sfmnet-train')
    result = subprocess.run([console_script, '-opt', toy_run['options'], '--force_yml', 'name=toy_console'],
                            cwd=repo_root, env=launcher_env(toy_run['root']), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_complete_training_outputs(toy_run['experiment'] / 'toy_console', toy_run['root'], 'toy_console')


def test_outputs_go_under_the_checkout_by_default(monkeypatch, repo_root):
    from sfmnet_plugin.config.option_files import ROOT_PATH_VARIABLE, default_root_path

    monkeypatch.delenv(ROOT_PATH_VARIABLE, raising=False)
    assert default_root_path() == repo_root
    monkeypatch.setenv(ROOT_PATH_VARIABLE, '/tmp/somewhere')
    assert default_root_path() == '/tmp/somewhere'


def test_literal_basicsr_command_and_force_yml(toy_run, run_launcher, assert_complete_training_outputs):
    run_launcher(['basicsr/train.py', '-opt', toy_run['options'], '--force_yml', 'name=toy_literal'],
                 toy_run['root'])
    assert_complete_training_outputs(toy_run['experiment'] / 'toy_literal', toy_run['root'], 'toy_literal')


def test_auto_resume_after_kill_continues_from_last_state(toy_run, tmp_path, launcher_env, read_training_log,
                                                          repo_root, run_launcher, wait_for):
    args = [sys.executable, osp.join(repo_root, 'sfmnet_plugin/train.py'), '-opt', toy_run['options'],
            '--force_yml', 'train:total_iter=100000', 'val:val_freq=100000']
    experiment = toy_run['experiment'] / 'toy_child'
    # Run from another directory: upstream BasicSR looked for states relative to the CWD.
    proc = subprocess.Popen(args, cwd=tmp_path, env=launcher_env(toy_run['root']), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: osp.isfile(experiment / 'training_states' / '4.state'), 180, 'a training state')
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Complete states only: the kill can leave '<iter>.state.partial' (atomic saving), which resume ignores.
    states = sorted(int(name[:-len('.state')]) for name in os.listdir(experiment / 'training_states')
                    if name.endswith('.state'))
    last = states[-1]
    resumed_total = last + 4
    run_launcher([osp.join(repo_root, 'sfmnet_plugin/train.py'), '-opt', toy_run['options'], '--auto_resume',
                  '--force_yml', f'train:total_iter={resumed_total}', 'val:val_freq=2'], toy_run['root'], cwd=tmp_path)
    log = read_training_log(experiment)
    assert 'Resuming training from epoch' in log and f'iter: {last}.' in log
    assert f'net_g_{resumed_total}.pth' in os.listdir(experiment / 'models')
    assert not [d for d in os.listdir(toy_run['experiment']) if '_archived_' in d], 'the run was archived'


@pytest.mark.slow
def test_torchrun_two_cpu_processes(toy_run, free_port, read_training_log, run_launcher, toy_base_options):
    # the documented form (docs/training.md): each rank runs the module, and restarts once for the OpenMP setting
    args = ['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
            '-m', 'sfmnet_plugin.train', '-opt', toy_run['options'], '--launcher', 'pytorch',
            '--force_yml', 'name=toy_ddp']
    run_launcher(args, toy_run['root'])
    experiment = toy_run['experiment'] / 'toy_ddp'
    log = read_training_log(experiment)
    assert 'world_size: 2' in log and 'DistributedDataParallel' in log
    assert 'backend: gloo' in log and 'backend: nccl' not in log  # the logged options say what runs on CPU
    from basicsr.archs import build_network

    net = build_network(toy_base_options('unused')['network_g'])
    checkpoint = torch.load(experiment / 'models' / 'net_g_latest.pth', map_location='cpu')
    net.load_state_dict(checkpoint['params'], strict=True)


@pytest.fixture(scope='session')
def launch_two_nodes(free_port, launcher_env, repo_root):
    def launch_two_nodes(toy_run, name):
        """Two torchrun agents ("nodes", one process each) meeting through a c10d rendezvous on localhost, as on a
        cluster (one command per node; node 0 hosts the rendezvous store)."""
        port = free_port()
        processes = []
        for node in range(2):
            command = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=2', '--nproc_per_node=1',
                       '--rdzv_backend=c10d', f'--rdzv_endpoint=127.0.0.1:{port}', '--rdzv_id=sfmnet_two_nodes',
                       f'--rdzv_conf=is_host={int(node == 0)}', '--max_restarts=0',
                       'sfmnet_plugin/train.py', '-opt', toy_run['options'], '--launcher', 'pytorch',
                       '--force_yml', f'name={name}']
            processes.append(subprocess.Popen(command, cwd=repo_root, env=launcher_env(toy_run['root']),
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = [process.communicate(timeout=300)[0] for process in processes]
        for process, output in zip(processes, outputs):
            assert process.returncode == 0, output[-4000:]

    return launch_two_nodes


@pytest.mark.slow
def test_torchrun_two_nodes_equals_one_node_with_two_processes(toy_run, free_port, read_training_log, run_launcher,
                                                               launch_two_nodes):
    run_launcher(['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
                  'sfmnet_plugin/train.py', '-opt', toy_run['options'], '--launcher', 'pytorch',
                  '--force_yml', 'name=toy_one_node'], toy_run['root'])
    launch_two_nodes(toy_run, 'toy_two_nodes')
    log = read_training_log(toy_run['experiment'] / 'toy_two_nodes')
    assert 'world_size: 2' in log and 'DistributedDataParallel' in log
    one_node, two_nodes = (torch.load(toy_run['experiment'] / name / 'models' / 'net_g_latest.pth',
                                      map_location='cpu', weights_only=True)['params']
                           for name in ('toy_one_node', 'toy_two_nodes'))
    assert one_node.keys() == two_nodes.keys()
    for key in one_node:
        torch.testing.assert_close(two_nodes[key], one_node[key], rtol=0, atol=0, msg=key)


STOP_AT_STATE = '''
import os, signal, sys
sys.path.insert(0, {repo!r})
from sfmnet_plugin.compat.model_methods import PluginModelMethods  # what every model of a launcher run saves with
from sfmnet_plugin.train import main

upstream = PluginModelMethods.save_training_state

def save_training_state(self, epoch, current_iter):
    upstream(self, epoch, current_iter)
    if current_iter == {stop_at}:
        os.kill(os.getpid(), signal.SIGTERM)  # as a cluster's pre-emption would, right after the checkpoint

PluginModelMethods.save_training_state = save_training_state
main()
'''


@pytest.fixture(scope='session')
def losses_and_metrics(read_training_log):
    def losses_and_metrics(experiment_dir, after_iter):
        """The logged losses (per iteration) and validation results of the run's last log, after ``after_iter``."""
        lines, iteration = [], 0
        for line in read_training_log(experiment_dir).splitlines():
            if 'iter:' in line and 'l_pix:' in line:
                iteration = int(line.split('iter:')[1].split(',')[0])
                line = line.split('] ')[0].split(', iter:')[1] + ' ' + line.split('l_pix:')[1]  # no times, no epoch
            elif '# psnr:' not in line:
                continue
            if iteration > after_iter:
                lines.append(line.strip())
        return lines

    return losses_and_metrics


@pytest.mark.slow
def test_sigterm_then_auto_resume_equals_never_stopped(toy_run, tmp_path, launcher_env, read_training_log, repo_root,
                                                       run_launcher, write_paired_folders, write_yaml,
                                                       losses_and_metrics, toy_base_options):
    """8 iterations (3 per epoch, random flips and rotations) straight vs SIGTERM after the checkpoint at 4 (mid
    epoch) and --auto_resume to 8: the same weights, optimizer state and validation numbers, bit for bit."""
    write_paired_folders(str(tmp_path / 'data' / 'train6'), count=6, gt_size=32, scale=SCALE, seed=2)
    base = toy_base_options(tmp_path / 'data')
    base['datasets']['train'].update(dataroot_gt=f'{tmp_path}/data/train6/gt', dataroot_lq=f'{tmp_path}/data/train6/lq',
                                     use_rot=True)
    base['train']['total_iter'] = 8
    base['logger']['use_tb_logger'] = False
    options = write_yaml(tmp_path / 'options' / 'exact.yml', base)
    run_launcher(['sfmnet_plugin/train.py', '-opt', str(options), '--force_yml', 'name=straight'], toy_run['root'])

    driver = tmp_path / 'stop_at_4.py'
    driver.write_text(STOP_AT_STATE.format(repo=repo_root, stop_at=4))
    stopped = subprocess.run([sys.executable, str(driver), '-opt', str(options), '--force_yml', 'name=stopped'],
                             cwd=repo_root, env=launcher_env(toy_run['root']), capture_output=True, text=True,
                             timeout=300)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    experiment = toy_run['experiment'] / 'stopped'
    assert sorted(os.listdir(experiment / 'training_states')) == ['2.state', '4.state']
    assert 'SIGTERM: stopped after iteration 4; continue with --auto_resume' in read_training_log(experiment)
    run_launcher(['sfmnet_plugin/train.py', '-opt', str(options), '--force_yml', 'name=stopped', '--auto_resume'],
                 toy_run['root'])

    straight = toy_run['experiment'] / 'straight'
    for name in ('net_g_6.pth', 'net_g_8.pth', 'net_g_latest.pth'):
        expected, resumed = (torch.load(folder / 'models' / name, weights_only=True)['params']
                             for folder in (straight, experiment))
        for key in expected:
            assert torch.equal(resumed[key], expected[key]), f'{name}: {key}'
    expected, resumed = (torch.load(folder / 'training_states' / '8.state', weights_only=True)
                         for folder in (straight, experiment))
    for key, value in expected['optimizers'][0]['state'][0].items():
        assert torch.equal(torch.as_tensor(resumed['optimizers'][0]['state'][0][key]), torch.as_tensor(value)), key
    resumed_log = losses_and_metrics(experiment, after_iter=4)
    assert len(resumed_log) == 6 and resumed_log == losses_and_metrics(straight, after_iter=4)
