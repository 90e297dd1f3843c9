"""SFMNetModel / SFMNetGANModel: losses, the official-bug switches, and both stages through the launchers
(SFMNet, and SMLNet with the same dual loss)."""
import copy
import os
import re

import pytest
import torch
from launch_helpers import free_port, read_training_log, run_launcher, write_real_face_pairs, write_yaml

SCALE, GT_SIZE = 4, 32
TINY_SFMNET = {'type': 'SFMNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
               'keep_unused_attention': False}
TINY_SMLNET = {'type': 'SMLNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2}
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


def model_options(stage, **train_overrides):
    """Options as BasicSR's parse_options would hand them to a model, for in-process tests."""
    train = {'optim_g': dict(ADAM), 'scheduler': {'type': 'MultiStepLR', 'milestones': [], 'gamma': 1.0},
             **copy.deepcopy(PSNR_LOSSES)}
    opt = {'name': 'unit', 'model_type': stage, 'is_train': True, 'dist': False, 'num_gpu': 0, 'rank': 0,
           'world_size': 1, 'scale': SCALE, 'network_g': dict(TINY_SFMNET), 'path': {}, 'train': train,
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


def build_model(opt, seed=0):
    from basicsr.models import build_model as basicsr_build_model

    torch.manual_seed(seed)
    return basicsr_build_model(copy.deepcopy(opt))


def face_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 3, GT_SIZE, GT_SIZE, generator=generator)
    from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize

    return {'lq': pil_bicubic_resize(gt, GT_SIZE // SCALE).clamp(0, 1), 'gt': gt}


def test_psnr_stage_optimizes_the_official_objective():
    model = build_model(model_options('SFMNetModel'))
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert set(log) == {'l_pix', 'l_pix_frequency_branch', 'l_amplitude', 'l_phase', 'l_total'}
    assert log['l_total'] == pytest.approx(sum(v for k, v in log.items() if k != 'l_total'), rel=1e-5)
    # the frequency terms are measured on the frequency-branch output, with the official 0.01 weight
    from sfmnet_plugin.losses.frequency_loss import amplitude_phase_l1

    amplitude, phase = amplitude_phase_l1(model.output_frequency.detach().float(), model.gt)
    assert log['l_amplitude'] == pytest.approx(0.01 * amplitude.item(), rel=1e-4)
    assert log['l_phase'] == pytest.approx(0.01 * phase.item(), rel=1e-4)


def test_psnr_stage_mixed_precision_and_clipping_stay_finite():
    model = build_model(model_options('SFMNetModel', mixed_precision='bf16', grad_clip_norm=0.5))
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    assert all(torch.isfinite(torch.tensor(v)) for v in model.get_current_log().values())
    total_norm = torch.nn.utils.get_total_norm([p.grad for p in model.net_g.parameters() if p.grad is not None])
    assert total_norm <= 0.5 + 1e-4


def test_mixed_precision_option_is_validated():
    with pytest.raises(ValueError, match='mixed_precision'):
        build_model(model_options('SFMNetModel', mixed_precision='fp8'))


def generator_gradients(model):
    return torch.cat([p.grad.flatten() for p in model.net_g.parameters() if p.grad is not None])


@pytest.mark.parametrize('official', [True, False])
def test_official_detached_perceptual_switch(official):
    """Official code: the perceptual term gives the generator no gradient, so its weight changes nothing."""
    grads = []
    for weight in (0.0, 50.0):
        options = model_options('SFMNetGANModel', official_detached_perceptual=official)
        options['train']['perceptual_opt']['perceptual_weight'] = weight
        model = build_model(options)
        model.feed_data(face_batch())
        model.optimize_parameters(1)
        grads.append(generator_gradients(model))
    assert torch.equal(grads[0], grads[1]) is official


@pytest.mark.parametrize('official', [True, False])
def test_official_detached_frequency_fake_switch(official):
    """Official code: D_frequency never learns from generated images, so its gradient ignores them."""
    grads = []
    for generator_seed in (1, 2):
        model = build_model(model_options('SFMNetGANModel', official_detached_frequency_fake=official))
        torch.manual_seed(generator_seed)  # a different generator gives different fakes, same D init
        for p in model.net_g.parameters():
            p.data.add_(0.05 * torch.randn_like(p))
        model.feed_data(face_batch())
        model.optimize_parameters(1)
        grads.append(torch.cat([p.grad.flatten() for p in model.net_d_frequency.parameters()]))
        log = model.get_current_log()
        assert {'l_g_gan', 'l_g_gan_frequency', 'l_percep', 'l_d_real', 'l_d_fake', 'l_d_real_frequency',
                'l_d_fake_frequency'} <= set(log)
    assert torch.allclose(grads[0], grads[1]) is official


# ------------------------------------------------------------------------------- through the launchers

def stage_options(name, data_root, stage, pretrain=None, network=None):
    def dataset(split, **extra):
        return {'name': f'faces_{split}', 'type': 'PairedFaceDataset', 'dataroot_gt': f'{data_root}/{split}/gt',
                'dataroot_lq': f'{data_root}/{split}/lq', 'io_backend': {'type': 'disk'}, **extra}

    opt = model_options(stage)
    if network:
        opt['network_g'] = dict(network)
    for key in ('is_train', 'dist', 'rank', 'world_size'):
        del opt[key]
    opt.update(name=name, manual_seed=0, num_gpu=0, path={'pretrain_network_g': pretrain, 'strict_load_g': True},
               datasets={'train': dataset('train', num_worker_per_gpu=0, batch_size_per_gpu=2,
                                          dataset_enlarge_ratio=1, prefetch_mode=None),
                         'val': dataset('val')},
               val={'val_freq': 2, 'save_img': False, 'compare_bicubic': True,
                    'metrics': {'psnr': {'type': 'calculate_face_psnr', 'protocol': 'sfmnet', 'crop_border': 2}}},
               logger={'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False})
    opt['train']['total_iter'] = 4
    return opt


@pytest.fixture(scope='module')
def face_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('faces')
    write_real_face_pairs(str(root / 'train'), count=8, gt_size=GT_SIZE, scale=SCALE, seed=0)
    write_real_face_pairs(str(root / 'val'), count=2, gt_size=GT_SIZE, scale=SCALE, seed=1)
    return root


def last_validation_psnr(log):
    return float(re.findall(r'# psnr: ([0-9.]+)', log)[-1])


def test_both_stages_train_validate_resume_and_chain(face_data, tmp_path):
    runs = tmp_path / 'runs'
    psnr_opt = write_yaml(tmp_path / 'psnr.yml', stage_options('psnr_stage', face_data, 'SFMNetModel'))
    run_launcher(['sfmnet_plugin/train.py', '-opt', str(psnr_opt)], runs)
    psnr_dir = runs / 'experiments' / 'psnr_stage'
    log = read_training_log(psnr_dir)
    assert 'l_amplitude' in log and 'Bicubic baseline on faces_val' in log
    run_launcher(['sfmnet_plugin/train.py', '-opt', str(psnr_opt), '--auto_resume', '--force_yml',
                  'train:total_iter=6'], runs)
    assert 'Resuming training from epoch' in read_training_log(psnr_dir)
    assert 'net_g_6.pth' in os.listdir(psnr_dir / 'models')

    gan = stage_options('gan_stage', face_data, 'SFMNetGANModel', pretrain=str(psnr_dir / 'models/net_g_6.pth'))
    gan_opt = write_yaml(tmp_path / 'gan.yml', gan)
    run_launcher(['sfmnet_plugin/train.py', '-opt', str(gan_opt)], runs)
    gan_dir = runs / 'experiments' / 'gan_stage'
    log = read_training_log(gan_dir)
    assert 'Loading SFMNet model from' in log and 'net_g_6.pth' in log
    assert 'l_g_gan_frequency' in log and '# psnr:' in log
    assert {'net_g_4.pth', 'net_d_4.pth', 'net_d_frequency_4.pth'} <= set(os.listdir(gan_dir / 'models'))
    run_launcher(['sfmnet_plugin/train.py', '-opt', str(gan_opt), '--auto_resume', '--force_yml',
                  'train:total_iter=6'], runs)
    assert 'Resuming training from epoch' in read_training_log(gan_dir)


@pytest.mark.parametrize('stage, network', [('SFMNetModel', TINY_SFMNET), ('SFMNetGANModel', TINY_SFMNET),
                                            ('SFMNetModel', TINY_SMLNET)],
                         ids=['SFMNet-psnr', 'SFMNet-gan', 'SMLNet-psnr'])
def test_two_process_torchrun_matches_one_process(face_data, tmp_path, stage, network):
    """2 ranks x batch 1 see the same samples per step as 1 process x batch 2 (EnlargedSampler splits one
    permutation), DDP averages their gradients, and validation gathers every rank's images."""
    runs = tmp_path / 'runs'
    single = stage_options('single', face_data, stage, network=network)
    single['train']['total_iter'] = 2
    # A random test VGG is seeded with seed + rank, so it would differ between ranks (real weights do not).
    single['train'].pop('perceptual_opt', None)
    # Adam's first steps are about lr * sign(gradient): float noise in near-zero gradients flips signs,
    # so a small learning rate keeps that noise below the tolerance.
    for optim in ('optim_g', 'optim_d'):
        if optim in single['train']:
            single['train'][optim]['lr'] = 1e-5
    # BasicSR's own command line for one process (the same launcher as sfmnet_plugin/train.py)
    run_launcher(['basicsr/train.py', '-opt', str(write_yaml(tmp_path / 'single.yml', single))], runs)
    ddp = copy.deepcopy(single)
    ddp['name'] = 'ddp'
    ddp['datasets']['train']['batch_size_per_gpu'] = 1
    run_launcher(['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
                  'sfmnet_plugin/train.py', '-opt', str(write_yaml(tmp_path / 'ddp.yml', ddp)), '--launcher',
                  'pytorch'], runs)
    single_log = read_training_log(runs / 'experiments' / 'single')
    assert all(f'{term}:' in single_log for term in ('l_pix', 'l_pix_frequency_branch', 'l_amplitude', 'l_phase'))
    single_psnr = last_validation_psnr(single_log)
    ddp_log = read_training_log(runs / 'experiments' / 'ddp')
    assert 'world_size: 2' in ddp_log
    assert last_validation_psnr(ddp_log) == pytest.approx(single_psnr, abs=2e-3)
