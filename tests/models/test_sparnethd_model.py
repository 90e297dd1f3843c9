"""SPARNetHDModel: the official objective term by term, the whole-state EMA, and a tiny GAN run through
``python basicsr/train.py`` with checkpoints of G, G_ema and D and ``--auto_resume``."""
import copy
import os
import re
from os import path as osp

import pytest
import torch

from sfmnet_plugin.config.option_files import load_merged_options
from sfmnet_plugin.inference import FaceRestorer

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # TRAIN_OPTIONS, at import time
SIZE = 64
TINY_G = {'type': 'SPARNetHD', 'min_ch': 4, 'max_ch': 16, 'in_size': SIZE, 'out_size': SIZE, 'min_feat_size': 16,
          'res_depth': 1, 'bottleneck_size': 16, 'official_init': True}
TINY_D = {'type': 'MultiScalePatchDiscriminator', 'base_ch': 8, 'max_ch': 16, 'n_layers': 2, 'num_D': 2,
          'official_init': True}
RANDOM_VGG = {'vgg_weights_path': None, 'random_backbone_for_tests': True}
TRAIN_OPTIONS = osp.join(REPO_ROOT, 'options', 'train_SPARNetHD_x1.yml')


def model_options(**train_overrides):
    """The shipped recipe (train_SPARNetHD_x1.yml) with tiny networks, as BasicSR would hand it to the model."""
    opt = load_merged_options(TRAIN_OPTIONS)
    opt.update(is_train=True, dist=False, num_gpu=0, rank=0, world_size=1, network_g=dict(TINY_G),
               network_d=dict(TINY_D), path={}, val={'metrics': {}})
    opt['train']['perceptual_opt'].update(RANDOM_VGG)
    opt['train'].update(train_overrides)
    return opt


def face_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 3, SIZE, SIZE, generator=generator)
    return {'lq': (gt + 0.1 * torch.randn(gt.shape, generator=generator)).clamp(0, 1), 'gt': gt}


def test_one_step_computes_the_official_objective_term_by_term(build_seeded_model):
    model = build_seeded_model(model_options(perceptual_min_size=0))
    batch = face_batch()
    # Copies of G and D before the step: the spectral norms' power iterations run in the same order on them.
    net_g, net_d = copy.deepcopy(model.net_g), copy.deepcopy(model.net_d)
    vgg = copy.deepcopy(model.cri_perceptual)
    model.feed_data(batch)
    model.optimize_parameters(1)
    log = model.get_current_log()

    output = net_g(batch['lq'])
    fake, real = net_d(output), net_d(batch['gt'])
    expected = {
        'l_pix': 200 * (output - batch['gt']).abs().mean(),  # = 100 x L1 on [-1, 1] images
        'l_percep': vgg(output, batch['gt'])[0],
        # 10 x (1 / scales) x sum over scales of the summed L1 of the feature maps (not the logits)
        'l_g_fm': 10 * sum(sum((f - r).abs().mean() for f, r in zip(fs[:-1], rs[:-1]))
                           for fs, rs in zip(fake, real)) / len(fake),
        'l_g_gan': -sum(fs[-1].mean() for fs in fake) / len(fake),
    }
    expected['l_g_total'] = sum(expected.values())
    with torch.no_grad():
        real_d, fake_d = net_d(batch['gt']), net_d(output.detach())
    expected['l_d_real'] = 0.5 * sum(torch.relu(1 - s[-1]).mean() for s in real_d) / len(real_d)
    expected['l_d_fake'] = 0.5 * sum(torch.relu(1 + s[-1]).mean() for s in fake_d) / len(fake_d)
    for name, value in expected.items():
        assert log[name] == pytest.approx(float(value.detach()), rel=1e-5, abs=1e-6), name
    assert {'out_d_real', 'out_d_fake'} <= set(log)


def test_ema_averages_the_whole_state_including_spectral_norm_vectors(build_seeded_model):
    model = build_seeded_model(model_options(perceptual_min_size=0))
    before = {name: tensor.clone() for name, tensor in model.net_g.state_dict().items()}
    assert all(torch.equal(before[name], value) for name, value in model.net_g_ema.state_dict().items())
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    after = model.net_g.state_dict()
    ema = model.net_g_ema.state_dict()
    u_vectors = [name for name in ema if name.endswith('weight_u')]
    assert u_vectors and any(not torch.equal(before[name], after[name]) for name in u_vectors)
    for name, value in ema.items():  # BasicSR's model_ema would leave the u/v buffers at their initial values
        torch.testing.assert_close(value, 0.999 * before[name] + 0.001 * after[name], rtol=1e-6, atol=1e-7)

    lagging = build_seeded_model(model_options(perceptual_min_size=0, official_ema_before_g_step=True))
    start = {name: tensor.clone() for name, tensor in lagging.net_g.state_dict().items()}
    lagging.feed_data(face_batch())
    lagging.optimize_parameters(1)
    for name, value in lagging.net_g_ema.state_dict().items():  # averaged before G moved: still the start
        torch.testing.assert_close(value, start[name], rtol=1e-6, atol=1e-7)


def test_perceptual_inputs_narrower_than_224_are_resized_as_the_official_code(build_seeded_model):
    model = build_seeded_model(model_options())
    seen = []
    original = model.cri_perceptual.forward
    model.cri_perceptual.forward = lambda x, gt: (seen.append((x.shape, gt.shape)), original(x, gt))[1]
    model.feed_data(face_batch())
    model.optimize_parameters(1)
    assert seen == [(torch.Size([2, 3, 224, 224]), torch.Size([2, 3, 224, 224]))]


def test_the_recipe_numbers():
    opt = load_merged_options(TRAIN_OPTIONS)
    train = opt['train']
    assert opt['model_type'] == 'SPARNetHDModel' and opt['scale'] == 1
    assert train['pixel_opt']['loss_weight'] == 200  # 100 on [-1, 1]
    assert train['perceptual_opt']['layer_weights'] == dict.fromkeys(
        ['conv1_2', 'conv2_2', 'conv3_4', 'conv4_4', 'conv5_4'], 1.0)
    assert train['perceptual_opt']['use_input_norm'] and not train['perceptual_opt']['range_norm']
    assert train['feature_matching_opt']['loss_weight'] == 10 and train['gan_opt']['gan_type'] == 'hinge'
    assert train['d_loss_weight'] == 0.5 and train['ema_decay'] == 0.999
    assert train['optim_g']['lr'] == 1e-4 and train['optim_d']['lr'] == 4e-4
    assert train['optim_g']['betas'] == train['optim_d']['betas'] == [0.5, 0.99]
    assert opt['datasets']['train']['batch_size_per_gpu'] == 2
    assert opt['network_g']['norm_type'] == 'in' and opt['network_g']['spectral_norm']


# ------------------------------------------------------------------------------- through basicsr/train.py

@pytest.fixture(scope='module')
def face_folders(tmp_path_factory, write_train_val_faces):
    root = tmp_path_factory.mktemp('hd_faces')
    write_train_val_faces(str(root), 6, SIZE, 1)
    return root


def tiny_run_options(data_root):
    """A child of the shipped train_SPARNetHD_x1.yml: tiny networks, 64x64 faces, 4 iterations."""
    small_degradation = {'gaussian_sigma_range': [0.5, 2], 'average_kernel_range': [3, 5],
                         'median_kernel_range': [3, 5], 'motion_kernel_range': [3, 7], 'down_size_range': [8, 31]}

    def dataset(split, **extra):
        return {'name': f'faces_{split}', 'dataroot_gt': f'{data_root}/{split}/gt', 'io_backend': {'type': 'disk'},
                'hr_size': SIZE, 'degradation': small_degradation, **extra}

    return {
        '_base_': TRAIN_OPTIONS, 'name': 'tiny_sparnethd', 'num_gpu': 0,
        'datasets': {'train': dataset('train', num_worker_per_gpu=0, batch_size_per_gpu=2),
                     'val': dataset('val', num_images=2, degradation_seed=0)},
        'network_g': {'_delete_': True, **TINY_G}, 'network_d': {'_delete_': True, **TINY_D},
        # 224-px VGG passes would dominate a CPU test; the resize has its own test above.
        'train': {'total_iter': 4, 'perceptual_opt': RANDOM_VGG, 'perceptual_min_size': 0},
        'val': {'val_freq': 2},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }


def test_tiny_gan_run_logs_every_term_saves_g_ema_d_and_resumes(face_folders, tmp_path, read_training_log,
                                                                run_launcher, write_yaml):
    runs = tmp_path / 'runs'
    options = write_yaml(tmp_path / 'tiny_sparnethd.yml', tiny_run_options(face_folders))
    run_launcher(['basicsr/train.py', '-opt', str(options)], runs)
    experiment = runs / 'experiments' / 'tiny_sparnethd'
    log = read_training_log(experiment)
    for term in ('l_pix', 'l_percep', 'l_g_fm', 'l_g_gan', 'l_g_total', 'l_d_real', 'l_d_fake', 'out_d_real',
                 'out_d_fake'):
        assert re.search(rf'{term}: [-0-9.e+]+', log), term
    assert '# psnr:' in log and 'Use Exponential Moving Average with decay: 0.999' in log
    models = set(os.listdir(experiment / 'models'))
    assert {'net_g_2.pth', 'net_g_4.pth', 'net_d_2.pth', 'net_d_4.pth', 'net_g_latest.pth'} <= models
    generator = torch.load(experiment / 'models' / 'net_g_4.pth', weights_only=True)
    assert set(generator) == {'params', 'params_ema', 'network_g'}  # the options travel with the weights
    assert generator['network_g']['type'] == 'SPARNetHD'
    assert any(not torch.equal(generator['params'][k], generator['params_ema'][k]) for k in generator['params'])
    assert any(key.endswith('weight_u') for key in torch.load(experiment / 'models' / 'net_d_4.pth',
                                                              weights_only=True)['params'])

    run_launcher(['basicsr/train.py', '-opt', str(options), '--auto_resume', '--force_yml', 'train:total_iter=6'],
                 runs)
    assert 'Resuming training from epoch' in read_training_log(experiment)
    assert {'net_g_6.pth', 'net_d_6.pth'} <= set(os.listdir(experiment / 'models'))

    # The EMA generator is what the inference API loads by default.
    restorer = FaceRestorer(str(experiment / 'models' / 'net_g_6.pth'), network=TINY_G, device='cpu')
    restored = restorer.restore(torch.rand(1, 3, SIZE, SIZE))
    assert restored.shape == (1, 3, SIZE, SIZE) and torch.isfinite(restored).all()


def test_feature_matching_loss_checks_its_inputs():
    from sfmnet_plugin.losses.feature_matching_loss import MultiScaleFeatureMatchingLoss

    features = [[torch.ones(1, 2, 4, 4), torch.zeros(1, 1, 2, 2)]]
    shifted = [[torch.full((1, 2, 4, 4), 3.0), torch.ones(1, 1, 2, 2)]]
    assert MultiScaleFeatureMatchingLoss(loss_weight=10)(shifted, features) == pytest.approx(20)  # logits ignored
    assert MultiScaleFeatureMatchingLoss(criterion='l2')(shifted, features) == pytest.approx(4)
    with pytest.raises(ValueError, match='same non-zero number of scales'):
        MultiScaleFeatureMatchingLoss()(features, features * 2)
    with pytest.raises(ValueError, match='return_features=True'):
        MultiScaleFeatureMatchingLoss()([torch.ones(1)], [torch.ones(1)])
    with pytest.raises(ValueError, match='criterion'):
        MultiScaleFeatureMatchingLoss(criterion='l3')
