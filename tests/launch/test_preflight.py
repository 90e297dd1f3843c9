"""Pre-flight checks: each problem is one line naming the option, the path and the command that prepares it,
reported before anything is created; a run that fails to start leaves no folder behind."""
import os
import subprocess
import sys

import pytest

from sfmnet_plugin.config.option_files import OptionFileError
from sfmnet_plugin.launch.cli import parse_command_line
from sfmnet_plugin.launch.preflight import PreflightError, check_run, preparation_command
from sfmnet_plugin.prep.lmdb_writer import LmdbWriter


@pytest.fixture(scope='module')
def faces(tmp_path_factory, write_run_faces):
    root = tmp_path_factory.mktemp('faces')
    write_run_faces(str(root), 4)
    return root


@pytest.fixture(scope='session')
def problems_of(write_yaml):
    def problems_of(tmp_path, opt, stage='train', extra_args=()):
        path = write_yaml(tmp_path / 'run.yml', opt)
        try:
            check_run(parse_command_line(stage, ['-opt', str(path), *extra_args]))
        except PreflightError as error:
            assert str(error) == '\n'.join(error.problems)
            return error.problems
        return []

    return problems_of


def test_complete_options_pass(faces, tmp_path, problems_of, run_options):
    assert problems_of(tmp_path, run_options(faces)) == []


def test_missing_dataset_names_option_path_and_preparation_command(faces, tmp_path, problems_of, run_options):
    opt = run_options(faces, datasets__train__dataroot_gt='datasets/CelebA/train/HR.lmdb',
                  datasets__train__dataroot_lq='datasets/CelebA/train/LR_x4.lmdb')
    opt['datasets']['train']['io_backend'] = {'type': 'lmdb'}
    problems = problems_of(tmp_path, opt)
    assert problems[0] == ("datasets.train.dataroot_gt: dataset 'datasets/CelebA/train/HR.lmdb' does not exist. "
                           'Prepare it with: python datasets_prep/prepare_celeba.py --root /path/to/CelebA '
                           '(see datasets_prep/README.md)')
    assert problems[1].startswith("datasets.train.dataroot_lq: dataset 'datasets/CelebA/train/LR_x4.lmdb'")
    assert len(problems) == 2


@pytest.mark.parametrize('path, command', [
    ('datasets/Helen/test/HR.lmdb', 'prepare_helen.py --from-aligned'),
    ('datasets/CelebA_aligned/val/HR.lmdb', '--protocol aligned'),
    ('demo_output/lmdb/train_HR.lmdb', 'sfmnet-demo'),
    ('data/mine/HR.lmdb', 'folder_to_lmdb.py /path/to/your/images data/mine/HR.lmdb'),
])
def test_preparation_command_follows_the_layout(path, command):
    assert command in preparation_command(path)


def test_incomplete_lmdb_is_reported_with_the_rebuild_command(faces, tmp_path, problems_of, run_options):
    lmdb_path = tmp_path / 'mine' / 'HR.lmdb'
    writer = LmdbWriter(str(lmdb_path))
    writer.abort()  # data.mdb without meta_info.txt: an interrupted preparation
    opt = run_options(faces, datasets__val__dataroot_gt=str(lmdb_path))
    del opt['datasets']['val']['dataroot_lq']
    opt['datasets']['val']['io_backend'] = {'type': 'lmdb'}
    assert problems_of(tmp_path, opt) == [
        f"datasets.val.dataroot_gt: {str(lmdb_path)!r} is an incomplete LMDB (no meta_info.txt: its preparation was "
        'interrupted or is still running). Rebuild it with: python datasets_prep/folder_to_lmdb.py '
        f'/path/to/your/images {lmdb_path} (see datasets_prep/README.md) --overwrite']


def test_empty_folder_and_unpaired_names(faces, tmp_path, problems_of, run_options):
    empty = tmp_path / 'empty'
    empty.mkdir()
    opt = run_options(faces, datasets__val__dataroot_gt=str(empty), datasets__val__dataroot_lq=str(empty))
    assert problems_of(tmp_path, opt) == [f"datasets.val.dataroot_gt: {str(empty)!r} holds no images. Prepare it "
                                          f'with: {preparation_command(str(empty))}']
    opt = run_options(faces, datasets__val__dataroot_lq=str(faces / 'train' / 'lq'))
    [problem] = problems_of(tmp_path, opt)
    assert problem.startswith('datasets.val: dataroot_gt') and 'do not hold the same image names' in problem


def test_batch_larger_than_the_training_set_is_an_error_not_zero_iterations(faces, tmp_path, problems_of, run_options):
    """BasicSR drops the last partial batch, trained nothing and reported success."""
    problems = problems_of(tmp_path, run_options(faces, datasets__train__batch_size_per_gpu=5))
    assert problems == [f"datasets.train.batch_size_per_gpu: 5 is larger than the 4 training images per process "
                        f"(4 in {str(faces / 'train' / 'gt')!r} x dataset_enlarge_ratio 1): BasicSR would train zero "
                        'iterations. Use batch_size_per_gpu <= 4 or raise dataset_enlarge_ratio.']
    assert problems_of(tmp_path, run_options(faces, datasets__train__batch_size_per_gpu=5,
                                         datasets__train__dataset_enlarge_ratio=2)) == []
    # under torchrun, each of WORLD_SIZE processes gets its share
    os.environ['WORLD_SIZE'] = '2'
    try:
        problems = problems_of(tmp_path, run_options(faces, datasets__train__batch_size_per_gpu=3),
                               extra_args=['--launcher', 'pytorch'])
    finally:
        del os.environ['WORLD_SIZE']
    assert len(problems) == 1 and 'larger than the 2 training images per process' in problems[0]


def test_missing_network_files(faces, tmp_path, problems_of, run_options):
    opt = run_options(faces, path__pretrain_network_g='experiments/train_SFMNet_x8/models/net_g_latest.pth',
                  path__resume_state=str(tmp_path / 'missing.state'))
    problems = problems_of(tmp_path, opt)
    assert problems[0] == ("path.pretrain_network_g: network file 'experiments/train_SFMNet_x8/models/net_g_latest.pth'"
                           ' not found. Make it with: sfmnet-train -opt options/train_SFMNet_x8.yml (it writes '
                           'experiments/train_SFMNet_x8/models/net_g_latest.pth)')
    assert problems[1].startswith(f"path.resume_state: training state {str(tmp_path / 'missing.state')!r} not found")
    opt['path']['pretrain_network_g'] = str(tmp_path / 'SFMNet_x8.pth')
    assert 'sfmnet-convert-official OFFICIAL_CHECKPOINT.pth' in problems_of(tmp_path, opt)[0]


def test_a_test_without_a_network_is_an_error(faces, tmp_path, problems_of, run_options):
    opt = run_options(faces)
    opt['datasets'] = {'test': opt['datasets']['val']}
    problems = problems_of(tmp_path, opt, stage='test')
    assert problems == ['path.pretrain_network_g: not set, so the test would score a randomly initialised network. '
                        'Set it to a trained net_g_*.pth or a converted official checkpoint.']


def test_missing_vgg_and_alexnet_weights(faces, tmp_path, monkeypatch, problems_of, run_options):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv('SFMNET_PRETRAINED_DIR', raising=False)
    opt = run_options(faces)
    opt['train']['perceptual_opt'] = {'type': 'FacePerceptualLoss', 'layer_weights': {'conv5_4': 1.0},
                                      'vgg_type': 'vgg19'}
    opt['val']['metrics']['lpips'] = {'type': 'calculate_lpips', 'net': 'alex'}
    problems = problems_of(tmp_path, opt)
    assert problems[0].startswith('train.perceptual_opt.vgg_weights_path: Pretrained weights vgg19-dcbb9e9d.pth '
                                  'not found')
    assert problems[1].startswith('val.metrics.lpips.weights_path: Pretrained weights alexnet-owt-7be5be79.pth '
                                  'not found')
    assert all('https://download.pytorch.org/models/' in p and 'SFMNET_PRETRAINED_DIR' in p for p in problems)
    opt['val']['metrics']['lpips']['random_backbone_for_tests'] = True
    opt['train']['perceptual_opt']['vgg_weights_path'] = str(tmp_path / 'vgg.pth')
    assert problems_of(tmp_path, opt) == [f"train.perceptual_opt.vgg_weights_path: no file at "
                                          f"{str(tmp_path / 'vgg.pth')!r} (expected vgg19-dcbb9e9d.pth, from "
                                          'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth).']


def test_damaged_lpips_weights_are_found_before_the_run_not_at_its_first_validation(faces, tmp_path, monkeypatch,
                                                                                     problems_of, run_options):
    from sfmnet_plugin.metrics import lpips_metric

    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv('SFMNET_PRETRAINED_DIR', raising=False)
    alexnet = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'alexnet-owt-7be5be79.pth'
    alexnet.parent.mkdir(parents=True)
    alexnet.write_bytes(b'PK\x03\x04 cut short')
    opt = run_options(faces)
    opt['val']['metrics']['lpips'] = {'type': 'calculate_lpips', 'net': 'alex'}
    problems = problems_of(tmp_path, opt)
    assert len(problems) == 1 and str(alexnet) in problems[0] and 'val.metrics.lpips.weights_path' in problems[0]
    heads = tmp_path / 'alex.pth'
    heads.write_bytes(b'')
    monkeypatch.setattr(lpips_metric, 'linear_layers_file', lambda net: str(heads))
    opt['val']['metrics']['lpips']['random_backbone_for_tests'] = True
    problems = problems_of(tmp_path, opt)
    assert len(problems) == 1 and str(heads) in problems[0] and 'pip install --force-reinstall lpips' in problems[0]


def test_fid_weights_and_reference_are_checked_before_the_run_not_at_its_first_validation(
        faces, tmp_path, monkeypatch, problems_of, run_options):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv('SFMNET_PRETRAINED_DIR', raising=False)
    opt = run_options(faces)
    opt['val']['fid'] = {'reference': str(tmp_path / 'no_reference')}
    problems = problems_of(tmp_path, opt)
    assert len(problems) == 2
    assert problems[0].startswith('val.fid.weights_path: Pretrained weights pt_inception-2015-12-05-6726825d.pth '
                                  'not found')
    assert problems[1] == f"val.fid.reference: no folder, LMDB or .npz of FID statistics at " \
                          f"{str(tmp_path / 'no_reference')!r}."
    damaged = tmp_path / 'inception.pth'
    damaged.write_bytes(b'PK\x03\x04 cut short')
    opt['val']['fid'] = {'reference': str(faces / 'val' / 'gt'), 'weights_path': str(damaged)}
    problems = problems_of(tmp_path, opt)
    assert len(problems) == 1 and str(damaged) in problems[0] and 'val.fid.weights_path' in problems[0]
    opt['val']['fid'] = {}  # no FID: nothing to check
    assert problems_of(tmp_path, opt) == []
    opt['val']['fid'] = {'weights_path': str(damaged)}
    assert 'val.fid.reference: not set' in problems_of(tmp_path, opt)[1]
    assert any('val.fid.reference: not set' in p for p in problems_of(tmp_path, opt, stage='test'))  # it validates


def test_two_evaluated_sets_with_one_name_are_refused(faces, tmp_path, problems_of, run_options):
    """Their metrics, summaries and images would be filed under one name: the second set's replace the first's."""
    opt = run_options(faces)
    opt['datasets']['val_2'] = dict(opt['datasets']['val'])
    expected = ("datasets.val_2.name: 'faces_val' is also the name of datasets.val; give each evaluated set its own "
                'name (its metrics, summary and images are filed under it).')
    assert problems_of(tmp_path, opt) == [expected]
    opt['datasets']['val_2']['name'] = 'faces_val_2'
    assert problems_of(tmp_path, opt) == []
    test_opt = {**opt, 'datasets': {'test_1': opt['datasets']['val'], 'test_2': dict(opt['datasets']['val'])},
                'path': {**opt['path'], 'pretrain_network_g': str(faces / 'net.pth')}}
    problems = problems_of(tmp_path, test_opt, stage='test')
    assert any("datasets.test_2.name: 'faces_val' is also the name of datasets.test_1;" in p for p in problems)


def test_force_yml_is_applied_before_checking(faces, tmp_path, write_yaml, run_options):
    opt = run_options(faces, datasets__train__dataroot_gt='nowhere/HR')
    path = write_yaml(tmp_path / 'run.yml', opt)
    check_run(parse_command_line('train', ['-opt', str(path), '--force_yml',
                                           f"datasets:train:dataroot_gt={faces / 'train' / 'gt'}"]))


def test_bad_option_file(tmp_path):
    """The option file is read once, when the command line is parsed; errors name the file."""
    with pytest.raises(FileNotFoundError, match=r"Option file not found: '.*nothing.yml'"):
        parse_command_line('train', ['-opt', str(tmp_path / 'nothing.yml')])
    (tmp_path / 'broken.yml').write_text('name: [unclosed\n')
    with pytest.raises(OptionFileError, match='broken.yml'):
        parse_command_line('train', ['-opt', str(tmp_path / 'broken.yml')])


@pytest.fixture(scope='session')
def run_train(launcher_env, repo_root):
    def run_train(args, root):
        return subprocess.run([sys.executable, 'sfmnet_plugin/train.py', *args], cwd=repo_root, env=launcher_env(root),
                              capture_output=True, text=True, timeout=300)

    return run_train


def test_a_run_that_cannot_start_prints_the_problems_and_leaves_nothing(faces, tmp_path, write_yaml, run_options,
                                                                        run_train):
    root = tmp_path / 'runs'
    opt = run_options(faces, datasets__train__dataroot_gt='datasets/CelebA/train/HR.lmdb',
                  datasets__train__batch_size_per_gpu=2)
    result = run_train(['-opt', str(write_yaml(tmp_path / 'run.yml', opt))], root)
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr
    assert result.stderr.startswith('sfmnet-train: cannot start, 1 problem (nothing was created):\n'
                                    "  - datasets.train.dataroot_gt: dataset 'datasets/CelebA/train/HR.lmdb'")
    assert not root.exists()


def test_a_run_that_fails_while_building_removes_its_folders_and_restores_the_archived_one(faces, tmp_path,
                                                                                           write_yaml, run_options,
                                                                                           run_train):
    """Failures the pre-flight cannot see (here a network option the architecture rejects) happen after BasicSR
    made the experiment folder and archived the previous one: both are undone."""
    root = tmp_path / 'runs'
    earlier = root / 'experiments' / 'preflight'
    earlier.mkdir(parents=True)
    (earlier / 'keep.txt').write_text('an earlier run')
    opt = run_options(faces)
    opt['network_g']['no_such_option'] = 1
    result = run_train(['-opt', str(write_yaml(tmp_path / 'run.yml', opt))], root)
    assert result.returncode != 0 and 'no_such_option' in result.stderr
    assert sorted(os.listdir(root / 'experiments')) == ['preflight']
    assert os.listdir(earlier) == ['keep.txt']
    assert not (root / 'tb_logger').exists()
