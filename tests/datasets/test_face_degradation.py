"""SPARNetHD's degradation chain and DegradedFaceDataset: reproducibility, step frequencies, value ranges."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_plugin.data.degraded_face_dataset import DegradedFaceDataset
from sfmnet_plugin.data.face_degradation import (
    BLUR_KINDS,
    FaceDegradation,
    degrade_face,
    motion_kernel,
    numpy_global_seed,
)

HR_SIZE = 64
# The official ranges are for 512x512 faces; a 64x64 face gets proportionally small ones (fast, same logic).
SMALL = FaceDegradation(gaussian_sigma_range=(0.5, 2.0), average_kernel_range=(3, 5), median_kernel_range=(3, 5),
                        motion_kernel_range=(3, 7), down_size_range=(8, 31))


def applied_steps(record):
    """The names of the random steps a DegradationRecord says were applied: a subset of grey, blur, noise, jpeg."""
    flags = {'grey': record.grey, 'blur': record.blur is not None, 'noise': record.noise_sigma is not None,
             'jpeg': record.jpeg_quality is not None}
    return tuple(name for name, applied in flags.items() if applied)


@pytest.fixture(scope='module')
def hr_face(astronaut):
    return np.array(Image.fromarray(astronaut()[20:300, 100:380]).resize((HR_SIZE, HR_SIZE), Image.BICUBIC))


def test_same_seed_same_lr_and_different_seeds_differ(hr_face):
    outputs = [degrade_face(hr_face, np.random.default_rng(seed), SMALL) for seed in (7, 7, 8)]
    (hr_a, lr_a, rec_a), (hr_b, lr_b, rec_b), (_, lr_c, _) = outputs
    assert np.array_equal(lr_a, lr_b) and np.array_equal(hr_a, hr_b) and rec_a == rec_b
    assert not np.array_equal(lr_a, lr_c)


def test_values_shapes_and_the_global_numpy_state(hr_face):
    np.random.seed(3)
    expected_next = np.random.rand()
    np.random.seed(3)
    for seed in range(40):
        hr, lr, _ = degrade_face(hr_face, np.random.default_rng(seed), SMALL, out_size=(32, 32))
        assert hr.dtype == np.uint8 and hr.shape == hr_face.shape
        assert lr.dtype == np.float32 and lr.shape == (32, 32, 3)
        assert lr.min() >= 0 and lr.max() <= 1
    assert np.random.rand() == expected_next  # BasicSR's noise ran under a private seed; the global state is back


def test_step_frequencies_match_the_configured_probabilities(hr_face):
    draws = 400
    records = [degrade_face(hr_face, np.random.default_rng(seed), SMALL)[2] for seed in range(draws)]
    for step, probability in [('grey', 0.3), ('blur', 0.5), ('noise', 0.2), ('jpeg', 0.7)]:
        frequency = sum(step in applied_steps(record) for record in records) / draws
        tolerance = 4 * math.sqrt(probability * (1 - probability) / draws)  # 4 binomial standard deviations
        assert abs(frequency - probability) < tolerance, (step, frequency)
    blurred = [record.blur for record in records if record.blur]
    for kind in BLUR_KINDS:  # one of four, uniformly
        assert abs(blurred.count(kind) / len(blurred) - 0.25) < 4 * math.sqrt(0.25 * 0.75 / len(blurred)), kind
    for record in records:
        assert 8 <= record.down_size <= 31
        if record.blur == 'median':
            assert record.blur_parameter in (3, 5)
        if record.jpeg_quality is not None:
            assert 35 <= record.jpeg_quality <= 90
        if record.noise_sigma is not None:
            assert 0 <= record.noise_sigma <= 25.5
    assert {record.interpolation for record in records} == {'nearest', 'linear', 'area', 'cubic'}


def test_probabilities_zero_and_one_switch_steps_off_and_on(hr_face):
    never = FaceDegradation(grey_prob=0, blur_prob=0, noise_prob=0, jpeg_prob=0, down_size_range=(HR_SIZE, HR_SIZE),
                            interpolations=('nearest',))
    hr, lr, record = degrade_face(hr_face, np.random.default_rng(0), never)
    assert applied_steps(record) == ()
    assert np.array_equal(hr, hr_face)
    np.testing.assert_allclose(lr, hr_face / 255, atol=1e-6)  # nearest to the same size and back: unchanged
    always = FaceDegradation(grey_prob=1, blur_prob=1, noise_prob=1, jpeg_prob=1, down_size_range=(16, 16),
                             gaussian_sigma_range=(1, 1), average_kernel_range=(3, 3), median_kernel_range=(3, 3),
                             motion_kernel_range=(5, 5))
    hr, lr, record = degrade_face(hr_face, np.random.default_rng(0), always)
    assert applied_steps(record) == ('grey', 'blur', 'noise', 'jpeg')
    assert (hr[..., 0] == hr[..., 1]).all() and (hr[..., 1] == hr[..., 2]).all()  # the HR turns grey too


def test_grey_lr_stays_grey_without_per_channel_noise(hr_face):
    grey = FaceDegradation(grey_prob=1, noise_prob=1, noise_per_channel_prob=0, jpeg_prob=0, down_size_range=(8, 31))
    _, lr, record = degrade_face(hr_face, np.random.default_rng(1), grey)
    assert record.grey and record.noise_per_channel is False
    assert np.abs(lr[..., 0] - lr[..., 1]).max() < 1e-6 and np.abs(lr[..., 1] - lr[..., 2]).max() < 1e-6


def test_motion_kernel_sums_to_one_and_follows_the_angle():
    horizontal = motion_kernel(7, 90, 0)  # the line starts vertical; 90 degrees turns it horizontal
    assert horizontal.sum() == pytest.approx(1, abs=1e-6)
    assert horizontal[3].sum() == pytest.approx(1, abs=1e-3)
    ramp = motion_kernel(7, 0, 1)  # direction 1: all the weight at one end
    assert ramp[:, 3][0] > ramp[:, 3][-1]


def test_numpy_global_seed_restores_the_global_state():
    np.random.seed(11)
    state = np.random.get_state()[1].copy()
    with numpy_global_seed(np.random.default_rng(0)):
        np.random.rand(5)
    assert np.array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize('bad, message', [
    ({'grey_prob': 1.5}, 'grey_prob'),
    ({'down_size_range': [40, 20]}, 'down_size_range'),
    ({'median_kernel_range': [4, 4]}, 'odd'),
    ({'interpolations': ['bilinear']}, 'interpolations'),
    ({'jpeg_quality': 50}, 'unknown option'),
])
def test_bad_degradation_options_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        FaceDegradation.from_options(bad)


# ------------------------------------------------------------------------------------------- the dataset

@pytest.fixture
def hr_folder(tmp_path, hr_face):
    folder = tmp_path / 'hr'
    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.roll(hr_face, 5 * index, axis=1)).resize((2 * HR_SIZE, 2 * HR_SIZE)).save(
            folder / f'{index:05d}.png')
    return folder


def dataset_options(folder, **extra):
    degradation = {'gaussian_sigma_range': [0.5, 2], 'average_kernel_range': [3, 5], 'median_kernel_range': [3, 5],
                   'motion_kernel_range': [3, 7], 'down_size_range': [8, 31]}
    return {'name': 'ffhq_tiny', 'type': 'DegradedFaceDataset', 'dataroot_gt': str(folder), 'scale': 1,
            'hr_size': HR_SIZE, 'phase': 'train', 'degradation': degradation, **extra}


def test_dataset_resizes_the_hr_and_fixed_seed_samples_repeat(hr_folder):
    dataset = DegradedFaceDataset(dataset_options(hr_folder, degradation_seed=5))
    first, again = dataset[1], dataset[1]
    assert first['gt'].shape == first['lq'].shape == (3, HR_SIZE, HR_SIZE)
    assert torch.equal(first['lq'], again['lq']) and torch.equal(first['gt'], again['gt'])
    assert not torch.equal(dataset[0]['lq'], dataset[2]['lq'])
    assert 0 <= first['lq'].min() and first['lq'].max() <= 1
    assert first['gt_path'].endswith('00001.png')
    sample, record = dataset.degraded_sample(1, np.random.default_rng([5, 1]))
    assert torch.equal(sample['lq'], first['lq']) and record.down_size <= 31


def test_training_draws_follow_numpy_global_seed_and_scale_sets_the_lr_size(hr_folder):
    dataset = DegradedFaceDataset(dataset_options(hr_folder, scale=4, use_hflip=True))
    np.random.seed(0)
    first = [dataset[0]['lq'] for _ in range(3)]
    np.random.seed(0)
    second = [dataset[0]['lq'] for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], first[1])  # a fresh degradation on every draw
    assert first[0].shape == (3, HR_SIZE // 4, HR_SIZE // 4)


def test_dataset_refuses_stored_lr(hr_folder):
    with pytest.raises(ValueError, match='remove dataroot_lq'):
        DegradedFaceDataset(dataset_options(hr_folder, dataroot_lq=str(hr_folder)))
