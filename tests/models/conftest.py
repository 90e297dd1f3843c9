"""Fixtures of the model tests: tiny networks and in-process options for each face-SR model."""
import copy

import pytest
import torch

from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize

SCALE, GT_SIZE = 4, 32
TINY_SFMNET = {'type': 'SFMNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
               'keep_unused_attention': False}
TINY_D = {'num_in_ch': 3, 'input_size': GT_SIZE}
RANDOM_VGG = {'type': 'FacePerceptualLoss', 'layer_weights': {'conv5_4': 1.0}, 'vgg_type': 'vgg19',
              'use_input_norm': False, 'range_norm': False, 'perceptual_weight': 0.1, 'style_weight': 0,
              'criterion': 'l1', 'random_backbone_for_tests': True}
PSNR_LOSSES = {
    'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
    'frequency_branch_pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
    'frequency_opt': {'type': 'FrequencyLoss', 'loss_weight': 0.01},
}
ADAM = {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]}
# A 32x32 SPARNet (2 down-FAUs to 8x8, hourglasses bottoming out at 2x2), 1.7 M parameters (the
# hourglasses keep their 64 channels), the official init; the released recipe's L1 (weight 2, see the option file).
TINY_SPARNET = {'type': 'SPARNet', 'upscale': SCALE, 'min_ch': 8, 'max_ch': 16, 'in_size': GT_SIZE,
                'out_size': GT_SIZE, 'min_feat_size': 8, 'res_depth': 1, 'bottleneck_size': 8, 'official_init': True}
SPARNET_LOSSES = {'pixel_opt': {'type': 'L1Loss', 'loss_weight': 2.0}}
# SMLNet (unofficial, from its abstract) has SFMNet's contract: SFMNetModel's dual loss trains it unchanged.
TINY_SMLNET = {'type': 'SMLNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2}
# stage -> (model_type, network, losses); 'SPARNet' is the shared FaceSRModel with a SPARNet generator
STAGES = {'SFMNetModel': ('SFMNetModel', TINY_SFMNET, PSNR_LOSSES),
          'SFMNetGANModel': ('SFMNetGANModel', TINY_SFMNET, PSNR_LOSSES),
          'SPARNet': ('FaceSRModel', TINY_SPARNET, SPARNET_LOSSES),
          'SMLNet': ('SFMNetModel', TINY_SMLNET, PSNR_LOSSES)}


def _model_options(stage, **train_overrides):
    """Options as BasicSR's parse_options would hand them to a model, for in-process tests."""
    model_type, network, losses = STAGES[stage]
    train = {'optim_g': dict(ADAM), 'scheduler': {'type': 'MultiStepLR', 'milestones': [], 'gamma': 1.0},
             **copy.deepcopy(losses)}
    opt = {'name': 'unit', 'model_type': model_type, 'is_train': True, 'dist': False, 'num_gpu': 0, 'rank': 0,
           'world_size': 1, 'scale': SCALE, 'network_g': dict(network), 'path': {}, 'train': train,
           'val': {'metrics': {}}}
    if stage == 'SFMNetGANModel':
        opt['network_d'] = {'type': 'SFMNetSpatialDiscriminator', **TINY_D}
        opt['network_d_frequency'] = {'type': 'SFMNetFrequencyDiscriminator', **TINY_D}
        train.update(optim_d=dict(ADAM), perceptual_opt=dict(RANDOM_VGG),
                     gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 5e-4},
                     gan_frequency_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1},
                     frequency_d_loss_weight=0.1)
    train.update(train_overrides)
    return opt


def _face_batch(seed=0):
    """A 2-image batch of random GT and its PIL-bicubic LR."""
    generator = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 3, GT_SIZE, GT_SIZE, generator=generator)
    return {'lq': pil_bicubic_resize(gt, GT_SIZE // SCALE).clamp(0, 1), 'gt': gt}


@pytest.fixture(scope='session')
def model_options():
    """``model_options(stage, **train_overrides)``: see :func:`_model_options` (stages: ``STAGES``)."""
    return _model_options


@pytest.fixture(scope='session')
def face_batch():
    """``face_batch(seed=0)``: see :func:`_face_batch`."""
    return _face_batch


@pytest.fixture(scope='session')
def tiny_sparnet():
    """The tiny SPARNet of the ``'SPARNet'`` stage."""
    return TINY_SPARNET
