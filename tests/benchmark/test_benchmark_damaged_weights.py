"""A damaged weight file of a default metric (LPIPS' cached AlexNet, LPIPS' linear heads, dlib's model files) leaves
that metric out of a default benchmark with a note, as a missing one does; asked for explicitly, it is one line
naming the file, exit 1, nothing written."""
import pytest
import torch
from PIL import Image

from sfmnet_cli import benchmark as benchmark_cli
from sfmnet_plugin.benchmark.columns import check_metric_available, metric_columns
from sfmnet_plugin.metrics import face_models, lpips_metric
from sfmnet_plugin.metrics.lpips_metric import calculate_lpips, lpips_network
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

ALEXNET = 'alexnet-owt-7be5be79.pth'


@pytest.fixture(scope='module')
def hr_folder(tmp_path_factory, aligned_public_domain_faces):
    folder = tmp_path_factory.mktemp('damaged_weights') / 'HR'
    folder.mkdir()
    for name, rgb in list(aligned_public_domain_faces().items())[:2]:
        Image.fromarray(rgb).save(folder / f'{name}.png')
    return folder


def damage(path, how):
    """A weight file at ``path`` damaged as ``how`` says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == 'garbage':
        path.write_bytes(b'\x80\x04not a torch file' * 8)
    elif how == 'truncated':
        torch.save({'features.0.weight': torch.zeros(64, 3, 11, 11)}, path)
        path.write_bytes(path.read_bytes()[:200])
    elif how == 'empty':
        path.write_bytes(b'')
    elif how == 'non-finite':
        torch.save({'features.0.weight': torch.full((64, 3, 11, 11), float('nan'))}, path)
    return path


def bench(hr_folder, out, *extra):
    return benchmark_cli.main(['--gt', str(hr_folder), '--scale', '8', '--output', str(out), '--bicubic',
                               '--latency-repeats', '0', '--no-progress', '--sheet-images', '1', *extra])


def one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


@pytest.mark.parametrize('how', ['garbage', 'truncated', 'empty', 'non-finite'])
def test_a_damaged_cached_alexnet_leaves_lpips_out_of_the_default_metrics(hr_folder, tmp_path, monkeypatch, capsys,
                                                                          how):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.delenv('SFMNET_PRETRAINED_DIR', raising=False)
    alexnet = damage(tmp_path / 'torch' / 'hub' / 'checkpoints' / ALEXNET, how)
    before = alexnet.read_bytes()
    out = tmp_path / 'out'
    assert bench(hr_folder, out, '--metrics', 'sfmnet', 'lpips') == 1  # asked for: one line naming the file
    line = one_error_line(capsys.readouterr().err)
    assert 'metric lpips cannot run' in line and str(alexnet) in line
    assert not out.exists()

    assert bench(hr_folder, out) == 0  # the default metrics: LPIPS left out, with a note
    printed = capsys.readouterr().out
    table = (out / 'table.md').read_text()
    for text in (printed, table):
        notes = [line for line in text.splitlines() if 'lpips left out' in line]
        assert len(notes) == 1 and str(alexnet) in notes[0], text
    header = next(line for line in table.splitlines() if line.startswith('| Method'))
    assert 'LPIPS' not in header and 'PSNR' in header
    assert alexnet.read_bytes() == before


@pytest.fixture
def damaged_lpips_heads(tmp_path, monkeypatch):
    heads = damage(tmp_path / 'alex.pth', 'truncated')
    monkeypatch.setattr(lpips_metric, 'linear_layers_file', lambda net: str(heads))
    lpips_network.cache_clear()
    yield heads
    lpips_network.cache_clear()


def test_damaged_lpips_linear_heads_are_one_line_and_leave_lpips_out(damaged_lpips_heads):
    image = torch.zeros(32, 32, 3).numpy()
    with pytest.raises(UnsafeOrInvalidFileError) as error:
        calculate_lpips(image, image, random_backbone_for_tests=True)
    message = str(error.value)
    assert str(damaged_lpips_heads) in message and 'pip install --force-reinstall lpips' in message
    assert len(message.splitlines()) == 1
    column = metric_columns('lpips', 8)[0]
    column.options['random_backbone_for_tests'] = True
    column.options.pop('weights_path')
    assert str(damaged_lpips_heads) in check_metric_available(column)


def test_the_lpips_linear_heads_are_the_packages():
    """Read by the plugin's loader, the heads are those lpips itself loads."""
    import lpips

    lpips_network.cache_clear()
    ours = lpips_network('alex', None, 'cpu')
    theirs = lpips.LPIPS(net='alex', version='0.1', pnet_rand=True, verbose=False)
    for key, value in theirs.state_dict().items():
        if key.startswith('lin'):  # lin0.. and lins.0.. alike
            assert torch.equal(ours.state_dict()[key], value), key
    lpips_network.cache_clear()


@pytest.fixture
def damaged_dlib_model(tmp_path, monkeypatch):
    face_recognition_models = pytest.importorskip('face_recognition_models')
    pytest.importorskip('dlib')
    broken = tmp_path / 'shape_predictor_68_face_landmarks.dat'
    broken.write_bytes(b'not a dlib model' * 4)
    monkeypatch.setattr(face_recognition_models, 'pose_predictor_model_location', lambda: str(broken))
    face_models.dlib_models.cache_clear()
    yield broken
    face_models.dlib_models.cache_clear()


def test_a_damaged_dlib_model_leaves_the_face_metrics_out(hr_folder, tmp_path, damaged_dlib_model, capsys,
                                                          monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))  # no AlexNet: LPIPS left out as well
    monkeypatch.delenv('SFMNET_PRETRAINED_DIR', raising=False)
    out = tmp_path / 'out'
    assert bench(hr_folder, out, '--metrics', 'nme') == 1
    line = one_error_line(capsys.readouterr().err)
    assert 'metric nme cannot run' in line and str(damaged_dlib_model) in line and 'reinstall' in line
    assert not out.exists()
    assert bench(hr_folder, out) == 0
    table = (out / 'table.md').read_text()
    for metric in ('identity', 'nme'):
        assert any(f'{metric} left out' in line and str(damaged_dlib_model) in line for line in table.splitlines())
