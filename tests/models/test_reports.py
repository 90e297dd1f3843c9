"""What a test run writes for people: per-image CSV, Markdown summary, contact sheet (contents, not existence)."""
import csv

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_plugin.models.reports import CONTACT_SHEET_COLUMNS, contact_sheet, summarize

SCALE, SIZE = 4, 32
TINY_SFMNET = {'type': 'SFMNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2}


def test_contact_sheet_layout_and_tiles():
    rng = np.random.default_rng(0)
    panels = [(f'img{i}', (rng.integers(0, 255, (8, 8, 3), np.uint8),
                           *(rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8) for _ in range(3)))) for i in range(2)]
    sheet = contact_sheet(panels, gap=2)
    band = 18  # every row: a band with the image name, a band with the column roles, the tiles
    assert sheet.shape == (2 * (2 * band + SIZE) + 2, len(CONTACT_SHEET_COLUMNS) * SIZE + 3 * 2, 3)
    # second row, third column (SR) holds the SR image under its label bands
    top, left = 2 * band + SIZE + 2 + 2 * band, 2 * (SIZE + 2)
    np.testing.assert_array_equal(sheet[top:top + SIZE, left:left + SIZE], panels[1][1][2])
    # the LR tile is the LR enlarged by pixel repetition
    np.testing.assert_array_equal(sheet[2 * band:2 * band + SIZE, :SIZE], np.kron(panels[0][1][0], np.ones((4, 4, 1))))


def test_contact_sheet_names_are_whole_and_the_sr_column_is_named_by_the_network():
    tile = np.full((128, 128, 3), 128, np.uint8)
    panels = [('grace_hopper_f0_v3', (tile[:16, :16], tile, tile, tile))]
    sheet = contact_sheet(panels, columns=('LR', 'Bicubic', 'SFMNet', 'HR'))
    name_band = sheet[:18]
    ink = np.nonzero((name_band < 200).any(axis=(0, 2)))[0]
    assert ink.max() < 2 * 128  # the whole name, in the first half of the row: nothing cut at a tile's edge
    generic = contact_sheet(panels)
    roles = slice(18, 36)
    sr_column = slice(2 * 130, 2 * 130 + 128)
    assert (sheet[roles, sr_column] != generic[roles, sr_column]).any()  # "SFMNet", not "SR"
    other = np.ones(sheet.shape[1], bool)
    other[sr_column] = False
    np.testing.assert_array_equal(sheet[:, other], generic[:, other])


def test_summary_means():
    rows = [{'image': 'a', 'psnr': 20.0, 'bicubic_psnr': 18.0}, {'image': 'b', 'psnr': 22.0, 'bicubic_psnr': 19.0}]
    assert summarize(rows, ['psnr']) == {'psnr': 21.0, 'bicubic_psnr': 18.5}


@pytest.fixture
def test_run(tmp_path, run_launcher, write_real_face_pairs, write_yaml):
    write_real_face_pairs(str(tmp_path / 'faces'), count=3, gt_size=SIZE, scale=SCALE, seed=2)
    torch.manual_seed(0)
    from basicsr.archs import build_network

    checkpoint = tmp_path / 'net_g.pth'
    torch.save({'params': build_network(dict(TINY_SFMNET)).state_dict()}, checkpoint)
    options = {
        'name': 'report_test', 'model_type': 'SFMNetModel', 'scale': SCALE, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'test_1': {'name': 'Faces', 'type': 'PairedFaceDataset', 'io_backend': {'type': 'disk'},
                                'dataroot_gt': str(tmp_path / 'faces' / 'gt')}},
        'network_g': TINY_SFMNET,
        'path': {'pretrain_network_g': str(checkpoint), 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None, 'contact_sheet': 2,
                'metrics': {'psnr': {'type': 'calculate_face_psnr', 'protocol': 'sfmnet', 'crop_border': 2}}},
    }
    run_launcher(['sfmnet_plugin/test.py', '-opt', str(write_yaml(tmp_path / 'test.yml', options))], tmp_path)
    return tmp_path, tmp_path / 'results' / 'report_test'


def test_test_run_writes_csv_summary_and_contact_sheet(test_run):
    root, results = test_run
    from sfmnet_plugin.metrics.face_psnr_ssim_metric import calculate_face_psnr

    with open(results / 'Faces_metrics.csv', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [r['image'] for r in rows] == ['face000', 'face001', 'face002']
    for row in rows:
        gt = cv2.imread(str(root / 'faces' / 'gt' / f'{row["image"]}.png'))
        sr = cv2.imread(str(results / 'visualization' / 'Faces' / f'{row["image"]}_report_test.png'))
        assert float(row['psnr']) == pytest.approx(calculate_face_psnr(sr, gt, crop_border=2), abs=1e-5)
        # the baseline: PIL bicubic of the LR that the dataset made from the HR
        gt_rgb = Image.open(root / 'faces' / 'gt' / f'{row["image"]}.png')
        lr = gt_rgb.resize((SIZE // SCALE,) * 2, Image.BICUBIC)
        bicubic_bgr = np.ascontiguousarray(np.array(lr.resize((SIZE,) * 2, Image.BICUBIC))[..., ::-1])
        assert float(row['bicubic_psnr']) == pytest.approx(calculate_face_psnr(bicubic_bgr, gt, crop_border=2),
                                                           abs=1e-4)
    summary = (results / 'Faces_summary.md').read_text()
    mean = np.mean([float(r['psnr']) for r in rows])
    bicubic_mean = np.mean([float(r['bicubic_psnr']) for r in rows])
    assert f'| SFMNet | {mean:.4f} |' in summary and f'| Bicubic (PIL) | {bicubic_mean:.4f} |' in summary
    sheet = cv2.imread(str(results / 'Faces_contact_sheet.png'))
    assert sheet.shape[0] == 2 * (2 * 18 + SIZE) + 2  # contact_sheet: 2 rows
    sr = cv2.imread(str(results / 'visualization' / 'Faces' / 'face001_report_test.png'))
    top, left = 2 * 18 + SIZE + 2 + 2 * 18, 2 * (SIZE + 2)
    np.testing.assert_array_equal(sheet[top:top + SIZE, left:left + SIZE], sr)
