"""DICModel: the official objective (L1 on every step's SR, MSE on every step's heatmaps), the frozen hourglass,
the pretrained hourglass option, and a 3-iteration run through ``python basicsr/train.py`` on faces prepared with
``--landmarks 68`` (dlib's real landmarks of the public-domain face photos)."""
import copy
import os
import re

import pytest
import torch

from sfmnet_cli.folder_to_lmdb import main as folder_to_lmdb
from sfmnet_plugin.config.option_files import load_merged_options

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_OPTIONS = os.path.join(REPO_ROOT, 'options', 'train_DIC_x8.yml')
TINY = {'type': 'DIC', 'upscale': 8, 'num_features': 8, 'num_groups': 2, 'num_steps': 3, 'hg_num_feature': 16,
        'num_fusion_block': 1, 'official_init': True}


def dic_options(path=None, **train_overrides):
    """The shipped recipe with a tiny DIC, as BasicSR would hand it to the model."""
    opt = load_merged_options(TRAIN_OPTIONS)
    opt.update(is_train=True, dist=False, num_gpu=0, rank=0, world_size=1, network_g=dict(TINY), path=path or {},
               val={'metrics': {}})
    opt['train'].update(train_overrides)
    return opt


def dic_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(2, 3, 16, 16, generator=generator), 'gt': torch.rand(2, 3, 128, 128, generator=generator),
            'heatmap': torch.rand(2, 68, 32, 32, generator=generator)}


def test_one_step_sums_the_sr_and_heatmap_losses_of_every_step(build_seeded_model):
    model = build_seeded_model(dic_options())
    batch = dic_batch()
    net_g = copy.deepcopy(model.net_g)
    model.feed_data(batch)
    model.optimize_parameters(1)
    log = model.get_current_log()
    sr_steps, heatmaps = net_g(batch['lq'], return_steps=True)
    expected = {'l_pix': sum((sr - batch['gt']).abs().mean() for sr in sr_steps),
                'l_heatmap': 0.1 * sum(((heatmap - batch['heatmap']) ** 2).mean() for heatmap in heatmaps)}
    expected['l_total'] = expected['l_pix'] + expected['l_heatmap']
    for name, value in expected.items():
        assert log[name] == pytest.approx(float(value.detach()), rel=1e-5), name


def test_the_hourglass_is_frozen_until_the_release_iteration_but_in_the_optimizer(build_seeded_model):
    model = build_seeded_model(dic_options(release_hg_grad_iter=1))
    assert sum(len(group['params']) for group in model.optimizer_g.param_groups) == len(list(
        model.net_g.parameters()))
    hourglass = copy.deepcopy(model.net_g.HG.state_dict())
    first_block = copy.deepcopy(model.net_g.first_block.state_dict())
    model.feed_data(dic_batch())
    model.optimize_parameters(1)  # iteration 1 <= 1: frozen
    assert all(torch.equal(t, hourglass[k]) for k, t in model.net_g.HG.state_dict().items())
    assert any(not torch.equal(t, first_block[k]) for k, t in model.net_g.first_block.state_dict().items())
    model.optimize_parameters(2)
    assert any(not torch.equal(t, hourglass[k]) for k, t in model.net_g.HG.state_dict().items())


def test_the_pretrained_hourglass_is_loaded_and_a_missing_one_names_the_option(tmp_path, build_seeded_model):
    torch.manual_seed(3)
    source = build_seeded_model(dic_options(), seed=3).net_g.HG
    path = tmp_path / 'FB_HG_68_CelebA.pth'
    torch.save({f'module.{key}': t for key, t in source.state_dict().items()}, path)  # a raw state dict
    model = build_seeded_model(dic_options(path={'pretrain_network_hourglass': str(path)}))
    assert all(torch.equal(t, source.state_dict()[k]) for k, t in model.net_g.HG.state_dict().items())
    with pytest.raises(FileNotFoundError, match=r"path.pretrain_network_hourglass: '.*none.pth' not found.*"
                                                r"FB_HG_68_CelebA.pth.*pretrain_network_hourglass: ~"):
        build_seeded_model(dic_options(path={'pretrain_network_hourglass': str(tmp_path / 'none.pth')}))
    torch.save({'conv_in.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='is not a DIC feedback hourglass of this size'):
        build_seeded_model(dic_options(path={'pretrain_network_hourglass': str(tmp_path / 'other.pth')}))


def test_the_heatmap_loss_needs_landmarks_in_the_data(build_seeded_model):
    model = build_seeded_model(dic_options())
    batch = dic_batch()
    del batch['heatmap']
    model.feed_data(batch)
    with pytest.raises(ValueError, match='set landmarks: 68 in datasets.train'):
        model.optimize_parameters(1)


def test_a_three_iteration_run_on_faces_prepared_with_landmarks_logs_the_heatmap_loss(
        tmp_path, write_real_face_pairs, write_yaml, run_launcher, read_training_log):
    faces = tmp_path / 'faces'
    write_real_face_pairs(str(faces), 4, 128, 8)
    for split, folder, extra in (('HR', 'gt', ['--landmarks', '68']), ('LR_x8', 'lq', [])):
        assert folder_to_lmdb([str(faces / folder), str(tmp_path / f'{split}.lmdb'), '--workers', '1', *extra]) == 0
    data = {'dataroot_gt': str(tmp_path / 'HR.lmdb'), 'dataroot_lq': str(tmp_path / 'LR_x8.lmdb')}
    options = write_yaml(tmp_path / 'tiny_dic.yml', {
        '_base_': TRAIN_OPTIONS, 'name': 'tiny_dic', 'num_gpu': 0,
        'datasets': {'train': {**data, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2},
                     'val_celeba': {**data, 'name': 'faces'}},
        'network_g': {'_delete_': True, **TINY},
        'path': {'pretrain_network_hourglass': None},
        'train': {'total_iter': 3, 'release_hg_grad_iter': 1},
        'val': {'val_freq': 3},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 3, 'use_tb_logger': False},
    })
    runs = tmp_path / 'runs'
    run_launcher(['basicsr/train.py', '-opt', str(options)], runs)
    log = read_training_log(runs / 'experiments' / 'tiny_dic')
    assert len(re.findall(r'l_heatmap: [0-9.e+-]+', log)) == 3 and '# psnr:' in log
    assert (runs / 'experiments' / 'tiny_dic' / 'models' / 'net_g_3.pth').is_file()
