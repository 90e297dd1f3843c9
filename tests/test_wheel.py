"""The package works from a wheel: built, installed without the repository on the path, and run from an empty folder
(every console script's ``--help``, a tiny training through ``python -m sfmnet_plugin.train`` that saves a
safetensors network ``sfmnet-infer`` then runs without an option file, a tiny ``sfmnet-demo``, and another BasicSR
project whose own ``train.py`` calls the plugin's ``train_pipeline``)."""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

NOT_SOURCES = ('.git', '.venv', 'build', 'dist', '*.egg-info', '__pycache__', '.pytest_cache', '.ruff_cache',
               'experiments', 'results', 'tb_logger', 'datasets', 'demo_output', 'tmp')


@pytest.fixture(scope='module')
def installed(tmp_path_factory, repo_root):
    """``(target, empty, run)``: the wheel installed into ``target``, an empty folder and a runner of commands in it
    with only ``target`` on the path."""
    root = tmp_path_factory.mktemp('wheel')
    source, dist, target = root / 'source', root / 'dist', root / 'target'
    shutil.copytree(repo_root, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))  # the checkout stays untouched
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '--no-input']
    subprocess.run([*pip, 'wheel', '--no-deps', '--no-build-isolation', '-w', str(dist), str(source)], check=True,
                   capture_output=True, timeout=600)
    wheels = list(dist.glob('sfmnet_plugin-*.whl'))
    assert len(wheels) == 1
    subprocess.run([*pip, 'install', '--no-deps', '--target', str(target), str(wheels[0])], check=True,
                   capture_output=True, timeout=600)
    empty = root / 'empty'
    empty.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    for name in ('SFMNET_ROOT_PATH', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT'):  # a user's environment, without settings
        env.pop(name, None)  # (outputs go to the current folder, as for a user of the wheel)

    def run(command, timeout=300, cwd=empty, expect=0):
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == expect, f'{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
        return result

    return target, empty, run


def test_the_wheel_holds_the_demo_options_and_imports_from_its_install(installed):
    target, _, run = installed
    from sfmnet_plugin.demo.end_to_end import DEMO_NETWORKS

    assert sorted(os.listdir(target / 'sfmnet_plugin' / 'demo' / 'options')) == sorted(  # every demo network's
        network.option_file for network in DEMO_NETWORKS)
    location = run([sys.executable, '-c', 'import sfmnet_plugin; print(sfmnet_plugin.__file__)']).stdout.strip()
    assert location.startswith(str(target))
    usage = run([str(target / 'bin' / 'sfmnet-infer'), '--help']).stdout  # the console script pip installed
    assert usage.startswith('usage: sfmnet-infer')


def test_every_console_script_of_the_wheel_answers_help_from_its_command_line(installed, repo_root):
    """The wheel holds the command lines (sfmnet_cli) and pip's scripts run them: ``--help`` of every console script
    of setup.py, without the library imported."""
    target, _, run = installed
    scripts = re.findall(r"'([\w-]+) = (sfmnet_cli\.\w+):main'", open(f'{repo_root}/setup.py', encoding='utf-8').read())
    assert len(scripts) >= 14
    for name, module in scripts:
        assert (target / 'sfmnet_cli' / f"{module.split('.')[1]}.py").is_file()
        assert run([str(target / 'bin' / name), '--help']).stdout.startswith('usage: ')
    # the same from Python, reporting what the command line imported (the installed copy, nothing heavy)
    statement = ('import sys, sfmnet_cli.infer as cli\ntry:\n    cli.main(["--help"])\nexcept SystemExit:\n    pass\n'
                 'heavy = sorted({"torch", "basicsr", "sfmnet_plugin"} & set(sys.modules))\n'
                 'print(cli.__file__, heavy, file=sys.stderr)')
    location, imported = run([sys.executable, '-c', statement]).stderr.split(' ', 1)
    assert location.startswith(str(target)) and imported.strip() == '[]'


def test_tiny_training_from_an_empty_folder_then_inference_without_an_option_file(installed, tmp_path,
                                                                                  write_real_face_pairs, write_yaml):
    target, empty, run = installed
    data = write_real_face_pairs(str(tmp_path / 'data'), count=2, gt_size=32, scale=4, seed=0)
    options = write_yaml(tmp_path / 'tiny.yml', {
        'name': 'wheel_tiny', 'model_type': 'SFMNetModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': {'name': 'tiny', 'type': 'PairedFaceDataset', 'dataroot_gt': f'{data}/gt',
                               'io_backend': {'type': 'disk'}, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2,
                               'dataset_enlarge_ratio': 1, 'prefetch_mode': None}},
        'network_g': {'type': 'SFMNet', 'upscale': 4, 'num_feat': 4, 'num_heads': 1, 'num_levels': 2,
                      'keep_unused_attention': False},
        'path': {'network_format': 'safetensors'},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'scheduler': {'type': 'MultiStepLR', 'milestones': [9]},
                  'total_iter': 2, 'pixel_opt': {'type': 'L1Loss'}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    })
    run([sys.executable, '-m', 'sfmnet_plugin.train', '-opt', str(options)])
    models = empty / 'experiments' / 'wheel_tiny' / 'models'
    assert sorted(os.listdir(models)) == ['net_g_2.safetensors', 'net_g_latest.safetensors']
    run([str(target / 'bin' / 'sfmnet-infer'), f'{data}/lq', '--output', 'sr', '--checkpoint',
         str(models / 'net_g_latest.safetensors')])
    assert sorted(os.listdir(empty / 'sr')) == ['face000.png', 'face001.png']


def test_tiny_demo_from_an_empty_folder(installed, tmp_path, tiny_demo_presets, write_tiny_face_set):
    target, empty, run = installed
    write_tiny_face_set(str(tmp_path / 'faces'))
    script = tmp_path / 'tiny_demo.py'  # sfmnet-demo with the tiny face set and networks of tests/demo/test_demo.py
    script.write_text(textwrap.dedent(f'''
        import dataclasses, shutil
        from sfmnet_plugin.demo import end_to_end as demo
        from sfmnet_cli import demo as demo_cli

        def copy_faces(faces_dir, cache_dir=None, jitter=0, seed=0):
            shutil.copytree({str(tmp_path / 'faces')!r}, faces_dir, dirs_exist_ok=True)
            return 'tiny face set'

        demo.gather_faces = copy_faces
        demo.DEMO_NETWORKS = tuple(dataclasses.replace(network, presets={{'cpu': [
            *{tiny_demo_presets!r}[network.label], 'datasets:train:batch_size_per_gpu=2']}})
            for network in demo.DEMO_NETWORKS)
        demo_cli.main(['--iterations', '1', '--threads', '1'])
    '''))
    printed = run([sys.executable, str(script)], timeout=600).stdout
    assert '| SFMNet |' in printed
    output = empty / 'demo_output'
    assert (output / 'models' / 'SFMNet.safetensors').is_file() and (output / 'table.csv').is_file()


# A BasicSR project's own train.py: BasicSR's shape, with the plugin's launcher in place of basicsr.train's pipeline.
PROJECT_TRAIN_PY = """
import os
print('train.py starts with GOMP_SPINCOUNT', os.environ.get('GOMP_SPINCOUNT'), flush=True)
from os import path as osp

from sfmnet_plugin.launch.cli import train_pipeline

if __name__ == '__main__':
    train_pipeline(osp.abspath(osp.join(__file__, osp.pardir)))
"""
# The same project calling BasicSR's own pipeline after importing the plugin for its components.
PROJECT_BASICSR_TRAIN_PY = """
import sfmnet_plugin  # noqa: F401
from os import path as osp

from basicsr.train import train_pipeline

if __name__ == '__main__':
    train_pipeline(osp.abspath(osp.join(__file__, osp.pardir)))
"""


def test_another_basicsr_project_gets_the_plugin_run_behaviour_from_one_call(installed, tmp_path, write_paired_folders,
                                                                            write_yaml):
    """A plain SRModel of BasicSR's own architecture, trained by the project's train.py: ``_base_``, the pre-flight,
    the OpenMP setting (a restart before torch loads), the banner and ETA, and the plugin's saves for its model."""
    import torch

    _, _, run = installed
    project = tmp_path / 'project'
    (project / 'options' / '_base_').mkdir(parents=True)
    (project / 'train.py').write_text(PROJECT_TRAIN_PY)
    (project / 'train_basicsr.py').write_text(PROJECT_BASICSR_TRAIN_PY)
    data = tmp_path / 'data'
    write_paired_folders(str(data), count=4, gt_size=16, scale=2)
    write_yaml(project / 'options' / '_base_' / 'toy.yml', {
        'model_type': 'SRModel', 'scale': 2, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': {'name': 'toy', 'type': 'PairedImageDataset', 'dataroot_gt': f'{data}/gt',
                               'dataroot_lq': f'{data}/lq', 'io_backend': {'type': 'disk'}, 'gt_size': 16,
                               'use_hflip': False, 'use_rot': False, 'num_worker_per_gpu': 0,
                               'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1, 'prefetch_mode': None}},
        'network_g': {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_conv': 1,
                      'upscale': 2},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'scheduler': {'type': 'MultiStepLR', 'milestones': [9]},
                  'total_iter': 2, 'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss'}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    })
    options = write_yaml(project / 'options' / 'train_toy.yml', {'_base_': './_base_/toy.yml', 'name': 'toy'})
    missing = write_yaml(project / 'options' / 'missing.yml', {'_base_': './_base_/toy.yml', 'name': 'missing',
                                                               'datasets': {'train': {'dataroot_gt': 'nowhere'}}})

    refused = run([sys.executable, str(project / 'train.py'), '-opt', str(missing)], cwd=project, expect=2)
    assert 'cannot start, 1 problem (nothing was created)' in refused.stderr and 'nowhere' in refused.stderr
    assert not (project / 'experiments').exists()

    result = run([sys.executable, str(project / 'train.py'), '-opt', str(options)], cwd=project)
    printed = result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith('train.py starts')] == [
        'train.py starts with GOMP_SPINCOUNT None', 'train.py starts with GOMP_SPINCOUNT 10000']
    assert 'SRVGGNetCompact training: toy (SRModel) on cpu' in printed
    etas = re.findall(r'\[eta: ([^,]+),', printed)
    assert len(etas) == 2 and etas[-1] == '0:00:00'
    experiment = project / 'experiments' / 'toy'
    network = torch.load(experiment / 'models' / 'net_g_latest.pth', weights_only=True)
    assert network['network_g']['type'] == 'SRVGGNetCompact'  # the plugin's save, for BasicSR's own SRModel
    state = torch.load(experiment / 'training_states' / '2.state', weights_only=True)
    assert {'rng_states', 'sample_stream'} <= set(state)

    # BasicSR's own pipeline, in the same project: no _base_ (the symptom a user met), nothing of the above
    plain = run([sys.executable, str(project / 'train_basicsr.py'), '-opt', str(options)], cwd=project, expect=1)
    assert "KeyError: 'num_gpu'" in plain.stderr
