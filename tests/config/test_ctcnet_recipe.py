"""The numbers CTCNet's option files trace to the official code (docs/fidelity.md §C5-§C6)."""
from os import path as osp

from sfmnet_plugin.config.option_files import load_merged_options

OPTIONS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'options')


def test_training_recipe_numbers():
    opt = load_merged_options(osp.join(OPTIONS, 'train_CTCNet_x8.yml'))
    train, data = opt['train'], opt['datasets']['train']
    assert opt['network_g'] == {'type': 'CTCNet', 'upscale': 8, 'sigmoid_gate': False, 'official_init': True}
    assert train['optim_g']['lr'] == 2e-4 and train['optim_g']['betas'] == [0.9, 0.99]
    assert train['scheduler']['milestones'] == [] and train['ema_decay'] == 0
    assert data['batch_size_per_gpu'] == 10 and data['meta_info_file'].endswith('ctcnet_18000.txt')
    assert train['total_iter'] == 101 * (18_000 // 10)  # range(0, 100 + 1) epochs of 1,800 iterations
    assert train['pixel_opt'] == {'type': 'L1Loss', 'loss_weight': 2.0, 'reduction': 'mean'}  # L1 in [-1, 1]
    assert opt['manual_seed'] == 123


def test_test_options_score_with_the_official_protocol():
    opt = load_merged_options(osp.join(OPTIONS, 'test_CTCNet_x8.yml'))
    assert opt['val']['sr_quantization'] == 'truncate'
    assert {m['protocol'] for name, m in opt['val']['metrics'].items() if not name.endswith('_sfmnet')} == {'sparnet'}
    assert opt['network_g']['upscale'] == 8 and not opt['network_g']['official_init']
    assert all('LR_x8' in d['dataroot_lq'] for d in opt['datasets'].values())
