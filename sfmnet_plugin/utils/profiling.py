"""What a network costs: parameters, multiply-accumulates per image and latency (``benchmarks/``, the benchmark).

MACs count every ``nn.Conv2d``, ``nn.ConvTranspose2d`` and ``nn.Linear`` with forward hooks (``output elements x
in_channels / groups x kernel area``; for a transposed conv ``input elements x out_channels / groups x kernel area``;
``output elements x in_features``), the convention of the papers' tables and of the official SFMNet
count (30.57 G for SFMNet x8, ``docs/fidelity.md`` §A3.4): FFTs, attention matmuls and element-wise operations are
not included. A module with a ``count_macs(args, output)`` method reports its own count (SFMNet's folded
down-sampler counts the two official convolutions it replaces).
"""
import statistics
import time

import torch
from torch import nn


def count_parameters(module) -> int:
    """The number of parameters of a torch module (0 for None: an optional part that is absent)."""
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def count_macs_per_image(model, inputs):
    """Conv2d, ConvTranspose2d and Linear multiply-accumulates of one forward of ``inputs``, per image."""
    total = 0

    def conv_hook(module, args, out):
        nonlocal total
        kernel_area = module.kernel_size[0] * module.kernel_size[1]
        total += out.numel() * (module.in_channels // module.groups) * kernel_area

    def transposed_conv_hook(module, args, out):
        nonlocal total
        kernel_area = module.kernel_size[0] * module.kernel_size[1]
        total += args[0].numel() * (module.out_channels // module.groups) * kernel_area

    def linear_hook(module, args, out):
        nonlocal total
        total += out.numel() * module.in_features

    def own_count_hook(module, args, out):
        nonlocal total
        total += module.count_macs(args, out)

    handles = []
    for module in model.modules():
        if hasattr(module, 'count_macs'):  # a block that computes its convolutions in another form, e.g. folded
            handles.append(module.register_forward_hook(own_count_hook))
        elif isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.ConvTranspose2d):
            handles.append(module.register_forward_hook(transposed_conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total / inputs.shape[0]


def time_runs(fn, warmup, repeats, synchronize=lambda: None):
    """(median, min) seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), min(seconds)
