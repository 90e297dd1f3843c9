"""How well a network's output is determined by its input: the yardstick for comparing precisions and backends.

SFMNet's output moves by up to ~1e-2 when its input moves by 1e-7 (see ``FFTBlock``'s conditioning note), so
bf16, ONNX Runtime or another GPU can never match float32 PyTorch more closely than that. Parity checks therefore
use the network's own measured sensitivity as their tolerance.
"""
import torch


@torch.no_grad()
def input_sensitivity(net, inputs, delta=1e-7, trials=3, seed=0):
    """Largest ``|net(x + d) - net(x)|`` over ``trials`` random sign perturbations ``d`` of size ``delta``.

    ``net`` maps a ``B x C x H x W`` tensor to an image tensor (the first output when it returns several);
    the result is a float (0 for a network whose output does not notice such a change).

    A face network's default input step rounds the LR to 8 bits (``lr_resize: pil_uint8``), which would round such
    a change away; for the measurement every module with an ``lr_resize`` takes the float resize
    (``pil_float``), so the change reaches the network, as rounding differences inside it do.
    """
    def run(x):
        out = net(x)
        return (out[0] if isinstance(out, (tuple, list)) else out).float()

    modules = [module for module in net.modules() if hasattr(module, 'lr_resize')] if hasattr(net, 'modules') else []
    saved = [module.lr_resize for module in modules]
    for module in modules:
        module.lr_resize = 'pil_float'
    try:
        reference = run(inputs)
        generator = torch.Generator().manual_seed(seed)
        largest = 0.0
        for _ in range(trials):
            signs = torch.randint(0, 2, inputs.shape, generator=generator).to(inputs) * 2 - 1
            largest = max(largest, float((run(inputs + delta * signs) - reference).abs().max()))
    finally:
        for module, value in zip(modules, saved):
            module.lr_resize = value
    return largest


def psnr(image, reference, data_range=1.0):
    """PSNR in dB of ``image`` against ``reference`` (tensors of one shape, values clamped to [0, data_range])."""
    image, reference = image.float().clamp(0, data_range), reference.float().clamp(0, data_range)
    mse = float(((image - reference) ** 2).mean())
    return float('inf') if mse == 0 else 10 * torch.log10(torch.tensor(data_range**2 / mse)).item()
