"""Fixtures of the launcher tests: a tiny SFMNet run on real-face pairs."""
from functools import partial

import pytest

SCALE, SIZE = 4, 32
TINY_SFMNET = {'type': 'SFMNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
               'keep_unused_attention': False}


def _run_options(set_dotted, data_root, **changes):
    """A tiny, complete training run on ``data_root/{train,val}/{gt,lq}``."""
    def dataset(split, **extra):
        return {'name': f'faces_{split}', 'type': 'PairedFaceDataset', 'dataroot_gt': f'{data_root}/{split}/gt',
                'dataroot_lq': f'{data_root}/{split}/lq', 'io_backend': {'type': 'disk'}, **extra}

    opt = {'name': 'preflight', 'model_type': 'SFMNetModel', 'scale': SCALE, 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'train': dataset('train', num_worker_per_gpu=0, batch_size_per_gpu=2, dataset_enlarge_ratio=1,
                                         prefetch_mode=None),
                        'val': dataset('val')},
           'network_g': dict(TINY_SFMNET),
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
           'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
                     'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5}, 'total_iter': 2,
                     'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
           'val': {'val_freq': 2, 'save_img': False,
                   'metrics': {'psnr': {'type': 'calculate_face_psnr', 'protocol': 'sfmnet', 'crop_border': 2}}},
           'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': True}}
    return set_dotted(opt, changes)


@pytest.fixture(scope='session')
def run_options(set_dotted):
    """``run_options(data_root, **changes)``: see :func:`_run_options` (``a__b=value`` sets ``options[a][b]``)."""
    return partial(_run_options, set_dotted)


@pytest.fixture(scope='session')
def write_run_faces(write_train_val_faces):
    """``write_run_faces(root, train_count)``: real-face pairs of the size and scale of ``run_options``."""
    return lambda root, train_count: write_train_val_faces(root, train_count, SIZE, SCALE)
