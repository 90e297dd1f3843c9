"""Face PSNR/SSIM under the sfmnet, sparnet and dic protocols, and LPIPS with local backbone weights."""
import math
import os
import warnings

import lpips
import numpy as np
import pytest
import skimage.data
import torch
import torchvision
from basicsr.metrics import calculate_metric, calculate_psnr, calculate_ssim
from PIL import Image
from skimage.metrics import structural_similarity

from sfmnet_plugin.metrics.face_psnr_ssim_metric import (
    calculate_face_psnr,
    calculate_face_ssim,
    rgb_to_y_rounded,
    rgb_to_y_truncated,
)
from sfmnet_plugin.metrics.lpips_metric import calculate_lpips, lpips_network
from sfmnet_plugin.utils.pretrained import PRETRAINED_DIR_ENV_VAR
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

ALEXNET_URL = 'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth'


def to_bgr(rgb):
    return np.ascontiguousarray(rgb[..., ::-1])


@pytest.fixture(scope='module')
def astronaut_rgb():
    """The "HR" face: skimage's astronaut resized to 128x128 (RGB uint8)."""
    return np.array(Image.fromarray(skimage.data.astronaut()).resize((128, 128), Image.BICUBIC))


@pytest.fixture(scope='module')
def bicubic_sr_rgb(astronaut_rgb):
    """The "SR" face: the HR down to 16x16 and back up with PIL bicubic, the x8 baseline."""
    small = Image.fromarray(astronaut_rgb).resize((16, 16), Image.BICUBIC)
    return np.array(small.resize((128, 128), Image.BICUBIC))


def noisy(rgb, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0, sigma, rgb.shape)
    return np.clip(rgb + noise, 0, 255).round().astype(np.uint8)


def grey(value, size=128):
    return np.full((size, size, 3), value, dtype=np.uint8)


# ----------------------------------------------------------------------------------------- Y channel

@pytest.mark.parametrize('rgb, rounded, truncated', [
    ((0, 0, 0), 16, 16),  # 16 exactly
    ((255, 255, 255), 235, 235),  # 16 + 219 exactly
    ((128, 128, 128), 126, 125),  # 16 + 128*219/255 = 125.93
    ((10, 20, 30), 32, 31),  # 16 + (654.81 + 2571.06 + 748.98)/255 = 31.59
    ((255, 0, 0), 81, 81),  # 16 + 65.481 = 81.481
    ((0, 255, 0), 145, 144),  # 16 + 128.553 = 144.553
    ((0, 0, 255), 41, 40),  # 16 + 24.966 = 40.966
])
def test_y_channel_formula_against_hand_computed_values(rgb, rounded, truncated):
    pixel = np.array([[rgb]], dtype=np.uint8)
    assert rgb_to_y_rounded(pixel)[0, 0] == rounded
    assert rgb_to_y_truncated(pixel)[0, 0] == truncated
    assert rgb_to_y_rounded(pixel).dtype == np.uint8


# ----------------------------------------------------------------------------------------- PSNR / SSIM

def checkerboard(value_a, value_b, size=128, cell=4):
    cells = (np.indices((size, size)) // cell).sum(axis=0) % 2
    return np.where(cells[..., None] == 0, value_a, value_b).repeat(3, axis=2).astype(np.uint8)


def test_psnr_of_a_pair_whose_y_differs_by_a_known_constant():
    # Greys 0, 85, 170, 255 have integer Y 16, 89, 162, 235 (g*219/255 with g a multiple of 85), so rounding and
    # truncation agree and the Y difference is exactly 73 inside; the 8-px border is left identical.
    hr = checkerboard(0, 170)
    sr = hr.copy()
    sr[8:-8, 8:-8] = checkerboard(85, 255)[8:-8, 8:-8]
    assert calculate_face_psnr(sr, hr, protocol='sfmnet') == pytest.approx(20 * math.log10(255 / 73), abs=1e-12)
    # SPARNet does not crop: the squared error is diluted over the 128x128 image, 112x112 of which differ.
    sparnet_mse = 73**2 * 112**2 / 128**2
    assert calculate_face_psnr(sr, hr, protocol='sparnet') == pytest.approx(10 * math.log10(255**2 / sparnet_mse),
                                                                            abs=1e-12)


def test_border_crop_is_8_for_sfmnet_whatever_happens_in_the_border():
    hr = grey(0)
    sr = hr.copy()
    sr[:8] = 255  # only the top 8 rows differ
    assert calculate_face_psnr(sr, hr, protocol='sfmnet') == math.inf
    assert calculate_face_psnr(sr, hr, protocol='sfmnet', crop_border=7) < math.inf
    assert calculate_face_psnr(sr, hr, protocol='sparnet') < math.inf
    assert calculate_face_psnr(sr, hr, protocol='sparnet', crop_border=8) == math.inf


def test_rounding_versus_truncation_of_y():
    # grey 128 -> Y 125.93 and grey 127 -> Y 125.07: rounded 126 vs 125 (one level apart), truncated 125 vs 125.
    hr, sr = grey(128), grey(127)
    assert calculate_face_psnr(sr, hr, protocol='sfmnet') == pytest.approx(20 * math.log10(255), abs=1e-12)
    assert calculate_face_psnr(sr, hr, protocol='sparnet') == math.inf


def test_inputs_are_bgr_as_basicsr_passes_them():
    # A pure red and a pure blue image have different Y (81 vs 41); read as RGB they would swap.
    red_rgb = np.zeros((32, 32, 3), np.uint8)
    red_rgb[..., 0] = 255
    black = np.zeros_like(red_rgb)
    expected = 20 * math.log10(255 / (81 - 16))
    assert calculate_face_psnr(to_bgr(red_rgb), black, protocol='sfmnet') == pytest.approx(expected, abs=1e-12)
    assert calculate_face_psnr(red_rgb, black, protocol='sfmnet') != pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize('protocol', ['sfmnet', 'sparnet'])
def test_psnr_and_ssim_follow_the_reference_formulas_on_a_real_face(astronaut_rgb, bicubic_sr_rgb, protocol):
    if protocol == 'sfmnet':
        crop = slice(8, -8)
        y_hr, y_sr = (np.round(16 + (65.481 * im[..., 0] + 128.553 * im[..., 1] + 24.966 * im[..., 2]) / 255)
                      .astype(np.uint8)[crop, crop] for im in (astronaut_rgb, bicubic_sr_rgb))
        ssim_options = {}
    else:
        y_hr, y_sr = ((16 + (65.481 * im[..., 0] + 128.553 * im[..., 1] + 24.966 * im[..., 2]) / 255).astype(np.uint8)
                      for im in (astronaut_rgb, bicubic_sr_rgb))
        ssim_options = {'gaussian_weights': True, 'sigma': 1.5, 'use_sample_covariance': False}
    mse = np.mean((y_sr.astype(np.float64) - y_hr.astype(np.float64))**2)
    sr, hr = to_bgr(bicubic_sr_rgb), to_bgr(astronaut_rgb)
    assert calculate_face_psnr(sr, hr, protocol=protocol) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert calculate_face_ssim(sr, hr, protocol=protocol) == pytest.approx(
        structural_similarity(y_sr, y_hr, data_range=255, **ssim_options), abs=1e-12)


def test_protocols_give_different_numbers_for_the_same_images(astronaut_rgb, bicubic_sr_rgb):
    sr, hr = to_bgr(bicubic_sr_rgb), to_bgr(astronaut_rgb)
    psnr = {protocol: calculate_face_psnr(sr, hr, protocol=protocol, crop_border=8 if protocol == 'dic' else None)
            for protocol in ('sfmnet', 'sparnet', 'dic')}
    ssim = {protocol: calculate_face_ssim(sr, hr, protocol=protocol, crop_border=8 if protocol == 'dic' else None)
            for protocol in ('sfmnet', 'sparnet', 'dic')}
    assert 15 < min(psnr.values()) < max(psnr.values()) < 40
    assert len(set(psnr.values())) == 3 and len(set(ssim.values())) == 3


@pytest.mark.parametrize('protocol', ['sfmnet', 'sparnet', 'dic'])
def test_ssim_of_an_image_with_itself_is_one(astronaut_rgb, protocol):
    hr = to_bgr(astronaut_rgb)
    assert calculate_face_ssim(hr, hr.copy(), protocol=protocol, crop_border=4 if protocol == 'dic' else None) \
        == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize('scale', [4, 8])
def test_dic_protocol_is_basicsr_y_channel_metrics_with_crop_equal_to_scale(astronaut_rgb, bicubic_sr_rgb, scale):
    sr, hr = to_bgr(bicubic_sr_rgb), to_bgr(astronaut_rgb)
    assert calculate_face_psnr(sr, hr, protocol='dic', crop_border=scale) == calculate_psnr(
        sr, hr, crop_border=scale, test_y_channel=True)
    assert calculate_face_ssim(sr, hr, protocol='dic', crop_border=scale) == calculate_ssim(
        sr, hr, crop_border=scale, test_y_channel=True)
    with pytest.raises(ValueError, match='crop_border to the scale'):
        calculate_face_psnr(sr, hr, protocol='dic')


def test_chw_input_order(astronaut_rgb, bicubic_sr_rgb):
    sr, hr = to_bgr(bicubic_sr_rgb), to_bgr(astronaut_rgb)
    assert calculate_face_psnr(sr.transpose(2, 0, 1), hr.transpose(2, 0, 1), input_order='CHW') == \
        calculate_face_psnr(sr, hr)


def test_invalid_inputs_are_rejected(astronaut_rgb):
    hr = to_bgr(astronaut_rgb)
    with pytest.raises(ValueError, match='Unknown face metric protocol'):
        calculate_face_psnr(hr, hr, protocol='matlab')
    with pytest.raises(TypeError, match='uint8'):
        calculate_face_ssim(hr.astype(np.float32), hr.astype(np.float32))
    with pytest.raises(ValueError, match='shapes'):
        calculate_face_psnr(hr, hr[:64])


def test_metrics_are_selected_by_basicsr_option_dicts(astronaut_rgb, bicubic_sr_rgb):
    data = {'img': to_bgr(bicubic_sr_rgb), 'img2': to_bgr(astronaut_rgb)}
    assert calculate_metric(data, {'type': 'calculate_face_psnr', 'protocol': 'sparnet'}) == \
        calculate_face_psnr(protocol='sparnet', **data)
    assert calculate_metric(data, {'type': 'calculate_face_ssim'}) == calculate_face_ssim(**data)


# ----------------------------------------------------------------------------------------- LPIPS

def random_lpips(img, img2, **options):
    return calculate_lpips(img, img2, random_backbone_for_tests=True, device='cpu', **options)


def test_lpips_without_weights_file_says_which_file_and_where(astronaut_rgb, empty_weight_locations):
    hr = to_bgr(astronaut_rgb)
    with pytest.raises(FileNotFoundError) as error:
        calculate_lpips(hr, hr, device='cpu')
    for expected in ('alexnet-owt-7be5be79.pth', ALEXNET_URL, 'weights_path', PRETRAINED_DIR_ENV_VAR):
        assert expected in str(error.value)


def test_lpips_random_backbone_warns_once_per_network():
    lpips_network.cache_clear()
    with pytest.warns(UserWarning) as warned:
        lpips_network('alex', None, 'cpu')
    # ours alone: not torchvision's deprecation notes about the pretrained= arguments lpips passes
    assert [str(warning.message)[:31] for warning in warned] == ['LPIPS-alex uses a RANDOMLY INIT']
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        lpips_network('alex', None, 'cpu')  # cached: no second warning for the next image


@pytest.mark.parametrize('protocol', ['standard', 'sfmnet'])
def test_lpips_is_zero_for_identical_images_and_grows_with_noise(astronaut_rgb, protocol):
    hr = to_bgr(astronaut_rgb)
    assert random_lpips(hr, hr.copy(), protocol=protocol) == 0
    distances = [random_lpips(to_bgr(noisy(astronaut_rgb, sigma)), hr, protocol=protocol) for sigma in (5, 20, 60)]
    assert 0 < distances[0] < distances[1] < distances[2]


def test_lpips_standard_protocol_is_lpips_on_rgb_in_minus_one_to_one(astronaut_rgb, bicubic_sr_rgb):
    model = lpips_network('alex', None, 'cpu')
    rgb_tensors = [torch.from_numpy(im).permute(2, 0, 1)[None].float() / 127.5 - 1
                   for im in (bicubic_sr_rgb, astronaut_rgb)]
    with torch.no_grad():
        expected = model(*rgb_tensors).item()
    assert random_lpips(to_bgr(bicubic_sr_rgb), to_bgr(astronaut_rgb)) == pytest.approx(expected, rel=1e-5)


def test_lpips_sfmnet_protocol_reproduces_eval_lpips(astronaut_rgb, bicubic_sr_rgb):
    # eval_lpips.py: rounded Y of the RGB PNGs, cropped by 8, as a 2-D float tensor in [16, 235] straight into LPIPS
    # (whose ScalingLayer broadcasts it to 1x3xHxW).
    model = lpips_network('alex', None, 'cpu')
    y_planes = [torch.from_numpy(rgb_to_y_rounded(im)[8:-8, 8:-8]).float() for im in (bicubic_sr_rgb, astronaut_rgb)]
    assert y_planes[0].shape == (112, 112) and y_planes[0].min() >= 16 and y_planes[0].max() <= 235
    with torch.no_grad():
        expected = model(*y_planes).item()
    sfmnet = random_lpips(to_bgr(bicubic_sr_rgb), to_bgr(astronaut_rgb), protocol='sfmnet')
    assert sfmnet == pytest.approx(expected, rel=1e-6)
    assert sfmnet != pytest.approx(random_lpips(to_bgr(bicubic_sr_rgb), to_bgr(astronaut_rgb)), rel=1e-3)


@pytest.mark.parametrize('net, torchvision_model', [('alex', 'alexnet'), ('squeeze', 'squeezenet1_1')])
def test_lpips_loads_a_local_torchvision_state_dict_into_its_trunk(astronaut_rgb, tmp_path, net, torchvision_model):
    state_dict = getattr(torchvision.models, torchvision_model)(weights=None).state_dict()
    weights_file = tmp_path / f'{torchvision_model}.pth'
    torch.save(state_dict, weights_file)

    hr = to_bgr(astronaut_rgb)
    distance = calculate_lpips(to_bgr(noisy(astronaut_rgb, 20)), hr, net=net, weights_path=str(weights_file),
                               device='cpu')
    assert math.isfinite(distance) and distance > 0

    trunk = lpips_network(net, str(weights_file), 'cpu').net
    loaded = dict(trunk.named_parameters())
    assert len(loaded) == len([key for key in state_dict if key.startswith('features.')])
    for name, parameter in loaded.items():  # 'slice<k>.<index>.<param>' <- 'features.<index>.<param>'
        _, index, kind = name.split('.', 2)
        assert torch.equal(parameter, state_dict[f'features.{index}.{kind}'])


def test_lpips_trunk_loading_rejects_a_wrong_state_dict(astronaut_rgb, tmp_path):
    weights_file = tmp_path / 'not_alexnet.pth'
    torch.save({'classifier.1.weight': torch.zeros(1)}, weights_file)
    with pytest.raises(UnsafeOrInvalidFileError, match='features.0.weight'):  # one line naming the file
        lpips_network('alex', str(weights_file), 'cpu')


def test_lpips_linear_heads_are_the_calibrated_ones_shipped_with_lpips():
    heads_file = os.path.join(os.path.dirname(lpips.__file__), 'weights', 'v0.1', 'alex.pth')
    shipped = torch.load(heads_file, map_location='cpu')
    model = lpips_network('alex', None, 'cpu')
    for layer in range(5):
        assert torch.equal(model.lins[layer].model[1].weight, shipped[f'lin{layer}.model.1.weight'])
