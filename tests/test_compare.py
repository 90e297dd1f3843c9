"""The equal-budget comparison (sfmnet_plugin.tools.compare): its option files, budget and reports.

Training itself is covered by the launcher tests; here the parts that make the comparison fair and its table right.
"""
import copy
from os import path as osp

import pytest
from launch_helpers import REPO_ROOT

from sfmnet_plugin.option_files import load_merged_options
from sfmnet_plugin.reports import write_metrics_csv
from sfmnet_plugin.tools import compare


def test_every_network_with_demo_option_files_is_found_sfmnet_first():
    networks = compare.available_networks(REPO_ROOT)
    assert networks[0] == 'SFMNet' and 'SMLNet' in networks
    assert networks[1:] == sorted(networks[1:])


@pytest.mark.parametrize('network', [n for n in compare.available_networks(REPO_ROOT) if n != 'SFMNet'])
@pytest.mark.parametrize('stage', [0, 1], ids=['train', 'test'])
def test_demo_option_files_give_every_network_sfmnets_budget(network, stage):
    """The equal budget: same data, scale, seed, optimiser, schedule, iterations, validation and metrics; the network
    (and, for a single-output network, its model and loss) is what differs."""
    reference, candidate = (load_merged_options(osp.join(REPO_ROOT, compare.option_files(name)[stage]))
                            for name in ('SFMNet', network))
    assert candidate['network_g']['type'] == network and candidate['name'] != reference['name']
    assert candidate['network_g']['upscale'] == reference['network_g']['upscale'] == 8
    for key in ('datasets', 'scale', 'manual_seed', 'val', 'logger'):
        assert candidate[key] == reference[key], key
    if not stage:
        for key in ('optim_g', 'scheduler', 'total_iter', 'ema_decay', 'mixed_precision', 'grad_clip_norm'):
            assert candidate['train'][key] == reference['train'][key], key
    else:  # the test file loads the matching training run's weights
        assert f'demo_{network}_x8' in candidate['path']['pretrain_network_g']


def test_budget_overrides_move_the_learning_rate_drop_and_validate_only_at_the_end():
    assert compare.budget_overrides(300) == ['train:total_iter=300', 'train:scheduler:milestones=[240]',
                                             'val:val_freq=301', 'logger:save_checkpoint_freq=300']
    assert 'train:scheduler:milestones=[1]' in compare.budget_overrides(1)


def result_row(network, psnr, bicubic_psnr=21.5538):
    return {'network': network, 'parameters': 522_548, 'iterations': 300, 'images': 2, 'above_bicubic': 1, 'psnr': psnr,
            'ssim': 0.55, 'bicubic_psnr': bicubic_psnr, 'bicubic_ssim': 0.5285, 'train_seconds': 61.4,
            'load_average': 3.0}


def test_metric_means_from_a_test_runs_csv_and_the_written_reports(tmp_path):
    rows = [{'index': 0, 'image': 'a', 'psnr': 22.0, 'ssim': 0.5, 'bicubic_psnr': 21.0, 'bicubic_ssim': 0.4},
            {'index': 1, 'image': 'b', 'psnr': 24.0, 'ssim': 0.7, 'bicubic_psnr': 22.0, 'bicubic_ssim': 0.6}]
    csv_path = tmp_path / 'DemoFaces_test_metrics.csv'
    write_metrics_csv(str(csv_path), rows, ['psnr', 'ssim'])  # what SFMNetModel writes when testing
    means, count = compare.read_metric_means(str(csv_path))
    assert count == 2
    assert means == pytest.approx({'psnr': 23.0, 'ssim': 0.6, 'bicubic_psnr': 21.5, 'bicubic_ssim': 0.5,
                                   'above_bicubic': 2})

    md_path = compare.write_reports(str(tmp_path / 'out'), [result_row('SFMNet', 21.9), result_row('SMLNet', 22.1)])
    table = open(md_path, encoding='utf-8').read().splitlines()
    assert table[2] == '| Bicubic (PIL) | - | - | 21.5538 | 0.5285 | - | - |'
    assert table[4] == '| SMLNet | 522,548 | 300 | 22.1000 | 0.5500 | 1 of 2 | 61 s (3.0) |'
    assert open(tmp_path / 'out' / 'compare_x8.csv', encoding='utf-8').read().startswith('network,parameters,')


def test_runs_that_scored_different_faces_are_refused(monkeypatch, tmp_path):
    results = {'SFMNet': result_row('SFMNet', 21.9), 'SMLNet': result_row('SMLNet', 22.1, bicubic_psnr=20.0)}
    monkeypatch.setattr(compare, 'prepare_face_lmdbs', lambda *args, **kwargs: ('train', 'test'))
    monkeypatch.setattr(compare, 'train_and_test', lambda network, *args: copy.deepcopy(results[network]))
    with pytest.raises(RuntimeError, match='different test faces'):
        compare.compare(['SFMNet', 'SMLNet'], 300, str(tmp_path), REPO_ROOT)
    assert not (tmp_path / 'compare_x8.md').exists()


def test_append_keeps_other_networks_run_earlier_with_the_same_budget(monkeypatch, tmp_path):
    compare.write_reports(str(tmp_path), [result_row('SFMNet', 21.9), result_row('SMLNet', 20.0)])
    monkeypatch.setattr(compare, 'prepare_face_lmdbs', lambda *args, **kwargs: ('train', 'test'))
    monkeypatch.setattr(compare, 'train_and_test', lambda network, *args: result_row(network, 22.5))
    rows = compare.compare(['SMLNet', 'SPARNet'], 300, str(tmp_path), REPO_ROOT, append=True)
    assert [(row['network'], row['psnr']) for row in rows] == [('SFMNet', 21.9), ('SMLNet', 22.5), ('SPARNet', 22.5)]
    assert rows[0] == result_row('SFMNet', 21.9)  # read back with its types
    rows = compare.compare(['SPARNet'], 500, str(tmp_path), REPO_ROOT, append=True)  # another budget: not mixed
    assert [row['network'] for row in rows] == ['SPARNet']
