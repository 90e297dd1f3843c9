"""The face-SR models: FaceSRModel (with SPARNet), SFMNetModel and SFMNetGANModel (with SFMNet, and SMLNet for the
PSNR stage): losses, the official-bug switches, and training/validation/testing through the launchers."""
import copy
import os
import re
from os import path as osp

import numpy as np
import pytest
import torch

SCALE, GT_SIZE = 4, 32  # the geometry of model_options and face_batch (conftest.py)


def test_psnr_stage_optimizes_the_official_objective(build_seeded_model, face_batch, model_options):
    model = build_seeded_model(model_options('SFMNetModel'))
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


def test_psnr_stage_mixed_precision_and_clipping_stay_finite(build_seeded_model, face_batch, model_options):
    model = build_seeded_model(model_options('SFMNetModel', mixed_precision='bf16', grad_clip_norm=0.5))
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    assert all(torch.isfinite(torch.tensor(v)) for v in model.get_current_log().values())
    total_norm = torch.nn.utils.get_total_norm([p.grad for p in model.net_g.parameters() if p.grad is not None])
    assert total_norm <= 0.5 + 1e-4


def test_mixed_precision_option_is_validated(build_seeded_model, model_options):
    with pytest.raises(ValueError, match='mixed_precision'):
        build_seeded_model(model_options('SFMNetModel', mixed_precision='fp8'))


def generator_gradients(model):
    return torch.cat([p.grad.flatten() for p in model.net_g.parameters() if p.grad is not None])


@pytest.mark.parametrize('official', [True, False])
def test_official_detached_perceptual_switch(official, build_seeded_model, face_batch, model_options):
    """Official code: the perceptual term gives the generator no gradient, so its weight changes nothing."""
    grads = []
    for weight in (0.0, 50.0):
        options = model_options('SFMNetGANModel', official_detached_perceptual=official)
        options['train']['perceptual_opt']['perceptual_weight'] = weight
        model = build_seeded_model(options)
        model.feed_data(face_batch())
        model.optimize_parameters(1)
        grads.append(generator_gradients(model))
    assert torch.equal(grads[0], grads[1]) is official


@pytest.mark.parametrize('official', [True, False])
def test_official_detached_frequency_fake_switch(official, build_seeded_model, face_batch, model_options):
    """Official code: D_frequency never learns from generated images, so its gradient ignores them."""
    grads = []
    for generator_seed in (1, 2):
        model = build_seeded_model(model_options('SFMNetGANModel', official_detached_frequency_fake=official))
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

@pytest.fixture(scope='session')
def stage_options(model_options):
    def stage_options(name, data_root, stage, pretrain=None):
        def dataset(split, **extra):
            return {'name': f'faces_{split}', 'type': 'PairedFaceDataset', 'dataroot_gt': f'{data_root}/{split}/gt',
                    'dataroot_lq': f'{data_root}/{split}/lq', 'io_backend': {'type': 'disk'}, **extra}

        opt = model_options(stage)
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

    return stage_options


@pytest.fixture(scope='module')
def face_data(tmp_path_factory, write_train_val_faces):
    root = tmp_path_factory.mktemp('faces')
    write_train_val_faces(str(root), 8, GT_SIZE, SCALE)
    return root


def last_validation_psnr(log):
    return float(re.findall(r'# psnr: ([0-9.]+)', log)[-1])


def test_option_files_the_tests_generate_validate(toy_base_options, stage_options):
    from sfmnet_plugin.config.option_schema import option_key_problems

    generated = [toy_base_options('/data'), stage_options('psnr', '/data', 'SFMNetModel'),
                 stage_options('gan', '/data', 'SFMNetGANModel', pretrain='/x.pth')]
    for opt in generated:
        assert option_key_problems(opt) == [], opt['name']


def test_both_stages_train_validate_resume_and_chain(face_data, tmp_path, read_training_log, run_launcher, write_yaml,
                                                     stage_options):
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


@pytest.mark.slow
@pytest.mark.parametrize('stage', ['SFMNetModel', 'SFMNetGANModel', 'SPARNet', 'SMLNet'])
def test_two_process_torchrun_matches_one_process(face_data, tmp_path, stage, free_port, read_training_log,
                                                  run_launcher, write_yaml, stage_options):
    """2 ranks x batch 1 see the same samples per step as 1 process x batch 2 (EnlargedSampler splits one
    permutation), DDP averages their gradients, and validation gathers every rank's images."""
    runs = tmp_path / 'runs'
    single = stage_options('single', face_data, stage)
    single['train']['total_iter'] = 2
    if stage == 'SPARNet':
        # BatchNorm statistics are per process under DDP (as they were per GPU under the official
        # DataParallel), so 2 x 1 images differ from 1 x 2 by design; InstanceNorm (SPARNetHD's) does not.
        single['network_g']['norm_type'] = 'in'
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
    if 'frequency_opt' in single['train']:  # the dual loss of SFMNet (and SMLNet) ran
        assert all(f'{term}:' in single_log for term in ('l_pix', 'l_pix_frequency_branch', 'l_amplitude', 'l_phase'))
    single_psnr = last_validation_psnr(single_log)
    ddp_log = read_training_log(runs / 'experiments' / 'ddp')
    assert 'world_size: 2' in ddp_log
    assert last_validation_psnr(ddp_log) == pytest.approx(single_psnr, abs=2e-3)


# ------------------------------------------------------------------------------- FaceSRModel with SPARNet

def test_face_sr_model_trains_sparnet_with_the_official_l1(build_seeded_model, face_batch, model_options):
    model = build_seeded_model(model_options('SPARNet'))
    assert type(model).__name__ == 'FaceSRModel'
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert set(log) == {'l_pix', 'l_total'}
    # SPARNet's loss: L1 on images in [-1, 1] (weight 2 on [0, 1] images gives the same value)
    official = torch.nn.functional.l1_loss(2 * model.output.detach() - 1, 2 * model.gt - 1)
    assert log['l_pix'] == pytest.approx(official.item(), rel=1e-5)


def test_face_sr_model_serves_any_registered_network(build_seeded_model, face_batch, model_options):
    """A BasicSR network (no SFMNet or SPARNet code involved) trains with the shared options."""
    options = model_options('SPARNet', mixed_precision='bf16', grad_clip_norm=0.5)
    options['network_g'] = {'type': 'SRVGGNetCompact', 'num_feat': 8, 'num_conv': 2, 'upscale': SCALE}
    model = build_seeded_model(options)
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    assert set(model.get_current_log()) == {'l_pix', 'l_total'}
    assert torch.nn.utils.get_total_norm([p.grad for p in model.net_g.parameters()]) <= 0.5 + 1e-4
    model.test()
    assert model.output.shape == model.gt.shape


def test_batchnorm_network_tests_with_running_statistics_and_ema_copies_them(build_seeded_model, face_batch,
                                                                             model_options):
    model = build_seeded_model(model_options('SPARNet', ema_decay=0.5))
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    ema_buffers = dict(model.net_g_ema.named_buffers())
    for name, buffer in model.net_g.named_buffers():  # BasicSR's EMA averaged only the parameters
        assert torch.equal(ema_buffers[name], buffer), name
    batch = face_batch(seed=3)
    model.feed_data(batch)
    model.test()
    together = model.output
    model.feed_data({'lq': batch['lq'][1:], 'gt': batch['gt'][1:]})
    model.test()
    assert torch.allclose(model.output[0], together[1], atol=1e-5)  # eval mode: no batch statistics


def test_sr_quantization_truncates_like_sparnet_or_rounds_like_basicsr():
    from sfmnet_plugin.models.face_sr_model import quantize_sr

    sr = torch.tensor([0.5, 1 / 255, 254.6 / 255, 1.2, -0.1]).view(1, 5, 1).repeat(3, 1, 1)
    assert quantize_sr(sr, 'truncate')[:, 0, 0].tolist() == [127, 1, 254, 255, 0]
    assert quantize_sr(sr, 'round')[:, 0, 0].tolist() == [128, 1, 255, 255, 0]


@pytest.fixture(scope='session')
def tiny_sparnet_options(repo_root, tiny_sparnet):
    def tiny_sparnet_options(name, face_data, tmp_path):
        """A child of the shipped SPARNet recipe that only shrinks it: the recipe's augmentation, init, loss,
        truncation and metrics run as they are."""
        return {'_base_': osp.join(repo_root, 'options', '_base_', 'sparnet_celeba_x8.yml'), 'name': name,
                'scale': SCALE, 'num_gpu': 0, 'manual_seed': 0,
                'datasets': {'train': {'name': 'faces_train', 'dataroot_gt': f'{face_data}/train/gt',
                                       'io_backend': {'type': 'disk'}, 'num_worker_per_gpu': 0,
                                       'batch_size_per_gpu': 2},
                             'val_helen': {'name': 'faces_val', 'dataroot_gt': f'{face_data}/val/gt',
                                           'dataroot_lq': f'{face_data}/val/lq', 'io_backend': {'type': 'disk'}}},
                'network_g': {key: value for key, value in tiny_sparnet.items() if key != 'type'},
                'train': {'total_iter': 4}, 'val': {'val_freq': 2},
                'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False}}

    return tiny_sparnet_options


@pytest.mark.slow
def test_sparnet_recipe_trains_resumes_and_tests_with_reports(face_data, tmp_path, free_port, read_training_log,
                                                              repo_root, run_launcher, write_yaml, tiny_sparnet,
                                                              tiny_sparnet_options):
    import cv2
    from basicsr.archs import build_network

    from sfmnet_plugin.metrics.face_psnr_ssim_metric import calculate_face_psnr

    runs = tmp_path / 'runs'
    train_opt = write_yaml(tmp_path / 'train_sparnet.yml', tiny_sparnet_options('sparnet_tiny', face_data, tmp_path))
    run_launcher(['basicsr/train.py', '-opt', str(train_opt)], runs)
    experiment = runs / 'experiments' / 'sparnet_tiny'
    log = read_training_log(experiment)
    assert 'l_pix' in log and '# psnr:' in log and '# ssim:' in log and 'Bicubic baseline on faces_val' in log
    run_launcher(['basicsr/train.py', '-opt', str(train_opt), '--auto_resume', '--force_yml', 'train:total_iter=6'],
                 runs)
    assert 'Resuming training from epoch' in read_training_log(experiment)
    checkpoint = experiment / 'models' / 'net_g_6.pth'
    assert checkpoint.is_file()

    test_opt = {'_base_': osp.join(repo_root, 'options', 'test_SPARNet_x8.yml'), 'name': 'sparnet_tiny_test',
                'scale': SCALE, 'num_gpu': 0,
                'datasets': {'_delete_': True, 'test_1': {'name': 'Faces', 'type': 'PairedFaceDataset',
                                                          'dataroot_gt': f'{face_data}/val/gt',
                                                          'dataroot_lq': f'{face_data}/val/lq',
                                                          'io_backend': {'type': 'disk'}}},
                'network_g': {key: value for key, value in tiny_sparnet.items() if key != 'type'},
                'path': {'pretrain_network_g': str(checkpoint)}}
    run_launcher(['basicsr/test.py', '-opt', str(write_yaml(tmp_path / 'test_sparnet.yml', test_opt))], runs)
    results = runs / 'results' / 'sparnet_tiny_test'
    # Two processes share the test images (BatchNorm in eval mode) and write the same report.
    ddp_opt = write_yaml(tmp_path / 'test_sparnet_ddp.yml', dict(test_opt, name='sparnet_tiny_test_ddp'))
    run_launcher(['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
                  'basicsr/test.py', '-opt', str(ddp_opt), '--launcher', 'pytorch'], runs)
    ddp_results = runs / 'results' / 'sparnet_tiny_test_ddp'
    (ddp_log,) = [name for name in os.listdir(ddp_results) if name.endswith('.log')]
    assert 'world_size: 2' in (ddp_results / ddp_log).read_text()
    assert (ddp_results / 'Faces_metrics.csv').read_text() == (results / 'Faces_metrics.csv').read_text()
    assert {'Faces_metrics.csv', 'Faces_summary.md', 'Faces_contact_sheet.png'} <= set(os.listdir(results))
    assert '| SPARNet |' in (results / 'Faces_summary.md').read_text()

    # The saved SR images are the network's output truncated to uint8 (SPARNet's test.py), and the CSV
    # holds their SPARNet-protocol PSNR.
    import csv

    net = build_network(dict(tiny_sparnet, official_init=False))
    net.load_state_dict(torch.load(checkpoint, weights_only=True)['params'])
    net.eval()
    with open(results / 'Faces_metrics.csv', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [row['image'] for row in rows] == ['face000', 'face001']
    for row in rows:
        lq = cv2.imread(f'{face_data}/val/lq/{row["image"]}.png')[..., ::-1] / 255.0
        with torch.no_grad():
            sr = net(torch.from_numpy(lq.copy()).permute(2, 0, 1)[None].float())[0].clamp(0, 1)
        expected = np.floor(sr.permute(1, 2, 0).numpy()[..., ::-1] * 255)
        saved = cv2.imread(str(results / 'visualization' / 'Faces' / f'{row["image"]}_sparnet_tiny_test.png'))
        assert np.mean(saved == expected) > 0.99 and np.abs(saved - expected).max() <= 1
        gt = cv2.imread(f'{face_data}/val/gt/{row["image"]}.png')
        assert float(row['psnr']) == pytest.approx(calculate_face_psnr(saved, gt, protocol='sparnet'), abs=1e-5)


def test_channels_last_option_trains_in_nhwc_and_saves_the_usual_checkpoint(build_seeded_model, face_batch,
                                                                            model_options):
    model = build_seeded_model(model_options('SFMNetModel', mixed_precision='bf16', channels_last=True))
    convs = [m for m in model.net_g.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert convs and all(conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in convs)
    plain = build_seeded_model(model_options('SFMNetModel', mixed_precision='bf16'))
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    assert all(np.isfinite(value) for value in model.get_current_log().values())
    assert model.net_g.state_dict().keys() == plain.net_g.state_dict().keys()


@pytest.mark.slow
def test_compile_option_compiles_in_place_and_keeps_the_checkpoint_keys(build_seeded_model, face_batch, model_options):
    options = model_options('SPARNet', compile=True)
    options['network_g'] = {'type': 'SRVGGNetCompact', 'num_feat': 8, 'num_conv': 2, 'upscale': SCALE}
    model = build_seeded_model(options)
    assert model.net_g._compiled_call_impl is not None  # nn.Module.compile(): the module itself, compiled
    keys = set(model.net_g.state_dict())
    assert not any(key.startswith('_orig_mod.') for key in keys)
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    assert np.isfinite(model.get_current_log()['l_pix'])
