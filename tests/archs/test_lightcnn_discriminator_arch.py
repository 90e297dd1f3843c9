"""The LightCNN-9 spatial and frequency discriminators of SFMNet's GAN stage."""
import pytest
import torch
from basicsr.archs import build_network

from sfmnet_plugin.archs.lightcnn_discriminator_arch import SFMNetFrequencyDiscriminator, SFMNetSpatialDiscriminator
from sfmnet_plugin.archs.spectral import safe_angle


@pytest.fixture(scope='module')
def discriminators():
    torch.manual_seed(0)
    return {'spatial': SFMNetSpatialDiscriminator(), 'frequency': SFMNetFrequencyDiscriminator()}


def test_official_parameter_counts(discriminators, count_parameters):
    assert count_parameters(discriminators['spatial']) == 5_485_921
    assert count_parameters(discriminators['frequency']) == 3_920_257
    assert discriminators['spatial'].classifier[0].linear.in_features == 128 * 8 * 8
    assert discriminators['frequency'].classifier[0].linear.in_features == 128 * 8 * 5
    # first MFM conv: 3 -> 96 on the image, 6 -> 96 on amplitude + phase
    assert count_parameters(discriminators['frequency'].features[0]) == 14_496


def test_registered_in_basicsr():
    assert isinstance(build_network({'type': 'SFMNetSpatialDiscriminator'}), SFMNetSpatialDiscriminator)
    assert isinstance(build_network({'type': 'SFMNetFrequencyDiscriminator', 'input_size': 64}),
                      SFMNetFrequencyDiscriminator)


@pytest.mark.parametrize('kind', ['spatial', 'frequency'])
@pytest.mark.parametrize('size', [128, 64, 96, 256])
def test_any_input_size_gives_logits_and_input_gradients(discriminators, kind, size):
    images = torch.rand(2, 3, size, size, requires_grad=True)
    logits = discriminators[kind](images)
    assert logits.shape == (2, 1)
    logits.sum().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_frequency_discriminator_sees_amplitude_and_phase_of_rfft2(discriminators):
    discriminator = discriminators['frequency']
    seen = []
    hook = discriminator.features.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    images = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        discriminator(images)
    hook.remove()
    spectrum = torch.fft.rfft2(images, norm='backward')
    assert seen[0].shape == (1, 6, 128, 65)
    torch.testing.assert_close(seen[0], torch.cat([spectrum.abs(), spectrum.angle()], dim=1))


@pytest.mark.parametrize('value', [0.0, 0.5, 1.0])
def test_constant_images_give_finite_gradients(discriminators, value):
    images = torch.full((1, 3, 64, 64), value, requires_grad=True)
    discriminators['frequency'](images).sum().backward()
    assert torch.isfinite(images.grad).all()


def test_safe_angle_equals_angle_and_has_zero_gradient_at_zero():
    torch.manual_seed(0)
    spectrum = torch.complex(torch.randn(100), torch.randn(100))
    spectrum[:5] = 0
    torch.testing.assert_close(safe_angle(spectrum), spectrum.angle())
    real = torch.tensor([0.0, 3.0, -1.0], requires_grad=True)
    imag = torch.tensor([0.0, 4.0, 0.0], requires_grad=True)
    safe_angle(torch.complex(real, imag)).sum().backward()
    assert real.grad[0] == 0 and imag.grad[0] == 0  # exact zero: gradient 0, not NaN
    torch.testing.assert_close(real.grad[1:], torch.tensor([-4.0 / 25, 0.0]))  # d atan2(y, x) / dx = -y / r^2
    torch.testing.assert_close(imag.grad[1:], torch.tensor([3.0 / 25, -1.0]))  # d atan2(y, x) / dy = x / r^2


def test_spectrum_stays_float32_under_autocast(discriminators):
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        reference = discriminators['frequency'](images)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            reduced = discriminators['frequency'](images)
    assert torch.isfinite(reduced).all()
    torch.testing.assert_close(reduced.float(), reference, rtol=0.1, atol=0.1)
