"""The UFSRNet and SISN option files' numbers against the official recipes (docs/fidelity.md §U4-§U6, §S4-§S6)."""
import os

import pytest
import torch
from basicsr.losses import build_loss

from sfmnet_plugin.config.option_files import load_merged_options

OPTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'options')


def options(name):
    return load_merged_options(os.path.join(OPTIONS, name))


def test_ufsrnet_recipe_numbers():
    opt = options('train_UFSRNet_x8.yml')
    train, data = opt['train'], opt['datasets']['train']
    assert opt['manual_seed'] == 123 and opt['network_g'] == {'type': 'UFSRNet', 'upscale': 8,
                                                               'shared_bottleneck_block': True, 'official_init': True}
    assert train['optim_g']['lr'] == 2e-4 and train['optim_g']['betas'] == [0.9, 0.99]
    assert train['scheduler']['milestones'] == [] and train['ema_decay'] == 0
    assert data['batch_size_per_gpu'] == 32 and data['use_hflip'] and 'dataroot_lq' not in data
    assert train['total_iter'] == 21 * (162770 // 32)  # 21 passes: range(0, total_epochs + 1), total_epochs 20
    # the official L1 is on [-1, 1] images
    sr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    official = torch.nn.functional.l1_loss(2 * sr - 1, 2 * hr - 1)
    assert build_loss(dict(train['pixel_opt']))(sr, hr).item() == pytest.approx(official.item(), rel=1e-6)
    assert options('test_UFSRNet_x8.yml')['val']['sr_quantization'] == 'truncate'


@pytest.mark.parametrize('scale', [4, 8])
def test_sisn_recipe_numbers(scale):
    opt = options(f'train_SISN_x{scale}.yml')
    train, data = opt['train'], opt['datasets']['train']
    assert opt['scale'] == opt['network_g']['upscale'] == scale and opt['manual_seed'] == 1
    assert train['optim_g']['lr'] == 2e-4 and train['optim_g']['betas'] == [0.9, 0.999]
    assert train['scheduler']['milestones'] == [50_000 * k for k in range(1, 9)] and train['scheduler']['gamma'] == 0.5
    assert train['total_iter'] == 1_000_000 and train['grad_clip_norm'] is None
    assert data['gt_size'] == 32 * scale and data['batch_size_per_gpu'] == 10  # LR patch 32
    assert data['use_hflip'] and data['use_rot'] and data['dataroot_lq'].endswith(f'LR_x{scale}.lmdb')
    assert data['meta_info_file'].endswith('sisn_train.txt')
    assert opt['val']['metrics']['psnr'] == {'type': 'calculate_psnr', 'crop_border': 6 + scale,
                                             'test_y_channel': False}
    # the official L1 is on 0..255 images
    sr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    official = torch.nn.functional.l1_loss(255 * sr, 255 * hr)
    assert build_loss(dict(train['pixel_opt']))(sr, hr).item() == pytest.approx(official.item(), rel=1e-6)
    assert options(f'test_SISN_x{scale}.yml')['val']['metrics']['psnr']['crop_border'] == 6 + scale
