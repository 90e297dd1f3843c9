"""pil_bicubic_resize must reproduce PIL's bicubic resize of float ("F") images and be differentiable."""
import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_plugin.archs import pil_resize
from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize, pil_bicubic_weights

SIZE_PAIRS = [
    ((16, 16), (128, 128)),  # x8, the official setting
    ((32, 32), (128, 128)),  # x4
    ((8, 8), (128, 128)),  # x16
    ((128, 128), (16, 16)),  # downsampling: antialiased (stretched kernel)
    ((20, 20), (160, 160)),
    ((24, 20), (192, 160)),  # non-square
    ((7, 13), (5, 29)),  # down along one axis, up along the other, odd sizes
    ((100, 37), (33, 61)),  # non-integer factors
    ((3, 3), (2, 2)),  # kernel wider than the image: every tap clipped and renormalised
]


def pil_reference(image_hw, out_hw):
    """PIL's own result for one float32 channel (PIL sizes are (width, height))."""
    pil_image = Image.fromarray(image_hw)
    assert pil_image.mode == 'F'
    return np.asarray(pil_image.resize((out_hw[1], out_hw[0]), Image.Resampling.BICUBIC))


@pytest.mark.parametrize('in_hw, out_hw', SIZE_PAIRS)
def test_matches_pil_per_channel(in_hw, out_hw):
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, *in_hw), dtype=np.float32)
    resized = pil_bicubic_resize(torch.from_numpy(images), out_hw).numpy()
    assert resized.shape == (2, 3, *out_hw) and resized.dtype == np.float32
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(resized[b, c], pil_reference(images[b, c], out_hw), rtol=0, atol=1e-5)


def test_float64_matches_pil_and_square_size_can_be_an_int():
    rng = np.random.default_rng(1)
    image = rng.random((16, 16), dtype=np.float32)
    resized = pil_bicubic_resize(torch.from_numpy(image).double()[None, None], 128)[0, 0].numpy()
    np.testing.assert_allclose(resized, pil_reference(image, (128, 128)), rtol=0, atol=1e-6)


def test_weights_are_normalised_rows():
    for in_size, out_size in [(16, 128), (128, 16), (3, 2), (20, 160)]:
        weights = pil_bicubic_weights(in_size, out_size)
        assert weights.shape == (out_size, in_size)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(pil_bicubic_weights(5, 5), np.eye(5))


def test_same_size_is_the_identity():
    images = torch.rand(1, 3, 12, 10)
    assert pil_bicubic_resize(images, (12, 10)) is images


def test_is_differentiable():
    images = torch.rand(1, 2, 3, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: pil_bicubic_resize(x, (7, 4)), (images,))


def test_weight_matrices_are_cached_per_size_device_and_dtype():
    first = pil_resize._weights_on(16, 128, torch.device('cpu'), torch.float32)
    assert pil_resize._weights_on(16, 128, torch.device('cpu'), torch.float32) is first
    as_double = pil_resize._weights_on(16, 128, torch.device('cpu'), torch.float64)
    assert as_double is not first and as_double.dtype == torch.float64


def test_weights_cached_under_inference_mode_still_support_backward():
    with torch.inference_mode():
        pil_bicubic_resize(torch.rand(1, 1, 9, 9), (27, 27))  # first use fills the cache here
    images = torch.rand(1, 1, 9, 9, requires_grad=True)
    pil_bicubic_resize(images, (27, 27)).sum().backward()
    assert images.grad is not None


def test_rejects_integer_images():
    with pytest.raises(TypeError, match='floating-point'):
        pil_bicubic_resize(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), (8, 8))
