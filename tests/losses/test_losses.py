"""The frequency loss, the perceptual loss with local VGG weights, and the pretrained-file lookup."""
import math
import os

import pytest
import torch
import torchvision
from basicsr.archs import vgg_arch
from basicsr.losses import build_loss
from torch.nn import functional as F

from sfmnet_plugin.archs.spectral import safe_angle
from sfmnet_plugin.losses.face_perceptual_loss import FacePerceptualLoss
from sfmnet_plugin.losses.frequency_loss import FrequencyLoss, amplitude_phase_l1
from sfmnet_plugin.utils.pretrained import PRETRAINED_DIR_ENV_VAR, PretrainedFile, resolve_pretrained_file

VGG19_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'


def official_frequency_loss(pred, target):
    """SFMNet's formula with torch.angle (docs/fidelity.md §A5): 0.01 * (L1 of amplitudes + L1 of raw phases)."""
    pred_spectrum, target_spectrum = torch.fft.rfft2(pred, norm='backward'), torch.fft.rfft2(target, norm='backward')
    return 0.01 * (F.l1_loss(pred_spectrum.abs(), target_spectrum.abs())
                   + F.l1_loss(pred_spectrum.angle(), target_spectrum.angle()))


# ----------------------------------------------------------------------------------------- frequency loss

def test_frequency_loss_of_a_2x2_image_computed_by_hand():
    # For a 2x2 image [[a, b], [c, d]] rfft2 keeps 2x2 coefficients, all real:
    # a+b+c+d = 10, a-b+c-d = -2, a+b-c-d = -4, a-b-c+d = 0 -> amplitudes 10, 2, 4, 0 and phases 0, pi, pi, 0.
    # Against a zero target (amplitude 0, phase 0): mean |amp| = 16/4, mean |phase| = 2*pi/4.
    pred = torch.tensor([[[[1., 2.], [3., 4.]]]])
    loss = FrequencyLoss()(pred, torch.zeros_like(pred))
    assert loss.item() == pytest.approx(0.01 * (4 + math.pi / 2), rel=1e-6)


def test_frequency_loss_equals_the_official_formula_on_random_images():
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 16, 13), torch.rand(2, 3, 16, 13)  # odd width: W//2+1 = 7 columns
    assert torch.allclose(FrequencyLoss()(pred, target), official_frequency_loss(pred, target), rtol=1e-6, atol=0)


def test_frequency_loss_weights_and_separate_terms():
    torch.manual_seed(1)
    pred, target = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    amplitude, phase = amplitude_phase_l1(pred, target)
    loss = FrequencyLoss(loss_weight=0.5, amplitude_weight=2.0, phase_weight=3.0)
    amplitude_term, phase_term = loss.weighted_terms(pred, target)
    assert torch.allclose(amplitude_term, 0.5 * 2.0 * amplitude)
    assert torch.allclose(phase_term, 0.5 * 3.0 * phase)
    assert torch.allclose(loss(pred, target), amplitude_term + phase_term)
    assert FrequencyLoss(reduction='none')(pred, target).shape == (1, 3, 8, 5)


def test_safe_angle_matches_torch_angle_and_its_gradient_away_from_zero():
    torch.manual_seed(2)
    spectrum = torch.fft.rfft2(torch.rand(2, 3, 8, 8))
    assert torch.equal(safe_angle(spectrum), spectrum.angle())

    pred, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    official_grad, = torch.autograd.grad(official_frequency_loss(pred, target), pred)
    our_grad, = torch.autograd.grad(FrequencyLoss()(pred, target), pred)
    assert torch.allclose(our_grad, official_grad, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize('fill', [0.0, 0.5, 1e-30], ids=['zeros', 'constant', 'tiny'])
def test_frequency_loss_gradient_is_finite_where_the_spectrum_vanishes(fill):
    # A constant image has a zero spectrum except at DC; a 1e-30 image has coefficients whose phase
    # gradient 1/|z| overflows: torch.angle then gives NaN, the safe angle does not.
    pred = torch.full((1, 3, 8, 8), fill, requires_grad=True)
    target = torch.rand(1, 3, 8, 8)
    grad, = torch.autograd.grad(FrequencyLoss()(pred, target), pred)
    assert torch.isfinite(grad).all()
    if fill == 1e-30:
        official_grad, = torch.autograd.grad(official_frequency_loss(pred, target), pred)
        assert not torch.isfinite(official_grad).all()


def test_frequency_loss_is_built_from_an_option_dict():
    loss = build_loss({'type': 'FrequencyLoss', 'loss_weight': 0.01})
    assert isinstance(loss, FrequencyLoss)


# ----------------------------------------------------------------------------------------- pretrained-file lookup

def test_pretrained_file_names_come_from_torchvision():
    assert PretrainedFile.torchvision('vgg19') == PretrainedFile('vgg19-dcbb9e9d.pth', VGG19_URL)


def test_lookup_order_explicit_path_then_env_dir_then_hub_cache(empty_weight_locations, monkeypatch):
    weights = PretrainedFile('w-0123.pth', 'https://example.invalid/w-0123.pth')
    hub_file = os.path.join(torch.hub.get_dir(), 'checkpoints', weights.filename)
    os.makedirs(os.path.dirname(hub_file))
    open(hub_file, 'wb').close()
    assert resolve_pretrained_file(weights) == hub_file

    env_dir = empty_weight_locations / 'env_dir'
    env_dir.mkdir()
    (env_dir / weights.filename).touch()
    monkeypatch.setenv(PRETRAINED_DIR_ENV_VAR, str(env_dir))
    assert resolve_pretrained_file(weights) == str(env_dir / weights.filename)

    explicit = empty_weight_locations / 'elsewhere.pth'
    explicit.touch()
    assert resolve_pretrained_file(weights, str(explicit)) == str(explicit)


def test_an_explicit_path_that_does_not_exist_is_an_error_not_a_fallback(empty_weight_locations):
    weights = PretrainedFile('w-0123.pth', 'https://example.invalid/w-0123.pth')
    with pytest.raises(FileNotFoundError, match='my_option: no file at .*nowhere.pth'):
        resolve_pretrained_file(weights, str(empty_weight_locations / 'nowhere.pth'), option_name='my_option')


# ----------------------------------------------------------------------------------------- perceptual loss

SFMNET_PERCEPTUAL_OPTIONS = {'layer_weights': {'conv5_4': 1.0}, 'use_input_norm': False, 'range_norm': False,
                             'perceptual_weight': 0.1}


def test_perceptual_loss_without_weights_file_says_which_file_and_where(empty_weight_locations):
    with pytest.raises(FileNotFoundError) as error:
        FacePerceptualLoss(**SFMNET_PERCEPTUAL_OPTIONS)
    message = str(error.value)
    for expected in ('vgg19-dcbb9e9d.pth', VGG19_URL, 'vgg_weights_path', PRETRAINED_DIR_ENV_VAR,
                     os.path.join(torch.hub.get_dir(), 'checkpoints')):
        assert expected in message


@pytest.fixture(scope='module')
def random_vgg19_file(tmp_path_factory):
    """A torchvision VGG19 state dict with random weights (548 MB, deleted after the module's tests)."""
    path = tmp_path_factory.mktemp('vgg') / 'vgg19-dcbb9e9d.pth'
    torch.save(torchvision.models.vgg19(weights=None).state_dict(), path)
    yield path
    path.unlink()


def test_perceptual_loss_loads_a_local_vgg19_file_and_passes_gradients(random_vgg19_file):
    saved = torch.load(random_vgg19_file, weights_only=True)
    global_path_before = vgg_arch.VGG_PRETRAIN_PATH
    loss = build_loss({'type': 'FacePerceptualLoss', 'vgg_weights_path': str(random_vgg19_file),
                       **SFMNET_PERCEPTUAL_OPTIONS})
    assert vgg_arch.VGG_PRETRAIN_PATH == global_path_before  # restored for every other VGG user
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, saved['features.0.weight'])
    assert torch.equal(loss.vgg.vgg_net.conv5_4.bias, saved['features.34.bias'])
    assert list(loss.vgg.vgg_net._modules)[-1] == 'conv5_4'  # stops before relu5_4, as SFMNet's features[:35]

    torch.manual_seed(3)
    pred, target = torch.rand(1, 3, 32, 32, requires_grad=True), torch.rand(1, 3, 32, 32)
    perceptual, style = loss(pred, target)
    assert style is None and torch.isfinite(perceptual) and perceptual > 0
    perceptual.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_random_vgg_for_tests_warns_and_leaves_basicsr_untouched():
    vgg_module_before = vgg_arch.vgg
    with pytest.warns(UserWarning, match='RANDOMLY INITIALISED'):
        loss = FacePerceptualLoss(random_backbone_for_tests=True, **SFMNET_PERCEPTUAL_OPTIONS)
    assert vgg_arch.vgg is vgg_module_before
    percep, _ = loss(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    assert torch.isfinite(percep)
    with pytest.raises(ValueError, match='either'):
        FacePerceptualLoss(vgg_weights_path='x.pth', random_backbone_for_tests=True, **SFMNET_PERCEPTUAL_OPTIONS)
