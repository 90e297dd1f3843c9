"""The benchmark refuses method names it uses itself and verification folds that cannot give an accuracy, before it
scores anything; the accuracy column says how many folds it averages."""
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sfmnet_cli.benchmark import main
from sfmnet_plugin.benchmark.set_metrics import VerificationRun


@pytest.fixture
def hr(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / 'hr').mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / 'hr' / f'p{i}.png')
    return tmp_path / 'hr'


def run(hr, out, *methods):
    return main(['--gt', str(hr), '--scale', '4', *methods, '--output', str(out), '--metrics', 'sfmnet',
                 '--latency-repeats', '0', '--sheet-images', '0', '--no-progress', '--device', 'cpu'])


@pytest.mark.parametrize('methods, expected', [
    (['--folder', 'HR', 'hr'], "method name 'HR' is reserved for the HR upper bound"),
    (['--bicubic', 'LR'], "method name 'LR' is reserved for the contact sheet's LR column"),
    (['--folder', 'Bicubic', 'hr'], "method name 'Bicubic' is reserved for the bicubic baseline"),
    (['--folder', 'HR ', 'hr'], "method name 'HR ': expected a name without surrounding spaces, line breaks or '|'"),
    (['--bicubic', 'A|B'], "method name 'A|B': expected a name without surrounding spaces"),
])
def test_reserved_method_names_are_refused(hr, tmp_path, capsys, methods, expected):
    methods = [str(hr) if value == 'hr' else value for value in methods]
    assert run(hr, tmp_path / 'out', *methods) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and expected in err, err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('pairs, expected', [
    ('p0,p1,1\np2,p3,1\np0,p2,0\np1,p3,0\n', '4 pairs cannot be cut into 10 folds of at least 2'),
    ('p0,p1,1,0\np2,p3,0,0\np0,p2,0,1\n', 'fold(s) 1 hold fewer than 2 pairs'),
    ('p0,p1,1,0\np2,p3,0,0\n', 'all 2 pairs are in one fold'),
])
def test_too_small_folds_are_refused_before_any_scoring(hr, tmp_path, capsys, pairs, expected):
    header = 'image_a,image_b,same' + (',fold' if pairs.split('\n')[0].count(',') == 3 else '')
    (tmp_path / 'pairs.csv').write_text(f'{header}\n{pairs}')
    assert run(hr, tmp_path / 'out', '--bicubic', '--pairs', str(tmp_path / 'pairs.csv')) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and expected in err, err
    assert not (tmp_path / 'out').exists()


def test_the_accuracy_column_states_its_fold_count():
    pairs = [SimpleNamespace(same=same) for same in (True, False, True, False)]
    run = VerificationRun(SimpleNamespace(pairs=pairs), [], np.array([0, 0, 1, 1]), 'dlib', None, set(), {}, set())
    assert run.columns()[0].title == 'Verif. acc. (2-fold)'
