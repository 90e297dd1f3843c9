"""The WFEN option files' numbers against the released recipe (PRIS-CV/WFEN train.sh and train.py;
docs/fidelity.md §W4-§W5)."""
import os

import pytest
import torch
from basicsr.losses import build_loss

from sfmnet_plugin.config.option_files import load_merged_options

OPTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'options')


def test_wfen_recipe_numbers():
    train_file = load_merged_options(os.path.join(OPTIONS, 'train_WFEN_x8.yml'))
    train, data, network = train_file['train'], train_file['datasets']['train'], train_file['network_g']
    assert train_file['model_type'] == 'FaceSRModel' and train_file['manual_seed'] == 123
    assert network == {'type': 'WFEN', 'upscale': 8, 'in_channels': 3, 'min_ch': 40, 'res_depth': 6,
                       'symmetric_shift': False, 'full_residual': False, 'official_init': True}
    assert train['optim_g']['lr'] == 2e-4 and train['optim_g']['betas'] == [0.9, 0.99]
    assert train['scheduler']['milestones'] == [] and train['ema_decay'] == 0  # constant LR, no EMA
    assert train['total_iter'] == 151 * (18_000 // 32)  # range(0, 150 + 1) passes over 18k faces, drop_last
    assert data['batch_size_per_gpu'] == 32 and data['use_hflip'] and 'dataroot_lq' not in data
    assert data['random_resized_crop']['scale'] == [0.7, 1.0]  # SPARNet's loader, which WFEN's is
    sr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)  # the official L1 on [-1, 1] images
    official = torch.nn.functional.l1_loss(2 * sr - 1, 2 * hr - 1)
    assert build_loss(dict(train['pixel_opt']))(sr, hr).item() == pytest.approx(official.item(), rel=1e-6)

    test_file = load_merged_options(os.path.join(OPTIONS, 'test_WFEN_x8.yml'))
    assert test_file['val']['sr_quantization'] == 'truncate'
    assert {test_file['val']['metrics'][name]['protocol'] for name in ('psnr', 'ssim')} == {'sparnet'}
    assert test_file['network_g']['type'] == 'WFEN' and set(test_file['datasets']) == {'test_helen', 'test_celeba'}
