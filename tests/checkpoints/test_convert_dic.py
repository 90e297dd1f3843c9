"""Official DIC checkpoints: recognised, checked, converted by sfmnet-convert-official and loaded by FaceRestorer,
on state dicts built from the official key list (``tests/data/dic_official_keys.txt``) and wrapped as the official
training code saves them (``state_dict`` beside step, epoch, optimizer, best_pred, best_step and records).
"""
import os

import numpy as np
import pytest
import torch
from basicsr.archs import build_network

from sfmnet_cli.convert_official import main as convert_main
from sfmnet_plugin.archs.dic_arch import DIC
from sfmnet_plugin.checkpoints import CheckpointConversionError, convert_official_checkpoint
from sfmnet_plugin.inference import FaceRestorer

OFFICIAL_KEYS = os.path.join('tests', 'data', 'dic_official_keys.txt')
TINY = dict(num_features=8, num_groups=2, num_steps=2, hg_num_feature=16, num_fusion_block=1)


@pytest.fixture(scope='module')
def official_state_dict(official_key_listing):
    """``official_state_dict(device='meta')``: the released DIC's layout, random values on the CPU."""
    layout = official_key_listing(OFFICIAL_KEYS, 'DIC ')

    def make(device='meta'):
        generator = torch.Generator().manual_seed(0)
        return {key: torch.empty(shape, device='meta') if device == 'meta' else torch.rand(shape, generator=generator)
                for key, (shape, _) in layout.items()}
    return make


def training_checkpoint(state_dict):
    """What the official SRLandmarkSolver.save_checkpoint writes."""
    return {'step': 2000, 'epoch': 3, 'state_dict': state_dict,
            'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-4, 'params': [0, 1]}]},
            'best_pred': 27.1, 'best_step': 2000, 'records': {'psnr': [27.1], 'ssim': [0.8], 'lr': [1e-4]}}


def test_the_released_layout_is_recognised_with_and_without_module_prefix(official_state_dict):
    official = official_state_dict()
    for state_dict in (official, {f'module.{key}': t for key, t in official.items()}):
        converted, found = convert_official_checkpoint(state_dict)
        assert found.name == 'DIC' and found.network_options == {'type': 'DIC', 'upscale': 8}
        assert list(converted) == list(official)
    with torch.device('meta'):
        network = build_network(dict(found.network_options))
    network.load_state_dict(converted, strict=True, assign=True)
    assert sum(p.numel() for p in network.parameters()) == 21_803_849


def test_a_wrong_dic_checkpoint_names_the_first_mismatched_key(official_state_dict):
    broken = official_state_dict()
    broken['block.fusion_block.resnet.2.res.0.weight'] = torch.empty(240, 240, 3, 3, device='meta')
    del broken['HG.hg.res4_3.conv_block.3.bias']
    with pytest.raises(CheckpointConversionError) as error:
        convert_official_checkpoint(broken)
    assert str(error.value).startswith("Not an official DIC state dict: first mismatch: key "
                                       "'block.fusion_block.resnet.2.res.0.weight' has shape (240, 240, 3, 3)")
    assert 'missing keys (1): HG.hg.res4_3.conv_block.3.bias' in str(error.value)


def test_cli_converts_an_official_training_checkpoint(tmp_path, capsys, official_state_dict):
    official = official_state_dict(device='cpu')
    source, target = tmp_path / 'best_ckp.pth', tmp_path / 'dic.pth'
    torch.save(training_checkpoint({f'module.{key}': t for key, t in official.items()}), source)
    assert convert_main([str(source), str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Found: DIC. ') and '296 tensors, 21,803,849 parameters' in out
    converted = torch.load(target, weights_only=True)['params']
    assert torch.equal(converted['HG.hg_conv_out.2.weight'], official['HG.hg_conv_out.2.weight'])


def test_face_restorer_takes_a_raw_official_training_checkpoint_of_another_width(tmp_path):
    torch.manual_seed(0)
    model = DIC(**TINY, official_init=True).eval()
    path = tmp_path / 'step_0002000_ckp.pth'
    torch.save(training_checkpoint(model.state_dict()), path)
    restorer = FaceRestorer(str(path), device='cpu')
    assert restorer.official_network.name.startswith('DIC (num_features=8, num_groups=2, hg_num_feature=16')
    lr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    rebuilt = DIC(**{**TINY, 'num_steps': 4})  # num_steps leaves no trace in the weights: the default 4 is used
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = rebuilt.eval()(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255)
    expected = (expected.clamp(0, 1) * 255)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(restorer.restore_image(lr), expected, rtol=0, atol=0.51)  # uint8 rounding only
