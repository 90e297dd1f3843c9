"""A newcomer's first run: reproducible weights, a one-screen terminal, a correct ETA, one final validation and
helpful --help texts."""
import re
import subprocess
import sys

import pytest
import torch

from sfmnet_plugin.launch import cli as launcher_cli


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
