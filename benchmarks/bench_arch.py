"""Benchmark SFMNet, SPARNet, SMLNet (unofficial) and discriminators: parameters, MACs, latency, training, memory.

    python benchmarks/bench_arch.py                                   # the default models, CPU, defaults below
    python benchmarks/bench_arch.py --models sfmnet sparnet --threads 2 --warmup 1 --repeats 3
    python benchmarks/bench_arch.py --models sparnethd sparnethd-d --hd-size 256   # SPARNetHD at a small size
    python benchmarks/bench_arch.py --device cuda --amp bf16 --channels-last --compile

Method (docs/fidelity.md §A9, the one that timed the official code, extended): ``--warmup`` untimed runs, then the
median (and min) of ``--repeats`` timed runs. Forward: ``eval()`` under ``no_grad`` for each ``--batch-sizes``.
Training step: ``train()``, forward + loss + backward (no optimiser step) at ``--train-batch-size``; SFMNet (and
SMLNet) its stage-1 loss ``L1(sr) + L1(sr_fre) + 0.01 (L1 of |rfft2| + L1 of angle(rfft2), on sr_fre)``, SPARNet its
official L1 (and SPARNetHD L1 alone, without its GAN and perceptual terms), a discriminator
``BCEWithLogits(logits, 1)`` (summed over the scales of the multi-scale one). Inputs are random data in [0, 1]: SFMNet
and SPARNet get the LR face (``--size / --scale``) and upsample it themselves, a discriminator the ``--size`` image;
SPARNetHD and its discriminator take a ``--hd-size`` image (SPARNetHD restores a face already at its output size).
SPARNetHD is heavy (181 GMACs at the default --hd-size 256, 724 G at its native 512x512), so it is not among the
default models.

Ratios (``--ratio-modes``): every generator is also timed alternately, in the same process, in each speed mode
against its baseline: for ``sfmnet`` and ``sfmnet-tiny`` the frozen copy of the pre-optimisation network
(``benchmarks/sfmnet_reference.py``, same weights) in fp32, for the others the same network in fp32 (eager,
contiguous). Modes: ``fp32`` (the network as it is), ``fp32-cl`` (channels_last weights), ``bf16`` (autocast),
``bf16-cl``, and the ``torch.compile``d ``fp32-compile`` and ``bf16-cl-compile`` (minutes of compilation on a
small CPU, more for the training step). The table gives the median of the per-pair time ratios, which survives a
shared machine's load far better than absolute times (``--cpu-time`` steadies it further). Peak memory of the
reference comes from its own process (``sfmnet-reference``, in the default model list).

MACs per image count multiply-accumulates of every ``nn.Conv2d``, ``nn.ConvTranspose2d`` and ``nn.Linear`` with hooks
(``sfmnet_plugin.utils.profiling``, which the comparison benchmark ``sfmnet-benchmark`` shares), like the count
of the official code's convs (30.57 G for SFMNet); FFTs, attention matmuls and element-wise ops are not included.
Peak memory: ``max_memory_allocated`` on CUDA, the process's peak RSS on CPU (each model runs in its own
process, so that includes the ~0.3-0.5 GB of torch itself). Prints a Markdown table.

Allocator (CPU, glibc): each measuring process applies the plugin's entry-point settings, which let glibc keep
freed memory for reuse (:mod:`sfmnet_plugin.utils.process_settings`), so it does not page-fault its whole working set
(gigabytes for SFMNet at batch 8) again on every iteration. ``--return-freed-memory`` measures with glibc's
default instead (every large tensor a fresh ``mmap``), as the official code's timings (docs/fidelity.md §A9) were taken.
"""
import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from functools import partial

BENCHMARK_MODELS = ('sfmnet', 'sfmnet-tiny', 'd-spatial', 'd-frequency', 'sparnet', 'sparnet-light', 'sparnethd',
                    'sparnethd-d', 'smlnet', 'smlnet-tiny', 'sfmnet-reference', 'sfmnet-tiny-reference')
DEFAULT_MODELS = ('sfmnet', 'sfmnet-tiny', 'd-spatial', 'd-frequency', 'sparnet', 'sparnet-light', 'smlnet',
                  'smlnet-tiny', 'sfmnet-reference')
TINY_SFMNET = dict(num_feat=16, num_heads=2)
RATIO_MODES = ('fp32', 'fp32-cl', 'bf16', 'bf16-cl', 'fp32-compile', 'bf16-cl-compile')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', choices=BENCHMARK_MODELS, default=list(DEFAULT_MODELS),
                        help='*-reference: the frozen pre-optimisation SFMNet (benchmarks/sfmnet_reference.py), in '
                             'its own process for its peak memory')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: torch default)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8], help='forward (eval) batch sizes')
    parser.add_argument('--train-batch-size', type=int, default=8, help='batch size of the training step (0: skip)')
    parser.add_argument('--size', type=int, default=128, help='HR image size')
    parser.add_argument('--scale', type=int, default=8, help='SFMNet/SPARNet factor (LR size = size / scale)')
    parser.add_argument('--hd-size', type=int, default=256,
                        help='image size for SPARNetHD and its discriminator (the discriminator needs >= 132)')
    parser.add_argument('--amp', choices=('none', 'bf16', 'fp16'), default='none', help='autocast dtype')
    parser.add_argument('--channels-last', action='store_true', help='channels_last weights and inputs')
    parser.add_argument('--compile', action='store_true', help='torch.compile the model')
    parser.add_argument('--ratio-modes', nargs='*', choices=RATIO_MODES, default=['fp32', 'bf16-cl'],
                        help='speed modes timed against the baseline (see the module docstring); none: no ratios')
    parser.add_argument('--cpu-time', action='store_true',
                        help='ratios from process CPU time instead of wall time (steadier on a shared machine)')
    parser.add_argument('--return-freed-memory', action='store_true',
                        help="CPU: glibc's default allocator behaviour instead of the plugin's (module docstring)")
    return parser.parse_args(argv)


def build_model(name, args):
    """``(model, input size, kind)``; kind: 'sfmnet', 'generator' (one image out) or 'discriminator'."""
    import sfmnet_plugin  # noqa: F401  (compatibility fixes before basicsr is imported)
    from sfmnet_plugin.utils.process_settings import apply_process_settings

    apply_process_settings()  # glibc keeps freed memory, as in the plugin's commands (unless --return-freed-memory)
    from sfmnet_plugin.archs.lightcnn_discriminator_arch import (
        SFMNetFrequencyDiscriminator,
        SFMNetSpatialDiscriminator,
    )
    from sfmnet_plugin.archs.patch_discriminator_arch import MultiScalePatchDiscriminator
    from sfmnet_plugin.archs.sfmnet_arch import SFMNet
    from sfmnet_plugin.archs.smlnet_arch import SMLNet
    from sfmnet_plugin.archs.sparnet_arch import SPARNet, SPARNetHD

    lr_size = args.size // args.scale
    builders = {
        'sfmnet': lambda: (SFMNet(upscale=args.scale), lr_size, 'sfmnet'),
        'sfmnet-tiny': lambda: (SFMNet(upscale=args.scale, **TINY_SFMNET), lr_size, 'sfmnet'),
        'sfmnet-reference': lambda: (reference_class()(upscale=args.scale), lr_size, 'sfmnet'),
        'sfmnet-tiny-reference': lambda: (reference_class()(upscale=args.scale, **TINY_SFMNET), lr_size, 'sfmnet'),
        'd-spatial': lambda: (SFMNetSpatialDiscriminator(input_size=args.size), args.size, 'discriminator'),
        'd-frequency': lambda: (SFMNetFrequencyDiscriminator(input_size=args.size), args.size, 'discriminator'),
        'sparnet': lambda: (SPARNet(upscale=args.scale), lr_size, 'generator'),
        'sparnet-light': lambda: (SPARNet(upscale=args.scale, res_depth=1, att_name='spar3d'), lr_size, 'generator'),
        'sparnethd': lambda: (SPARNetHD(), args.hd_size, 'generator'),
        'sparnethd-d': lambda: (MultiScalePatchDiscriminator(), args.hd_size, 'discriminator'),
        # SMLNet has SFMNet's two outputs and is trained with SFMNet's stage-1 loss
        'smlnet': lambda: (SMLNet(upscale=args.scale), lr_size, 'sfmnet'),
        'smlnet-tiny': lambda: (SMLNet(upscale=args.scale, **TINY_SFMNET), lr_size, 'sfmnet'),
    }
    return builders[name]()


def reference_class():
    """The frozen pre-optimisation SFMNet (same constructor and state-dict layout)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sfmnet_reference import ReferenceSFMNet

    return ReferenceSFMNet


def interleaved_ratio(after, before, warmup, repeats, synchronize, clock):
    """Median over repeats of time(after) / time(before), the two run alternately so load hits both alike."""
    for _ in range(warmup):
        after()
        before()
    ratios = []
    for _ in range(repeats):
        pair = []
        for fn in (before, after):
            synchronize()
            start = clock()
            fn()
            synchronize()
            pair.append(clock() - start)
        ratios.append(pair[1] / pair[0])
    return statistics.median(ratios)


def discriminator_loss(outputs):
    """``BCEWithLogits(logits, 1)``, summed over the scales of a multi-scale discriminator (features dropped)."""
    import torch
    import torch.nn.functional as F

    if isinstance(outputs, torch.Tensor):
        outputs = [outputs]
    logits = [scale[-1] if isinstance(scale, (list, tuple)) else scale for scale in outputs]
    return sum(F.binary_cross_entropy_with_logits(t.float(), torch.ones_like(t, dtype=torch.float32)) for t in logits)


def stage1_loss(outputs, target):
    """SFMNet's PSNR-stage loss (§A5); the Fourier terms in float32 with autocast off."""
    import torch
    import torch.nn.functional as F

    sr, sr_frequency = (out.float() for out in outputs)
    loss = F.l1_loss(sr, target) + F.l1_loss(sr_frequency, target)
    with torch.autocast(device_type=target.device.type, enabled=False):
        spectrum, target_spectrum = torch.fft.rfft2(sr_frequency), torch.fft.rfft2(target)
        fourier = (F.l1_loss(spectrum.abs(), target_spectrum.abs())
                   + F.l1_loss(spectrum.angle(), target_spectrum.angle()))
    return loss + 0.01 * fourier


def measure(name, args):
    """Every number of one model, in a fresh process (so peak RSS belongs to this model)."""
    import torch
    import torch.nn.functional as F

    from sfmnet_plugin.utils.profiling import count_macs_per_image, count_parameters, time_runs

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model, input_size, kind = build_model(name, args)
    model = model.to(device, memory_format=memory_format)
    num_params = count_parameters(model)
    output_size = args.hd_size if name.startswith('sparnethd') else args.size

    def random_inputs(batch):
        return torch.rand(batch, 3, input_size, input_size, device=device).to(memory_format=memory_format)

    model.eval()
    macs = count_macs_per_image(model, random_inputs(1))
    runner = torch.compile(model) if args.compile else model
    amp_dtype = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[args.amp]

    def autocast(dtype=amp_dtype):
        return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)

    synchronize = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)

    def forward(inputs, net=runner, dtype=amp_dtype):
        with torch.no_grad(), autocast(dtype):
            net(inputs)

    row = {'model': name, 'params': num_params, 'macs': macs}
    forward_inputs = {batch: random_inputs(batch) for batch in args.batch_sizes}
    for batch, inputs in forward_inputs.items():
        row[f'forward_b{batch}'] = time_runs(partial(forward, inputs), args.warmup, args.repeats, synchronize)

    if args.train_batch_size:
        model.train()
        batch = args.train_batch_size
        inputs = random_inputs(batch)
        target = torch.rand(batch, 3, output_size, output_size, device=device)

        def train_step(module=model, net=runner, dtype=amp_dtype):
            module.zero_grad(set_to_none=True)
            with autocast(dtype):
                if kind == 'sfmnet':
                    loss = stage1_loss(net(inputs, return_frequency=True), target)
                elif kind == 'generator':
                    loss = F.l1_loss(net(inputs).float(), target)
                else:
                    loss = discriminator_loss(net(inputs))
            loss.backward()

        row['train'] = time_runs(train_step, args.warmup, args.repeats, synchronize)

    if device.type == 'cuda':
        row['peak_memory'] = f'{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (CUDA allocated)'
    else:
        row['peak_memory'] = f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (peak RSS)'

    if kind != 'discriminator' and not name.endswith('-reference') and args.ratio_modes:
        # the baseline: the frozen pre-optimisation SFMNet, else this network; fp32, eager, contiguous, same weights
        baseline_name = f'{name}-reference' if name in ('sfmnet', 'sfmnet-tiny') else name
        baseline = build_model(baseline_name, args)[0].to(device)
        baseline.load_state_dict(model.state_dict())
        clock = time.process_time if args.cpu_time else time.perf_counter
        row['ratios'] = {}
        for mode in args.ratio_modes:
            if mode == 'fp32' and baseline_name == name:
                continue  # that is the baseline itself
            module, candidate, dtype = speed_mode(model, mode)
            ratios = {}
            module.eval()
            baseline.eval()
            for batch, inputs in forward_inputs.items():
                inputs = inputs.contiguous()
                ratios[f'forward_b{batch}'] = interleaved_ratio(
                    partial(forward, inputs, candidate, dtype), partial(forward, inputs, baseline, None),
                    args.warmup, args.repeats, synchronize, clock)
            if args.train_batch_size:
                module.train()
                baseline.train()
                ratios['train'] = interleaved_ratio(
                    partial(train_step, module, candidate, dtype), partial(train_step, baseline, baseline, None),
                    args.warmup, args.repeats, synchronize, clock)
            row['ratios'][mode] = ratios
    return row


def speed_mode(model, mode):
    """``(module, callable, autocast dtype)`` of ``mode`` ('bf16-cl-compile': bf16 autocast, channels_last weights,
    torch.compile) on a copy of ``model`` (fp32, contiguous weights)."""
    import copy

    import torch

    module = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    if '-cl' in mode:
        module = module.to(memory_format=torch.channels_last)
    runner = torch.compile(module) if mode.endswith('-compile') else module
    return module, runner, torch.bfloat16 if mode.startswith('bf16') else None


def format_seconds(median_and_min):
    median, minimum = median_and_min
    if median >= 1:
        return f'{median:.2f} s (min {minimum:.2f})'
    return f'{median * 1000:.0f} ms (min {minimum * 1000:.0f})'


def markdown_table(rows, args):
    forward_columns = [f'forward b{batch}' for batch in args.batch_sizes]
    train_columns = [f'fwd+bwd b{args.train_batch_size}'] if args.train_batch_size else []
    header = ['model', 'params', 'MACs/img (conv+linear)', *forward_columns, *train_columns, 'peak memory']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [row['model'], f"{row['params']:,}", f"{row['macs'] / 1e9:.2f} G"]
        cells += [format_seconds(row[f'forward_b{batch}']) for batch in args.batch_sizes]
        cells += [format_seconds(row['train'])] if args.train_batch_size else []
        cells.append(row['peak_memory'])
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def ratio_table(rows, args):
    """Each generator's speed modes against its baseline; SFMNet's peak-memory ratio from the separate processes."""
    by_name = {row['model']: row for row in rows}
    keys = [f'forward_b{batch}' for batch in args.batch_sizes] + (['train'] if args.train_batch_size else [])
    header = ['model', 'mode / baseline', *[key.replace('_', ' ') for key in keys], 'peak memory']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        reference = by_name.get(f"{row['model']}-reference")
        for mode, ratios in row.get('ratios', {}).items():
            baseline = 'before (frozen reference), fp32' if row['model'] in ('sfmnet', 'sfmnet-tiny') else 'fp32'
            memory = ''
            if mode == 'fp32' and reference:
                memory = f"{float(row['peak_memory'].split()[0]) / float(reference['peak_memory'].split()[0]):.2f}x"
            cells = [row['model'], f'{mode} / {baseline}', *[f'{ratios[key]:.2f}x' for key in keys], memory]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) if len(lines) > 2 else ''


def main(argv=None):
    args = parse_args(argv)
    import torch

    if args.return_freed_memory:  # the spawned measuring processes inherit it
        from sfmnet_plugin.utils.process_settings import OPT_OUT_VARIABLE

        os.environ[OPT_OUT_VARIABLE] = '1'
    # spawn: a fresh interpreter per model, so the peak RSS of one model does not carry over to the next
    context = multiprocessing.get_context('spawn')
    rows = []
    for name in args.models:
        with context.Pool(1) as pool:
            rows.append(pool.apply(measure, (name, args)))
        print(f'done: {name}', file=sys.stderr, flush=True)
    if args.device.startswith('cuda'):
        hardware = torch.cuda.get_device_name(args.device)
    else:
        hardware = f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores'
    settings = [
        f'torch {torch.__version__}', f'device {args.device} ({hardware})',
        f'threads {args.threads or torch.get_num_threads()}', f'amp {args.amp}',
        f'channels_last {args.channels_last}', f'compile {args.compile}',
        f'return_freed_memory {args.return_freed_memory}', f'HR {args.size}x{args.size}',
        f'SFMNet/SPARNet x{args.scale}',
        *([f'SPARNetHD {args.hd_size}x{args.hd_size}'] if any(m.startswith('sparnethd') for m in args.models) else []),
        f'warmup {args.warmup}', f'median of {args.repeats}', f'load average {os.getloadavg()[0]:.1f}',
    ]
    print(', '.join(settings) + '\n')
    print(markdown_table(rows, args))
    ratios = ratio_table(rows, args)
    if ratios:
        clock = 'CPU' if args.cpu_time else 'wall'
        print(f'\nSpeed modes against the baseline, timed alternately in one process ({clock} time, median of '
              f'{args.repeats} paired runs; < 1 is faster):\n')
        print(ratios)


if __name__ == '__main__':
    main()
