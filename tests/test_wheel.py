"""The package works from a wheel: built, installed without the repository on the path, and run from an empty folder
(``sfmnet-infer --help``, a tiny training through ``python -m sfmnet_plugin.train`` that saves a safetensors network
``sfmnet-infer`` then runs without an option file, and a tiny ``sfmnet-demo``)."""
import os
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
    env.pop('SFMNET_ROOT_PATH', None)  # outputs go to the current folder, as for a user of the wheel

    def run(command, timeout=300):
        result = subprocess.run(command, cwd=empty, env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f'{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
        return result

    return target, empty, run


def test_the_wheel_holds_the_demo_options_and_imports_from_its_install(installed):
    target, _, run = installed
    assert sorted(os.listdir(target / 'sfmnet_plugin' / 'demo' / 'options')) == [
        'demo_SFMNet_x8.yml', 'demo_SMLNet_x8.yml', 'demo_SPARNet_x8.yml']
    location = run([sys.executable, '-c', 'import sfmnet_plugin; print(sfmnet_plugin.__file__)']).stdout.strip()
    assert location.startswith(str(target))
    usage = run([str(target / 'bin' / 'sfmnet-infer'), '--help']).stdout  # the console script pip installed
    assert usage.startswith('usage: sfmnet-infer')


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
        from sfmnet_plugin.tools import demo

        def copy_faces(faces_dir, cache_dir=None, jitter=0, seed=0):
            shutil.copytree({str(tmp_path / 'faces')!r}, faces_dir, dirs_exist_ok=True)
            return 'tiny face set'

        demo.gather_faces = copy_faces
        demo.DEMO_NETWORKS = tuple(dataclasses.replace(network, presets={{'cpu': [
            *{tiny_demo_presets!r}[network.label], 'datasets:train:batch_size_per_gpu=2']}})
            for network in demo.DEMO_NETWORKS)
        demo.main(['--iterations', '1', '--threads', '1'])
    '''))
    printed = run([sys.executable, str(script)], timeout=600).stdout
    assert '| SFMNet |' in printed
    output = empty / 'demo_output'
    assert (output / 'models' / 'SFMNet.safetensors').is_file() and (output / 'table.csv').is_file()
