"""NME with DIC's hourglass as the landmark detector: the checkpoints it reads, the heatmap-peak convention of the
official solver, the metric and the benchmark's ``--landmarks dic --landmark-checkpoint``."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_cli.benchmark import main as benchmark_main
from sfmnet_plugin.archs.dic_arch import DIC
from sfmnet_plugin.checkpoints.io import save_checkpoint_file
from sfmnet_plugin.inference import dic_landmarks as detector
from sfmnet_plugin.metrics.face_landmark_metric import calculate_landmark_nme, inter_ocular_distance

TINY = {'type': 'DIC', 'upscale': 8, 'num_features': 4, 'num_groups': 1, 'num_steps': 2, 'hg_num_feature': 16,
        'num_fusion_block': 1}


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """One tiny DIC saved three ways: the plugin's file, an official training dict, the hourglass alone."""
    root = tmp_path_factory.mktemp('dic_landmarks')
    torch.manual_seed(0)
    net = DIC(**{k: v for k, v in TINY.items() if k != 'type'}, official_init=True)
    state_dict = net.state_dict()
    paths = {'plugin': root / 'net_g.safetensors', 'official': root / 'best_ckp.pth', 'hourglass': root / 'FB_HG.pth'}
    save_checkpoint_file({'params': state_dict}, str(paths['plugin']), {'network_g': TINY})
    torch.save({'step': 1, 'state_dict': {f'module.{k}': t for k, t in state_dict.items()}}, paths['official'])
    torch.save(net.HG.state_dict(), paths['hourglass'])
    return net, {name: str(path) for name, path in paths.items()}


def test_every_kind_of_checkpoint_gives_the_same_hourglass(checkpoints):
    net, paths = checkpoints
    for path in paths.values():
        hourglass = detector.load_dic_hourglass(path)
        assert all(torch.equal(t, net.HG.state_dict()[k]) for k, t in hourglass.state_dict().items())
    torch.save({'conv_in.0.weight': torch.zeros(1)}, paths['hourglass'] + '.other')
    with pytest.raises(ValueError, match='holds no DIC feedback hourglass'):
        detector.load_dic_hourglass(paths['hourglass'] + '.other')


def test_landmarks_are_the_heatmap_peaks_times_4(monkeypatch):
    heatmaps = torch.zeros(1, 68, 32, 32)
    for point in range(68):
        heatmaps[0, point, point % 32, (3 * point) % 32] = 1.0  # row y, column x
    monkeypatch.setattr(detector, 'load_dic_hourglass', lambda path: lambda image, hidden=None: (heatmaps, None))
    points = detector.dic_landmarks(np.zeros((128, 128, 3), np.uint8), 'any.pth')
    expected = np.array([[(3 * p) % 32 * 4, p % 32 * 4] for p in range(68)], dtype=np.float64)
    np.testing.assert_array_equal(points, expected)
    with pytest.raises(ValueError, match='multiples of 64'):
        detector.dic_landmarks(np.zeros((96, 96, 3), np.uint8), 'any.pth')


def test_the_nme_with_the_dic_detector(checkpoints, tmp_path, write_real_face_pairs):
    _, paths = checkpoints
    faces = write_real_face_pairs(str(tmp_path), 2, 128, 8)
    hr, sr = (np.asarray(Image.open(f'{faces}/gt/face00{i}.png').convert('RGB'))[..., ::-1].copy() for i in (0, 1))
    dic_detector = detector.dic_landmark_detector(paths['plugin'])
    assert calculate_landmark_nme(hr, hr, detector=dic_detector) == 0
    hr_points = detector.dic_landmarks(hr[..., ::-1].copy(), paths['plugin'])
    sr_points = detector.dic_landmarks(sr[..., ::-1].copy(), paths['plugin'])
    distance = inter_ocular_distance(hr_points)
    if distance > 0:  # an untrained hourglass may put both eye corners on one grid point
        expected = np.linalg.norm(sr_points - hr_points, axis=1).mean() / distance
        assert calculate_landmark_nme(sr, hr, detector=dic_detector) == pytest.approx(expected)
    with pytest.raises(ValueError, match="unknown detector 'dic'; give 'dlib' or a callable"):
        calculate_landmark_nme(sr, hr, detector='dic')
    with pytest.raises(FileNotFoundError, match='landmark checkpoint'):
        detector.dic_landmark_detector(str(tmp_path / 'missing.pth'))


def test_benchmark_cli_scores_nme_with_a_dic_checkpoint(checkpoints, tmp_path, capsys, write_real_face_pairs):
    _, paths = checkpoints
    faces = write_real_face_pairs(str(tmp_path / 'faces'), 2, 128, 8)
    # a trained hourglass puts the outer eye corners apart; this untrained one may not, so the table only has to
    # exist with its column (the formula is checked above)
    code = benchmark_main(['--gt', f'{faces}/gt', '--output', str(tmp_path / 'out'), '--bicubic', '--metrics', 'nme',
                           '--landmarks', 'dic', '--landmark-checkpoint', paths['official'], '--latency-repeats', '0',
                           '--no-progress'])
    assert code == 0
    with open(tmp_path / 'out' / 'table.csv', newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert rows[0]['method'] == 'Bicubic' and 'nme' in rows[0]
    assert 'NME (DIC HG)' in (tmp_path / 'out' / 'table.md').read_text()
    with pytest.raises(SystemExit):
        benchmark_main(['--gt', f'{faces}/gt', '--output', str(tmp_path / 'o2'), '--bicubic', '--landmarks', 'dic'])
    assert '--landmark-checkpoint go together' in capsys.readouterr().err


def test_the_official_evaluation_hourglass_is_read_as_eval_landmark_reads_it(tmp_path):
    from sfmnet_plugin.archs.dic_blocks import StackedHourGlass

    torch.manual_seed(0)
    network = StackedHourGlass(num_feature=16, num_stack=2).eval()
    path = tmp_path / 'HG_68_CelebA.pth'
    torch.save(network.state_dict(), path)  # eval_landmark.py loads a bare state dict strictly
    loaded = detector.load_dic_hourglass(str(path))
    assert isinstance(loaded, StackedHourGlass) and loaded.num_stack == 2
    face = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    image = torch.from_numpy(face.transpose(2, 0, 1).copy()).float()[None] / 255 - torch.tensor(
        (0.509, 0.424, 0.378)).view(1, 3, 1, 1)
    with torch.no_grad():
        heatmaps = network(image)[0].numpy()
    np.testing.assert_array_equal(detector.dic_landmarks(face, str(path)), detector.evaluation_peaks(heatmaps))
    # eval_landmark.get_peak: the peak x 4, one pixel towards the second-highest value
    heatmap = np.zeros((1, 32, 32))
    heatmap[0, 5, 7], heatmap[0, 4, 9] = 2.0, 1.0
    np.testing.assert_array_equal(detector.evaluation_peaks(heatmap), [[29, 19]])
