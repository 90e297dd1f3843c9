"""Every shipped option file merges, names registered components, and builds what it describes."""
import glob
from os import path as osp

import pytest
from launch_helpers import REPO_ROOT

from sfmnet_plugin.option_files import load_merged_options

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
    """The stage-1 and stage-2 numbers the option files trace to the official code (spec sections 4-6)."""
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
