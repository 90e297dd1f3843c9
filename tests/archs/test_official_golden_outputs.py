"""SPARNet and SFMNet against committed outputs of the official code, from the 16 x 16 golden LR face.

The default input path (``lr_resize='pil_uint8'``) gives the networks the official loaders' 8-bit upsampled image,
so in float64 the outputs agree to the float32 rounding of the stored files (``tests/data/golden/README.md``).
"""
import os

import numpy as np
import pytest
import torch

from sfmnet_plugin.archs.sfmnet_arch import SFMNet
from sfmnet_plugin.archs.sparnet_arch import SPARNet
from sfmnet_plugin.checkpoints.sfmnet import convert_official_state_dict

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'golden')
OFFICIAL_SFMNET_KEYS = os.path.join(os.path.dirname(GOLDEN), 'sfmnet_official_keys.txt')


def golden(name):
    with np.load(os.path.join(GOLDEN, f'{name}.npz')) as data:
        return {key: data[key] for key in data.files}


def float64_lr(golden_lr_face):
    """The LR as the plugin's datasets give it: the 8-bit PNG divided by 255."""
    return torch.from_numpy(np.array(golden_lr_face)).permute(2, 0, 1)[None].double() / 255


def official_sfmnet_layout():
    """Zero float64 tensors in the official TwoBranch's key order and shapes: what the seeded weights follow."""
    layout = {}
    with open(OFFICIAL_SFMNET_KEYS, encoding='utf-8') as f:
        for line in f:
            if line.startswith('G '):
                _, key, shape = line.split(maxsplit=2)
                layout[key] = torch.zeros(eval(shape), dtype=torch.float64)  # a literal tuple of ints
    return layout


def relative_error(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.fixture(scope='module')
def sparnet(seeded_state_dict):
    expected = golden('sparnet')
    network = SPARNet().double().eval()
    network.load_state_dict(seeded_state_dict(network.state_dict(), seed=int(expected['seed'])))  # official names
    return network, expected


@pytest.fixture(scope='module')
def sfmnet(seeded_state_dict):
    expected = golden('sfmnet')
    official = seeded_state_dict(official_sfmnet_layout(), seed=int(expected['seed']))
    network = SFMNet().double().eval()
    network.load_state_dict(convert_official_state_dict(official))
    return network, expected


def test_sparnet_default_path_matches_the_official_output(sparnet, golden_lr_face):
    network, expected = sparnet
    with torch.no_grad():
        sr = network(float64_lr(golden_lr_face)).numpy() * 2 - 1  # the official [-1, 1] range
    assert relative_error(sr, expected['sr']) < 1e-6


def test_sfmnet_default_path_matches_both_official_outputs(sfmnet, golden_lr_face):
    network, expected = sfmnet
    with torch.no_grad():
        sr, sr_frequency = network(float64_lr(golden_lr_face), return_frequency=True)
    assert relative_error(sr.numpy(), expected['sr']) < 1e-6
    assert relative_error(sr_frequency.numpy(), expected['sr_frequency']) < 1e-6


def test_the_float_resize_option_is_not_the_official_input(sparnet, sfmnet, golden_lr_face):
    """``lr_resize='pil_float'`` skips PIL's 8-bit rounding and clipping: another input, a visibly other output."""
    for (network, expected) in (sparnet, sfmnet):
        network.lr_resize = 'pil_float'
        try:
            with torch.no_grad():
                sr = network(float64_lr(golden_lr_face)).numpy()
        finally:
            network.lr_resize = 'pil_uint8'
        official = expected['sr'] if isinstance(network, SFMNet) else (expected['sr'] + 1) / 2
        assert relative_error(sr, official) > 1e-3
