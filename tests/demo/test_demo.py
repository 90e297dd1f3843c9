"""sfmnet-demo: SFMNet (or the family, with one budget) trained and scored by the benchmark (a tiny configuration end
to end), and what it leaves for using its models: the LR test inputs, each network carrying its options, a ready
sfmnet-infer command; the README's command for it runs as written."""
import csv
import dataclasses
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_cli import demo as demo_cli
from sfmnet_plugin.checkpoints.io import load_checkpoint_file, save_checkpoint_file
from sfmnet_plugin.config.option_files import apply_overrides, load_merged_options
from sfmnet_plugin.demo import end_to_end as demo
from sfmnet_plugin.demo.end_to_end import DEMO_NETWORKS, LR_INPUTS, export_for_inference, write_lr_inputs
from sfmnet_plugin.utils.profiling import count_parameters

SCALE, SIZE = 4, 32
TINY_SFMNET = {'type': 'SFMNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
               'keep_unused_attention': False}


@pytest.fixture
def demo_output(tmp_path, write_real_face_pairs):
    """A demo output folder as the demo leaves it, with a tiny (untrained) SFMNet as training saves it."""
    faces = write_real_face_pairs(str(tmp_path / 'faces'), count=2, gt_size=SIZE, scale=SCALE, seed=0)
    output = tmp_path / 'demo_output'
    lr_dir = write_lr_inputs(os.path.join(faces, 'gt'), str(output / LR_INPUTS), SCALE)
    from basicsr.archs import build_network

    torch.manual_seed(0)
    checkpoint = tmp_path / 'net_g_latest.safetensors'
    save_checkpoint_file({'params': build_network(dict(TINY_SFMNET)).state_dict()}, str(checkpoint),
                         {'network_g': TINY_SFMNET})
    _, command = export_for_inference(str(output), 'SFMNet', str(checkpoint), lr_dir)
    return tmp_path, output, command


def test_lr_inputs_are_the_tests_lr_images(demo_output, tmp_path):
    _, output, _ = demo_output
    names = sorted(os.listdir(output / LR_INPUTS))
    # the demo's owner marker: only such a folder is replaced
    assert names == ['.sfmnet_output', 'face000.png', 'face001.png']
    names = names[1:]
    for name in names:  # the same PIL bicubic LR the dataset makes (and write_real_face_pairs stored)
        np.testing.assert_array_equal(np.asarray(Image.open(output / LR_INPUTS / name)),
                                      np.asarray(Image.open(tmp_path / 'faces' / 'lq' / name)))


def test_the_script_runs_the_command_on_the_lr_inputs(demo_output):
    _, output, command = demo_output
    assert command == ('sfmnet-infer demo_output/lr_inputs --output demo_output/sr_SFMNet --checkpoint '
                       'demo_output/models/SFMNet.safetensors --side-by-side')  # the network carries its options
    subprocess.run(['bash', str(output / 'infer_SFMNet.sh')], check=True, capture_output=True, timeout=300)
    written = sorted(os.listdir(output / 'sr_SFMNet'))
    assert written == ['face000.png', 'face000_sbs.png', 'face001.png', 'face001_sbs.png']
    assert Image.open(output / 'sr_SFMNet' / 'face000.png').size == (SIZE, SIZE)


@pytest.fixture(scope='session')
def readme_commands(repo_root):
    def readme_commands(prefix):
        with open(os.path.join(repo_root, 'README.md'), encoding='utf-8') as f:
            return [line.split('#')[0].strip() for line in f if line.startswith(prefix)]

    return readme_commands


def test_readme_example_for_the_demo_model_runs_as_written(demo_output, readme_commands):
    tmp_path, output, command = demo_output
    examples = readme_commands('sfmnet-infer demo_output/')
    assert examples == [command]  # the README shows what the demo writes, for the demo's first network
    arguments = shlex.split(examples[0])[1:]
    subprocess.run([sys.executable, '-m', 'sfmnet_cli.infer', *arguments], cwd=tmp_path, check=True,
                   capture_output=True, timeout=300)
    assert len(os.listdir(output / 'sr_SFMNet')) == 4


def test_the_family_each_with_both_presets_and_the_default_is_sfmnet():
    assert [network.label for network in DEMO_NETWORKS] == ['SFMNet', 'SPARNet', 'SMLNet', 'WFEN', 'CTCNet', 'UFSRNet',
                                                            'SISN', 'DIC']
    for network in DEMO_NETWORKS:
        options = load_merged_options(network.train_options)
        assert options['network_g']['type'] == network.label and options['path']['network_format'] == 'safetensors'
        assert set(network.presets) == {'cpu', 'gpu'}
    assert demo_cli.build_parser().parse_args([]).networks == ['SFMNet']
    assert demo_cli.build_parser().parse_args(['--family']).networks == ['SFMNet', 'SPARNet', 'SMLNet']
    assert demo_cli.build_parser().parse_args(['--networks', 'CTCNet']).networks == ['CTCNet']  # a zoo network


@pytest.mark.parametrize('network', DEMO_NETWORKS, ids=lambda network: network.label)
def test_the_checkouts_demo_option_files_are_the_packaged_ones(network, repo_root):
    """options/demo_*.yml (for BasicSR users of a checkout) take the file the package ships as their _base_."""
    assert load_merged_options(os.path.join(repo_root, 'options', network.option_file)) == \
        load_merged_options(network.train_options)
    assert network.train_options.startswith(os.path.join(repo_root, 'sfmnet_plugin', 'demo', 'options'))


@pytest.mark.parametrize('network', [n for n in DEMO_NETWORKS[1:] if n.landmarks is None],
                         ids=lambda network: network.label)
def test_every_network_gets_sfmnets_budget(network):
    """The equal budget: same data, scale, seed, optimiser, schedule, iterations, pixel loss, validation and metrics;
    the network (and, for a single-output network, its model) is what differs. The same for the GPU preset."""
    reference, candidate = (load_merged_options(n.train_options) for n in (DEMO_NETWORKS[0], network))
    assert candidate['name'] != reference['name'] and candidate['network_g']['upscale'] == 8
    for key in ('datasets', 'scale', 'manual_seed', 'val', 'logger'):
        assert candidate[key] == reference[key], key
    for key in ('optim_g', 'scheduler', 'total_iter', 'warmup_iter', 'ema_decay', 'mixed_precision',
                'grad_clip_norm'):
        assert candidate['train'][key] == reference['train'][key], key
    assert candidate['train']['pixel_opt']['type'] == reference['train']['pixel_opt']['type'] == 'MSELoss'
    shared = [o for o in DEMO_NETWORKS[0].presets['gpu'] if not o.startswith('network_g:')]
    assert [o for o in network.presets['gpu'] if not o.startswith('network_g:')] == shared


def test_dic_gets_sfmnets_budget_with_landmarks_and_no_flips_and_its_gpu_preset_is_the_released_network():
    from basicsr.archs import build_network

    network = next(network for network in DEMO_NETWORKS if network.label == 'DIC')
    reference, candidate = (load_merged_options(n.train_options) for n in (DEMO_NETWORKS[0], network))
    assert network.landmarks == 68 and candidate['model_type'] == 'DICModel'
    train, reference_train = dict(candidate['datasets']['train']), reference['datasets']['train']
    assert train.pop('landmarks') == 68 and train.pop('skip_faces_without_landmarks')
    assert train.pop('use_hflip') is False and train.pop('heatmap_sigma') == 1
    assert train == {key: value for key, value in reference_train.items() if key != 'use_hflip'}
    for key in ('scale', 'manual_seed', 'val', 'logger'):
        assert candidate[key] == reference[key], key
    for key in ('optim_g', 'scheduler', 'total_iter', 'warmup_iter', 'ema_decay', 'pixel_opt'):
        assert candidate['train'][key] == reference['train'][key], key
    assert candidate['train']['heatmap_opt']['loss_weight'] == 0.1
    gpu = apply_overrides(load_merged_options(network.train_options), network.presets['gpu'])
    with torch.device('meta'):
        assert sum(p.numel() for p in build_network(dict(gpu['network_g'])).parameters()) == 21_803_849


def test_the_gpu_preset_trains_the_full_size_sfmnet():
    """The CPU demo drops a ResBlock and the two 128x128 interaction blocks; the GPU preset puts them back: the official
    network's parameters, less its never-called attention modules."""
    from basicsr.archs import build_network

    network = DEMO_NETWORKS[0]
    cpu = load_merged_options(network.train_options)
    gpu = apply_overrides(load_merged_options(network.train_options), network.presets['gpu'])
    assert cpu['network_g']['num_resblocks'] == 1 and len(cpu['network_g']['fusion_positions']) == 12
    full = build_network(dict(gpu['network_g']))  # a copy: build_network pops 'type'
    assert full.count_parameters_by_group()['total'] == 8_545_942  # as tests/archs/test_sfmnet_arch.py counts it
    assert len(full.interactions) == 14


@pytest.mark.parametrize('network', ['SFMNet', 'SPARNet', 'SMLNet', 'WFEN', 'CTCNet', 'UFSRNet', 'SISN', 'DIC'])
def test_the_demo_test_option_files_test_the_networks_the_demo_trains(network, repo_root):
    train, test = (load_merged_options(os.path.join(repo_root, 'options', f'demo_{kind}{network}_x8.yml'))
                   for kind in ('', 'test_'))
    assert {k: v for k, v in test['network_g'].items() if k != 'official_init'} == \
        {k: v for k, v in train['network_g'].items() if k != 'official_init'}
    assert test['path']['pretrain_network_g'] == f'experiments/{train["name"]}/models/net_g_latest.safetensors'


def test_budget_overrides_scale_the_warm_up_and_cosine_and_validate_only_at_the_end():
    assert demo.budget_overrides(300) == ['train:total_iter=300', 'train:warmup_iter=15',
                                          'train:scheduler:periods=[300]', 'val:val_freq=301',
                                          'logger:save_checkpoint_freq=300']
    assert 'train:warmup_iter=1' in demo.budget_overrides(1)
    options = load_merged_options(DEMO_NETWORKS[0].train_options)  # the option file follows the same rule
    total = options['train']['total_iter']
    assert options['train']['scheduler']['periods'] == [total]
    assert options['train']['warmup_iter'] == total // demo.WARMUP_FRACTION


# ---------------------------------------------------------------------------------------------- the family, tiny

@pytest.fixture
def tiny_family(tmp_path, monkeypatch, write_tiny_face_set, tiny_demo_presets):
    monkeypatch.setenv('SFMNET_ROOT_PATH', str(tmp_path))  # experiments/ and demo_output/ in tmp_path
    monkeypatch.setattr(demo, 'gather_faces', write_tiny_face_set)
    monkeypatch.setattr(demo, 'DEMO_NETWORKS', tiny_demo_networks(tiny_demo_presets))
    demo_cli.main(['--family', '--iterations', '2', '--threads', '1'])
    return tmp_path, tmp_path / 'demo_output'


def tiny_demo_networks(presets):
    return tuple(dataclasses.replace(network, presets={'cpu': [*presets[network.label],
                                                               'datasets:train:batch_size_per_gpu=2']})
                 for network in DEMO_NETWORKS)


def read_table(path):
    with open(path, newline='', encoding='utf-8') as f:
        return {row['method']: row for row in csv.DictReader(f)}


def test_tiny_family_demo_writes_the_benchmarks_table_of_bicubic_and_the_three(tiny_family):
    from sfmnet_plugin.benchmark import Bicubic, Network, TestSet, run_benchmark

    root, output = tiny_family
    for name in ('table.md', 'table.csv', 'per_image.csv', 'contact_sheet.png', 'quality_vs_cost.png'):
        assert (output / name).is_file(), name
    table = read_table(output / 'table.csv')
    assert list(table) == ['Bicubic', 'SFMNet', 'SPARNet', 'SMLNet']
    assert {row['images'] for row in table.values()} == {'2'}
    for label in ('SFMNet', 'SPARNet', 'SMLNet'):  # each trained 2 iterations and exported for sfmnet-infer
        checkpoint = load_checkpoint_file(str(output / 'models' / f'{label}.safetensors'))
        assert checkpoint['params'] and checkpoint['network_g']['type'] == label
        assert (output / f'infer_{label}.sh').is_file()
    network_g = load_checkpoint_file(str(output / 'models' / 'SPARNet.safetensors'))['network_g']
    assert (network_g['min_ch'], network_g['max_ch']) == (4, 8)  # the options it was trained with

    # the benchmark called directly on the demo's test faces and models gives the same numbers
    direct = run_benchmark(TestSet(str(output / 'lmdb' / 'test_HR.lmdb'), scale=8, name='DemoFaces_test'),
                           [Bicubic(), *(Network(label, str(output / 'models' / f'{label}.safetensors'))
                                         for label in ('SFMNet', 'SPARNet', 'SMLNet'))],
                           str(root / 'direct'), latency_repeats=0, progress=False)
    for method, means in direct.means.items():
        for column, value in means.items():
            assert float(table[method][column]) == value, (method, column)
        assert int(table[method]['parameters']) == direct.costs[method].parameters
    assert (root / 'direct' / 'per_image.csv').read_text() == (output / 'per_image.csv').read_text()
    assert '| SMLNet |' in (output / 'table.md').read_text()


def test_the_gpu_preset_restores_the_official_ctcnet():
    from basicsr.archs import build_network

    network = next(network for network in DEMO_NETWORKS if network.label == 'CTCNet')
    gpu = apply_overrides(load_merged_options(network.train_options), network.presets['gpu'])
    with torch.device('meta'):
        full = build_network(dict(gpu['network_g']))
    assert count_parameters(full) == 24_404_917  # as tests/archs/test_ctcnet_arch.py counts it


@pytest.mark.parametrize('label', ['WFEN', 'CTCNet', 'UFSRNet', 'SISN', 'DIC'])
def test_a_zoo_network_trains_alone_and_gets_its_row(label, tmp_path, monkeypatch, write_tiny_face_set,
                                                     tiny_demo_presets):
    """One tiny demo run per zoo network: ``--networks <it> --iterations 3`` ends with its row next to bicubic; a
    network that reads landmarks (DIC) gets dlib's points of the training faces, and only then."""
    monkeypatch.setenv('SFMNET_ROOT_PATH', str(tmp_path))
    monkeypatch.setattr(demo, 'gather_faces', write_tiny_face_set)
    monkeypatch.setattr(demo, 'DEMO_NETWORKS', tiny_demo_networks(tiny_demo_presets))
    assert demo_cli.main(['--networks', label, '--iterations', '3', '--threads', '1']) is None  # exit status 0
    output = tmp_path / 'demo_output'
    assert list(read_table(output / 'table.csv')) == ['Bicubic', label]
    checkpoint = load_checkpoint_file(str(output / 'models' / f'{label}.safetensors'))
    assert checkpoint['network_g']['type'] == label and (output / f'infer_{label}.sh').is_file()
    reads_landmarks = next(network.landmarks for network in DEMO_NETWORKS if network.label == label) == 68
    assert (output / 'lmdb' / 'train_HR.lmdb' / 'landmarks_68.txt').is_file() == reads_landmarks
    assert not (output / 'lmdb' / 'test_HR.lmdb' / 'landmarks_68.txt').exists()
    if reads_landmarks:  # its heatmap loss ran at every iteration (the tiny preset logs each one)
        log = next((tmp_path / 'experiments' / f'demo_{label}_x8').glob('train_*.log')).read_text()
        assert len(re.findall(r'l_heatmap: [0-9.e+-]+', log)) == 3


def test_lpips_weights_are_checked_first_and_reach_the_benchmark(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('SFMNET_ROOT_PATH', str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:  # a mistyped file: refused before anything is made
        demo_cli.main(['--lpips-weights', str(tmp_path / 'alexnet.pth')])
    assert exit_info.value.code == 2
    assert f'--lpips-weights: no file at {tmp_path / "alexnet.pth"}' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []

    import sfmnet_plugin.benchmark

    received = {}
    monkeypatch.setattr(sfmnet_plugin.benchmark, 'run_benchmark', lambda *args, **kwargs: received.update(kwargs))
    demo.benchmark_family(str(tmp_path / 'out'), 'test.lmdb', 8, {}, lpips_weights='alexnet.pth')
    assert received['lpips_weights'] == 'alexnet.pth'
