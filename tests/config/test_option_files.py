"""Every shipped option file merges, names registered components, and builds what it describes."""
import glob
from os import path as osp

import pytest

from sfmnet_plugin.config.option_files import load_merged_options

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # parametrizes at import time
OPTION_FILES = sorted(glob.glob(osp.join(REPO_ROOT, 'options', '*.yml')))


def test_the_paper_option_files_are_shipped():
    names = {osp.basename(p) for p in OPTION_FILES}
    assert {'train_SFMNet_x8.yml', 'train_SFMNet_x4.yml', 'train_SFMNet_GAN_x8.yml', 'test_SFMNet_x8.yml',
            'test_SFMNet_x4.yml', 'demo_SFMNet_x8.yml'} <= names


@pytest.mark.parametrize('path', OPTION_FILES, ids=osp.basename)
def test_option_file_builds(path):
    from basicsr.archs import build_network
    from basicsr.losses import build_loss
    from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    opt = load_merged_options(path)
    assert MODEL_REGISTRY.get(opt['model_type'])
    scale = opt['scale']
    assert opt['network_g']['upscale'] == scale
    for dataset in opt['datasets'].values():
        assert DATASET_REGISTRY.get(dataset['type'])
        if dataset.get('dataroot_lq'):
            assert f'LR_x{scale}' in dataset['dataroot_lq']
    for key in ('network_g', 'network_d', 'network_d_frequency'):
        if key in opt:
            build_network(dict(opt[key]))
    for metric in opt['val']['metrics'].values():
        assert METRIC_REGISTRY.get(metric['type'])
    for key, loss_opt in opt['train'].items():
        if key.endswith('_opt') and loss_opt:
            loss_opt = dict(loss_opt)
            if loss_opt['type'] == 'FacePerceptualLoss':  # the real VGG19 file is not available offline
                loss_opt.pop('vgg_weights_path')
                loss_opt['random_backbone_for_tests'] = True
            build_loss(loss_opt)


def test_paper_recipe_numbers():
    """The stage-1 and stage-2 numbers the option files trace to the official code (docs/fidelity.md §A4-§A6)."""
    stage1 = load_merged_options(osp.join(REPO_ROOT, 'options', 'train_SFMNet_x8.yml'))
    train = stage1['train']
    assert train['optim_g']['lr'] == 1e-4 and train['optim_g']['betas'] == [0.9, 0.99]
    assert stage1['datasets']['train']['batch_size_per_gpu'] == 8
    assert train['frequency_opt']['loss_weight'] == 0.01 and train['scheduler']['milestones'] == []
    gan = load_merged_options(osp.join(REPO_ROOT, 'options', 'train_SFMNet_GAN_x8.yml'))['train']
    assert gan['gan_opt']['loss_weight'] == 5e-4 and gan['gan_frequency_opt']['loss_weight'] == 0.1
    assert gan['perceptual_opt']['perceptual_weight'] == 0.1
    assert gan['perceptual_opt']['layer_weights'] == {'conv5_4': 1.0}
    assert not gan['official_detached_perceptual'] and not gan['official_detached_frequency_fake']


def test_sparnet_recipe_numbers():
    """The SPARNet option files' numbers against the released recipe (docs/fidelity.md §B4-§B6)."""
    import torch
    from basicsr.losses import build_loss

    train_file = load_merged_options(osp.join(REPO_ROOT, 'options', 'train_SPARNet_x8.yml'))
    train, data = train_file['train'], train_file['datasets']['train']
    assert train_file['model_type'] == 'FaceSRModel' and train_file['manual_seed'] == 123
    assert train['optim_g']['lr'] == 2e-4 and train['optim_g']['betas'] == [0.9, 0.99]
    assert train['scheduler']['milestones'] == [] and train['ema_decay'] == 0
    assert data['batch_size_per_gpu'] == 32 and 'dataroot_lq' not in data and data['use_hflip']
    assert train_file['network_g']['official_init'] and train_file['network_g']['norm_type'] == 'bn'
    assert train['total_iter'] == 21 * (162770 // 32)  # 21 passes over the official train partition
    crop = data['random_resized_crop']
    assert crop['scale'] == [0.7, 1.0] and crop['ratio'] == pytest.approx([3 / 4, 4 / 3])
    assert crop['probability'] == pytest.approx((1.3 - 129 / 128) / 0.3, abs=1e-5)
    # The official L1 is taken on [-1, 1] images; the configured loss on [0, 1] images has the same value.
    sr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    official = torch.nn.functional.l1_loss(2 * sr - 1, 2 * hr - 1)
    assert build_loss(dict(train['pixel_opt']))(sr, hr).item() == pytest.approx(official.item(), rel=1e-6)

    test_file = load_merged_options(osp.join(REPO_ROOT, 'options', 'test_SPARNet_x8.yml'))
    assert test_file['val']['sr_quantization'] == 'truncate'
    assert {m['protocol'] for name, m in test_file['val']['metrics'].items() if name in ('psnr', 'ssim')} == {'sparnet'}
