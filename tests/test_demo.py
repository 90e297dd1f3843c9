"""What sfmnet-demo leaves for using its model: the LR test inputs, the network with its options, a ready
sfmnet-infer command; the README's command for it runs as written."""
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch
from launch_helpers import REPO_ROOT, write_real_face_pairs
from PIL import Image

from sfmnet_plugin.tools.demo import DEMO_NETWORKS, LR_INPUTS, export_for_inference, write_lr_inputs

SCALE, SIZE = 4, 32
TINY_SFMNET = {'type': 'SFMNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
               'keep_unused_attention': False}


@pytest.fixture
def demo_output(tmp_path):
    """A demo output folder as the demo leaves it, with a tiny (untrained) SFMNet in BasicSR's checkpoint format."""
    faces = write_real_face_pairs(str(tmp_path / 'faces'), count=2, gt_size=SIZE, scale=SCALE, seed=0)
    output = tmp_path / 'demo_output'
    lr_dir = write_lr_inputs(os.path.join(faces, 'gt'), str(output / LR_INPUTS), SCALE)
    from basicsr.archs import build_network

    torch.manual_seed(0)
    checkpoint = tmp_path / 'net_g_latest.pth'
    torch.save({'params': build_network(dict(TINY_SFMNET)).state_dict()}, checkpoint)
    command = export_for_inference(str(output), 'SFMNet', str(checkpoint), dict(TINY_SFMNET), lr_dir)
    return tmp_path, output, command


def test_lr_inputs_are_the_tests_lr_images(demo_output, tmp_path):
    _, output, _ = demo_output
    names = sorted(os.listdir(output / LR_INPUTS))
    assert names == ['face000.png', 'face001.png']
    for name in names:  # the same PIL bicubic LR the dataset makes (and write_real_face_pairs stored)
        np.testing.assert_array_equal(np.asarray(Image.open(output / LR_INPUTS / name)),
                                      np.asarray(Image.open(tmp_path / 'faces' / 'lq' / name)))


def test_the_script_runs_the_command_on_the_lr_inputs(demo_output):
    _, output, command = demo_output
    assert command == ('sfmnet-infer demo_output/lr_inputs --output demo_output/sr_SFMNet --checkpoint '
                       'demo_output/models/SFMNet.pth --opt demo_output/models/SFMNet.yml --side-by-side')
    subprocess.run(['bash', str(output / 'infer_SFMNet.sh')], check=True, capture_output=True, timeout=300)
    written = sorted(os.listdir(output / 'sr_SFMNet'))
    assert written == ['face000.png', 'face000_sbs.png', 'face001.png', 'face001_sbs.png']
    assert Image.open(output / 'sr_SFMNet' / 'face000.png').size == (SIZE, SIZE)


def readme_commands(prefix):
    with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        return [line.split('#')[0].strip() for line in f if line.startswith(prefix)]


def test_readme_example_for_the_demo_model_runs_as_written(demo_output):
    tmp_path, output, command = demo_output
    examples = readme_commands('sfmnet-infer demo_output/')
    assert examples == [command]  # the README shows what the demo writes, for the demo's first network
    arguments = shlex.split(examples[0])[1:]
    subprocess.run([sys.executable, '-m', 'sfmnet_plugin.tools.infer', *arguments], cwd=tmp_path, check=True,
                   capture_output=True, timeout=300)
    assert len(os.listdir(output / 'sr_SFMNet')) == 4


def test_demo_networks_are_presets_with_both_option_files():
    for network in DEMO_NETWORKS:
        assert os.path.isfile(os.path.join(REPO_ROOT, network.train_options))
        assert os.path.isfile(os.path.join(REPO_ROOT, network.test_options))
        assert set(network.presets) == {'cpu', 'gpu'}
