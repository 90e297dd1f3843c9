"""Benchmark SFMNet and its discriminators: parameters, MACs, latency, training-step time, peak memory.

    python benchmarks/bench_arch.py                                   # every model, CPU, defaults below
    python benchmarks/bench_arch.py --models sfmnet --threads 2 --warmup 1 --repeats 3
    python benchmarks/bench_arch.py --device cuda --amp bf16 --channels-last --compile

Method (the spec's section 9 harness, extended): ``--warmup`` untimed runs, then the median (and min) of
``--repeats`` timed runs. Forward: ``eval()`` under ``no_grad`` for each ``--batch-sizes``. Training step:
``train()``, forward + loss + backward (no optimiser step) at ``--train-batch-size``; the generator uses the
stage-1 loss ``L1(sr) + L1(sr_fre) + 0.01 (L1 of |rfft2| + L1 of angle(rfft2), on sr_fre)``, a discriminator
``BCEWithLogits(logits, 1)``. Inputs are random data in [0, 1]: the generator gets the LR face
(``--size / --scale``) and upsamples it itself, a discriminator the ``--size`` image.

After/before: ``sfmnet`` and ``sfmnet-tiny`` are also timed alternately, in the same process, against the frozen
copy of the pre-optimisation network (``benchmarks/sfmnet_reference.py``, same weights): the ratio table gives the
median of the per-pair time ratios, which survives a shared machine's load far better than absolute times
(``--cpu-time`` steadies it further). Peak memory of the reference comes from its own process
(``sfmnet-reference``, in the default model list).

MACs per image count multiply-accumulates of every ``nn.Conv2d`` and ``nn.Linear`` with forward hooks
(``output elements x in_channels / groups x kernel area``), like the spec's conv count (30.57 G for SFMNet);
FFTs, attention matmuls and element-wise ops are not included. Peak memory: ``max_memory_allocated`` on CUDA,
the process's peak RSS on CPU (each model runs in its own process, so that includes the ~0.3-0.5 GB of
torch itself). Prints a Markdown table.

``--keep-freed-memory`` (CPU, glibc): by default glibc serves every large tensor with a fresh ``mmap`` and
unmaps it on free, so each iteration page-faults the whole working set (gigabytes for SFMNet at batch 8)
again. On the 2-core VM this was measured on, that more than doubles the batch-8 times. The flag sets
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` for the measuring processes so freed memory is
reused; the default leaves the allocator alone, like the spec's timings.
"""
import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time

BENCHMARK_MODELS = ('sfmnet', 'sfmnet-tiny', 'd-spatial', 'd-frequency', 'sfmnet-reference', 'sfmnet-tiny-reference')
DEFAULT_MODELS = ('sfmnet', 'sfmnet-tiny', 'd-spatial', 'd-frequency', 'sfmnet-reference')
TINY_SFMNET = dict(num_feat=16, num_heads=2)


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
    parser.add_argument('--scale', type=int, default=8, help='SFMNet upscale factor (LR size = size / scale)')
    parser.add_argument('--amp', choices=('none', 'bf16', 'fp16'), default='none', help='autocast dtype')
    parser.add_argument('--channels-last', action='store_true', help='channels_last weights and inputs')
    parser.add_argument('--compile', action='store_true', help='torch.compile the model')
    parser.add_argument('--no-ratios', action='store_true',
                        help='skip the after/before ratios (SFMNet timed interleaved with the frozen reference)')
    parser.add_argument('--cpu-time', action='store_true',
                        help='time with process CPU time instead of wall time (steadier on a shared machine)')
    parser.add_argument('--keep-freed-memory', action='store_true',
                        help='CPU: keep glibc from returning freed blocks to the OS (see the module docstring)')
    return parser.parse_args(argv)


def build_model(name, args):
    import sfmnet_plugin  # noqa: F401  (compatibility fixes before basicsr is imported)
    from sfmnet_plugin.archs.lightcnn_discriminator_arch import (
        SFMNetFrequencyDiscriminator,
        SFMNetSpatialDiscriminator,
    )
    from sfmnet_plugin.archs.sfmnet_arch import SFMNet

    if name.startswith('sfmnet'):
        network = reference_class() if name.endswith('-reference') else SFMNet
        return network(upscale=args.scale, **(TINY_SFMNET if name.startswith('sfmnet-tiny') else {}))
    if name == 'd-spatial':
        return SFMNetSpatialDiscriminator(input_size=args.size)
    return SFMNetFrequencyDiscriminator(input_size=args.size)


def reference_class():
    """The frozen pre-optimisation SFMNet (same constructor and state-dict layout)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sfmnet_reference import ReferenceSFMNet

    return ReferenceSFMNet


def count_macs_per_image(model, inputs):
    """Conv2d + Linear multiply-accumulates of one forward, divided by the batch size."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(module, args, out):
        nonlocal total
        kernel_area = module.kernel_size[0] * module.kernel_size[1]
        total += out.numel() * (module.in_channels // module.groups) * kernel_area

    def linear_hook(module, args, out):
        nonlocal total
        total += out.numel() * module.in_features

    handles = [module.register_forward_hook(conv_hook if isinstance(module, nn.Conv2d) else linear_hook)
               for module in model.modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(inputs)
    for handle in handles:
        handle.remove()
    return total / inputs.shape[0]


def stage1_loss(outputs, target):
    """SFMNet's PSNR-stage loss (spec section 5); the Fourier terms in float32 with autocast off."""
    import torch
    import torch.nn.functional as F

    sr, sr_frequency = (out.float() for out in outputs)
    loss = F.l1_loss(sr, target) + F.l1_loss(sr_frequency, target)
    with torch.autocast(device_type=target.device.type, enabled=False):
        spectrum, target_spectrum = torch.fft.rfft2(sr_frequency), torch.fft.rfft2(target)
        fourier = (F.l1_loss(spectrum.abs(), target_spectrum.abs())
                   + F.l1_loss(spectrum.angle(), target_spectrum.angle()))
    return loss + 0.01 * fourier


def time_runs(fn, warmup, repeats, synchronize, clock=time.perf_counter):
    for _ in range(warmup):
        fn()
    synchronize()
    seconds = []
    for _ in range(repeats):
        start = clock()
        fn()
        synchronize()
        seconds.append(clock() - start)
    return statistics.median(seconds), min(seconds)


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


def measure(name, args):
    """Every number of one model, in a fresh process (so peak RSS belongs to this model)."""
    import torch
    import torch.nn.functional as F

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    is_generator = name.startswith('sfmnet')
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = build_model(name, args).to(device, memory_format=memory_format)
    num_params = sum(p.numel() for p in model.parameters())
    input_size = args.size // args.scale if is_generator else args.size

    def random_inputs(batch):
        return torch.rand(batch, 3, input_size, input_size, device=device).to(memory_format=memory_format)

    model.eval()
    macs = count_macs_per_image(model, random_inputs(1))
    runner = torch.compile(model) if args.compile else model
    amp_dtype = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[args.amp]

    def autocast():
        return torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    synchronize = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)

    clock = time.process_time if args.cpu_time else time.perf_counter

    def forward_fn(net, inputs):
        def forward():
            with torch.no_grad(), autocast():
                net(inputs)
        return forward

    def train_fn(module, net, inputs, target):
        def train_step():
            module.zero_grad(set_to_none=True)
            with autocast():
                if is_generator:
                    loss = stage1_loss(net(inputs, return_frequency=True), target)
                else:
                    logits = net(inputs).float()
                    loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            loss.backward()
        return train_step

    row = {'model': name, 'params': num_params, 'macs': macs}
    forward_inputs = {batch: random_inputs(batch) for batch in args.batch_sizes}
    for batch, inputs in forward_inputs.items():
        row[f'forward_b{batch}'] = time_runs(forward_fn(runner, inputs), args.warmup, args.repeats, synchronize, clock)

    if args.train_batch_size:
        model.train()
        batch = args.train_batch_size
        train_inputs = random_inputs(batch)
        target = torch.rand(batch, 3, args.size, args.size, device=device)
        row['train'] = time_runs(train_fn(model, runner, train_inputs, target), args.warmup, args.repeats,
                                 synchronize, clock)

    if device.type == 'cuda':
        row['peak_memory'] = f'{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (CUDA allocated)'
    else:
        row['peak_memory'] = f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (peak RSS)'

    if name in ('sfmnet', 'sfmnet-tiny') and not args.no_ratios:
        # after/before: this network against the frozen pre-optimisation one with the same weights, alternately
        reference = build_model(f'{name}-reference', args).to(device, memory_format=memory_format)
        reference.load_state_dict(model.state_dict())
        reference_runner = torch.compile(reference) if args.compile else reference
        ratios = {}
        model.eval()
        reference.eval()
        for batch, inputs in forward_inputs.items():
            ratios[f'forward_b{batch}'] = interleaved_ratio(
                forward_fn(runner, inputs), forward_fn(reference_runner, inputs), args.warmup, args.repeats,
                synchronize, clock)
        if args.train_batch_size:
            model.train()
            reference.train()
            ratios['train'] = interleaved_ratio(
                train_fn(model, runner, train_inputs, target), train_fn(reference, reference_runner, train_inputs,
                                                                         target),
                args.warmup, args.repeats, synchronize, clock)
        row['ratios'] = ratios
    return row


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
    """After/before (plugin / frozen reference) ratios, and the peak-memory ratio from the separate processes."""
    by_name = {row['model']: row for row in rows}
    keys = [f'forward_b{batch}' for batch in args.batch_sizes] + (['train'] if args.train_batch_size else [])
    header = ['model (after / before)', *[key.replace('_', ' ') for key in keys], 'peak memory']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        if 'ratios' not in row:
            continue
        reference = by_name.get(f"{row['model']}-reference")
        memory = '(run the -reference model too)'
        if reference:
            memory = f"{float(row['peak_memory'].split()[0]) / float(reference['peak_memory'].split()[0]):.2f}x"
        cells = [row['model'], *[f"{row['ratios'][key]:.2f}x" for key in keys], memory]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) if len(lines) > 2 else ''


def main(argv=None):
    args = parse_args(argv)
    import torch

    if args.keep_freed_memory:
        # glibc reads these once at process start; the spawned measuring processes inherit them.
        os.environ.update(MALLOC_MMAP_THRESHOLD_=str(2**34), MALLOC_TRIM_THRESHOLD_=str(2**34))
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
        f'keep_freed_memory {args.keep_freed_memory}', f'HR {args.size}x{args.size}', f'SFMNet x{args.scale}',
        f'warmup {args.warmup}', f'median of {args.repeats}', f'{"CPU" if args.cpu_time else "wall"} time',
        f'load average {os.getloadavg()[0]:.1f}',
    ]
    print(', '.join(settings) + '\n')
    print(markdown_table(rows, args))
    ratios = ratio_table(rows, args)
    if ratios:
        print(f'\nAfter/before, timed alternately in one process ({"CPU" if args.cpu_time else "wall"} time, median '
              f'of {args.repeats} paired runs; < 1 is faster):\n')
        print(ratios)


if __name__ == '__main__':
    main()
