"""The comparison benchmark: one test set x several methods -> table, per-image CSV, contact sheet, plot."""
import csv
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network
from PIL import Image

from sfmnet_cli import benchmark as benchmark_cli
from sfmnet_cli import infer
from sfmnet_plugin.benchmark import (
    BenchmarkError,
    Bicubic,
    Network,
    SrFolder,
    TestSet,
    run_benchmark,
)
from sfmnet_plugin.benchmark.outputs import markdown_table, plot_quality_vs_cost
from sfmnet_plugin.metrics.face_identity_metric import calculate_identity_similarity
from sfmnet_plugin.metrics.face_landmark_metric import calculate_landmark_nme
from sfmnet_plugin.metrics.face_psnr_ssim_metric import calculate_face_psnr, calculate_face_ssim
from sfmnet_plugin.prep.folder import convert_folder
from sfmnet_plugin.utils.profiling import count_macs_per_image

TINY = {'type': 'SFMNet', 'upscale': 8, 'num_feat': 8, 'num_heads': 2, 'num_levels': 3}
METRICS = ['sfmnet', 'sparnet', 'dic', 'identity', 'nme']
SCALE = 8


@pytest.fixture(scope='module')
def setup(tmp_path_factory, aligned_public_domain_faces):
    """HR and LR folders of three real faces, a tiny SFMNet checkpoint + option file, and its SR folder."""
    root = tmp_path_factory.mktemp('benchmark')
    for folder in ('HR', 'LR'):
        (root / folder).mkdir()
    for name, rgb in aligned_public_domain_faces().items():
        Image.fromarray(rgb).save(root / 'HR' / f'{name}.png')
        Image.fromarray(rgb).resize((128 // SCALE, 128 // SCALE), Image.BICUBIC).save(root / 'LR' / f'{name}.png')
    torch.manual_seed(0)
    network = build_network(dict(TINY))
    torch.save({'params': network.state_dict()}, root / 'tiny.pth')
    (root / 'tiny.yml').write_text(yaml.safe_dump({'network_g': TINY}))
    # the folder method's images: written by sfmnet-infer with the same checkpoint
    assert infer.main([str(root / 'LR'), '--output', str(root / 'SR_tiny'), '--checkpoint', str(root / 'tiny.pth'),
                       '--opt', str(root / 'tiny.yml'), '--batch-size', '1', '--device', 'cpu']) == 0
    return root


@pytest.fixture(scope='module')
def result(setup):
    methods = [Bicubic(), Network('Tiny SFMNet', str(setup / 'tiny.pth'), str(setup / 'tiny.yml')),
               SrFolder('Tiny (folder)', str(setup / 'SR_tiny'))]
    return run_benchmark(TestSet(str(setup / 'HR'), str(setup / 'LR'), scale=SCALE, name='Faces'), methods,
                         str(setup / 'out'), metrics=METRICS, device='cpu', latency_repeats=1, sheet_images=2,
                         progress=False)


def read_csv(path):
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def read_bgr(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def direct_values(sr, hr):
    """Every column, computed by calling the metric functions directly."""
    return {'psnr_sfmnet': calculate_face_psnr(sr, hr, protocol='sfmnet'),
            'ssim_sfmnet': calculate_face_ssim(sr, hr, protocol='sfmnet'),
            'psnr_sparnet': calculate_face_psnr(sr, hr, protocol='sparnet'),
            'ssim_sparnet': calculate_face_ssim(sr, hr, protocol='sparnet'),
            'psnr_dic': calculate_face_psnr(sr, hr, protocol='dic', crop_border=SCALE),
            'ssim_dic': calculate_face_ssim(sr, hr, protocol='dic', crop_border=SCALE),
            'identity': calculate_identity_similarity(sr, hr),
            'nme': calculate_landmark_nme(sr, hr)}


def test_table_numbers_equal_the_metric_functions_called_directly(setup, result):
    names = sorted(p.stem for p in (setup / 'HR').iterdir())
    hr = {name: read_bgr(setup / 'HR' / f'{name}.png') for name in names}
    bicubic = {}
    for name in names:
        up = np.asarray(Image.open(setup / 'LR' / f'{name}.png').convert('RGB').resize((128, 128), Image.BICUBIC))
        bicubic[name] = np.ascontiguousarray(up[..., ::-1])  # PIL's own 8-bit resize, as the official loaders
    sr_folder = {name: read_bgr(setup / 'SR_tiny' / f'{name}.png') for name in names}
    expected = {'Bicubic': bicubic, 'Tiny (folder)': sr_folder}

    table = {row['method']: row for row in read_csv(setup / 'out' / 'table.csv')}
    per_image = read_csv(setup / 'out' / 'per_image.csv')
    assert len(per_image) == 3 * len(names)
    for method, images in expected.items():
        direct = {name: direct_values(images[name], hr[name]) for name in names}
        for column in direct[names[0]]:
            mean = float(np.mean([direct[name][column] for name in names]))
            assert float(table[method][column]) == mean, (method, column)
            for row in per_image:
                if row['method'] == method:
                    assert float(row[column]) == direct[row['image']][column]
    # the network scored in the benchmark == the same network's images written by sfmnet-infer
    for column in direct_values(hr[names[0]], hr[names[0]]):
        assert table['Tiny SFMNet'][column] == table['Tiny (folder)'][column], column
    assert table['Tiny SFMNet']['images'] == '3'


def test_costs_of_each_kind_of_method(setup, result):
    table = {row['method']: row for row in read_csv(setup / 'out' / 'table.csv')}
    network = build_network(dict(TINY))
    assert int(table['Tiny SFMNet']['parameters']) == sum(p.numel() for p in network.parameters())
    assert float(table['Tiny SFMNet']['macs']) == count_macs_per_image(network.eval(), torch.rand(1, 3, 16, 16))
    assert float(table['Tiny SFMNet']['latency_ms']) > 0
    assert table['Bicubic']['parameters'] == '0' and table['Bicubic']['latency_ms'] == ''
    assert table['Tiny (folder)']['parameters'] == '' and table['Tiny (folder)']['macs'] == ''
    assert [row['kind'] for row in read_csv(setup / 'out' / 'table.csv')] == ['bicubic', 'network', 'folder']


def test_markdown_table_bolds_the_best_of_each_column(setup, result):
    text = (setup / 'out' / 'table.md').read_text()
    assert text == markdown_table(result)
    lines = [line for line in text.splitlines() if line.startswith('| ')]
    header = [cell.strip() for cell in lines[0].strip('|').split('|')]
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip('|').split('|')] for line in lines[1:])}
    assert list(rows) == ['Bicubic', 'Tiny SFMNet', 'Tiny (folder)']
    for index, column in enumerate(result.columns, start=1):
        assert header[index].startswith(column.title)
        values = {name: result.means[name][column.name] for name in rows}
        best = max(values.values()) if column.higher_is_better else min(values.values())
        for name, cells in rows.items():
            assert cells[index].startswith('**') == (values[name] == best), (column.name, name)
    assert '1-minute system load' in text and 'sfmnet: rounded BT.601 Y' in text
    assert f"* Tiny SFMNet: checkpoint `{setup / 'tiny.pth'}`, network_g of `{setup / 'tiny.yml'}`" in text
    assert f"* Tiny (folder): SR images from `{setup / 'SR_tiny'}`" in text
    assert f"* test set: HR `{setup / 'HR'}`, LR `{setup / 'LR'}`" in text


def test_contact_sheet_has_one_column_per_method_and_the_plot_one_entry(setup, result):
    sheet = read_bgr(setup / 'out' / 'contact_sheet.png')
    columns, rows, gap, label = 2 + 3, 2, 2, 2 * 18  # LR, three methods, HR; sheet_images=2; name + role bands
    assert sheet.shape == (rows * (label + 128) + (rows - 1) * gap, columns * 128 + (columns - 1) * gap, 3)
    # the HR column holds the HR image of the first image in name order
    first_hr = read_bgr(setup / 'HR' / 'astronaut.png')
    hr_left = (columns - 1) * (128 + gap)
    np.testing.assert_array_equal(sheet[label:label + 128, hr_left:hr_left + 128], first_hr)

    plot = read_bgr(setup / 'out' / 'quality_vs_cost.png')
    assert plot is not None and plot.shape[0] > 100
    labels = plot_quality_vs_cost(result, str(setup / 'plot_again.png'))
    assert len(labels) == 3
    for name, label_text in zip(result.methods, labels):
        assert label_text.startswith(name)


def test_lmdb_test_set_gives_the_same_numbers_as_folders(setup, result, tmp_path):
    for folder in ('HR', 'LR'):
        convert_folder(str(setup / folder), str(tmp_path / f'{folder}.lmdb'), workers=1)
    lmdb_result = run_benchmark(TestSet(str(tmp_path / 'HR.lmdb'), str(tmp_path / 'LR.lmdb'), scale=SCALE),
                                [Bicubic(), SrFolder('Tiny (folder)', str(setup / 'SR_tiny'))], str(tmp_path / 'out'),
                                metrics=['sfmnet', 'sparnet'], latency_repeats=0, sheet_images=0, progress=False)
    for method in lmdb_result.methods:
        for column, value in lmdb_result.means[method].items():
            assert value == result.means[method][column]
    assert 'contact_sheet.png' not in lmdb_result.files


def test_missing_or_mis_sized_sr_image_is_named_and_nothing_is_written(setup, tmp_path):
    test_set = TestSet(str(setup / 'HR'), str(setup / 'LR'), scale=SCALE)
    incomplete = tmp_path / 'incomplete'
    shutil.copytree(setup / 'SR_tiny', incomplete)
    (incomplete / 'grace_hopper.png').unlink()
    with pytest.raises(BenchmarkError, match=r'method Other: 1 of the 3 test images have no SR image in .*incomplete: '
                                             r'grace_hopper'):
        run_benchmark(test_set, [Bicubic(), SrFolder('Other', str(incomplete))], str(tmp_path / 'out'),
                      metrics=['sfmnet'], progress=False)
    Image.fromarray(np.zeros((120, 128, 3), np.uint8)).save(incomplete / 'grace_hopper.jpg')
    with pytest.raises(BenchmarkError, match=r'grace_hopper.jpg is 128x120 but the HR image grace_hopper is 128x128'):
        run_benchmark(test_set, [SrFolder('Other', str(incomplete))], str(tmp_path / 'out'), metrics=['sfmnet'],
                      progress=False)
    assert not (tmp_path / 'out').exists()


def test_cli_order_errors_and_overwrite(setup, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'no_weights'))  # LPIPS' AlexNet weights are not there
    monkeypatch.delenv('SFMNET_PRETRAINED_DIR', raising=False)
    out = tmp_path / 'out'
    argv = ['--gt', str(setup / 'HR'), '--scale', str(SCALE), '--name', 'Faces', '--output', str(out),
            '--folder', 'Tiny', str(setup / 'SR_tiny'), '--bicubic', '--latency-repeats', '0', '--no-progress']
    assert benchmark_cli.main(argv) == 0  # LR made on the fly from the HR (PIL bicubic, like the stored LR)
    printed = capsys.readouterr().out
    assert printed.index('| Tiny |') < printed.index('| Bicubic |')  # command-line order
    assert 'lpips left out: Pretrained weights alexnet-owt-7be5be79.pth not found' in printed
    assert 'ID sim. (dlib)' in printed and 'NME' in printed

    assert benchmark_cli.main(argv) == 1
    assert 'already holds benchmark results' in capsys.readouterr().err
    assert benchmark_cli.main([*argv, '--overwrite', '--metrics', 'sfmnet']) == 0
    capsys.readouterr()

    assert benchmark_cli.main(['--gt', str(setup / 'HR'), '--output', str(tmp_path / 'o2'), '--bicubic',
                               '--metrics', 'lpips']) == 1
    err = capsys.readouterr().err
    assert 'metric lpips cannot run: Pretrained weights alexnet' in err
    assert 'pass --lpips-weights' in err and 'in the options' not in err  # the command's flag, not a YAML key
    assert not (tmp_path / 'o2').exists()
    assert benchmark_cli.main(['--gt', str(setup / 'HR'), '--output', str(tmp_path / 'o3'),
                               '--network', 'Tiny', str(tmp_path / 'missing.pth')]) == 1
    assert 'method Tiny: checkpoint not found' in capsys.readouterr().err
    assert benchmark_cli.main(['--gt', str(setup / 'HR'), '--output', str(tmp_path / 'o4'), '--bicubic', 'A',
                               '--bicubic', 'A']) == 1
    assert 'repeated: A' in capsys.readouterr().err
    assert benchmark_cli.main(['--gt', str(setup / 'HR'), '--scale', '4', '--output', str(tmp_path / 'o5'),
                               '--network', 'Tiny', str(setup / 'tiny.pth'), str(setup / 'tiny.yml')]) == 1
    assert 'method Tiny: the network is x8 but the test set is x4' in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in ('o3', 'o4', 'o5'))


def test_help_runs_as_a_module(python_executable):
    import subprocess
    result = subprocess.run([python_executable, '-m', 'sfmnet_cli.benchmark', '--help'], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and '--network' in result.stdout and 'table.md' in result.stdout


def test_lpips_column_uses_the_given_local_weights(setup, tmp_path):
    import torchvision

    from sfmnet_plugin.metrics.lpips_metric import calculate_lpips

    torch.manual_seed(0)
    trunk = {key: value for key, value in torchvision.models.alexnet(weights=None).state_dict().items()
             if key.startswith('features.')}  # all that LPIPS reads from torchvision's file
    weights = tmp_path / 'alexnet-owt-7be5be79.pth'
    torch.save(trunk, weights)
    result = run_benchmark(TestSet(str(setup / 'HR'), str(setup / 'LR'), scale=SCALE),
                           [SrFolder('Tiny', str(setup / 'SR_tiny'))], str(tmp_path / 'out'), metrics=['lpips'],
                           lpips_weights=str(weights), latency_repeats=0, sheet_images=0, progress=False)
    names = sorted(p.stem for p in (setup / 'HR').iterdir())
    direct = [calculate_lpips(read_bgr(setup / 'SR_tiny' / f'{name}.png'), read_bgr(setup / 'HR' / f'{name}.png'),
                              weights_path=str(weights)) for name in names]
    assert result.means['Tiny']['lpips'] == float(np.mean(direct)) > 0
