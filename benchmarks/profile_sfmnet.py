"""Where SFMNet's time goes: forward and backward CPU time of every block type, each block run on its own inputs.

    python benchmarks/profile_sfmnet.py                     # full width, batch 2, x8 (16 -> 128), 1 thread
    python benchmarks/profile_sfmnet.py --reference         # the frozen pre-optimisation network (sfmnet_reference)
    python benchmarks/profile_sfmnet.py --ops               # also torch.profiler's operator table of one training step

Method: one forward records the inputs of every block (hooks on the classes below); then each block instance is
run alone ``--repeats`` times, forward under ``no_grad`` and forward + backward of ``out.sum()``, timed with
``time.process_time`` (CPU time of this process: much less sensitive to other processes on a shared machine than
wall time). Rows aggregate the instances of one block type; "share" is of the sum over blocks. The PIL-bicubic
input resize, the skip additions and the loss are not in any block and are negligible.
"""
import argparse
import statistics
import sys
import time
from collections import defaultdict
from os import path as osp

BLOCK_TYPES = ('FFTBlock', 'ResidualGroup', 'FrequencySpatialInteraction', 'DownSample', 'UpSample', 'ConvPReLU')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--num-feat', type=int, default=64)
    parser.add_argument('--reference', action='store_true', help='profile benchmarks/sfmnet_reference.py instead')
    parser.add_argument('--ops', action='store_true', help="also print torch.profiler's operator table")
    return parser.parse_args(argv)


def cpu_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main(argv=None):
    args = parse_args(argv)
    import torch

    import sfmnet_plugin  # noqa: F401
    from sfmnet_plugin.archs.sfmnet_arch import SFMNet
    from sfmnet_plugin.utils.process_settings import apply_process_settings

    apply_process_settings()  # glibc keeps freed memory, as in the plugin's commands

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    options = dict(num_feat=args.num_feat, num_heads=max(1, args.num_feat // 8))
    if args.reference:
        sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
        from sfmnet_reference import ReferenceSFMNet
        model = ReferenceSFMNet(**options)
    else:
        model = SFMNet(**options)
    lr = torch.rand(args.batch, 3, 16, 16)

    blocks = [module for module in model.modules() if type(module).__name__ in BLOCK_TYPES]
    nested = {id(inner) for block in blocks for inner in list(block.modules())[1:]}  # e.g. a group's ConvPReLU
    calls = []  # (type, module, inputs)
    handles = [module.register_forward_hook(
        lambda module, inputs, output: calls.append((type(module).__name__, module, inputs)))
        for module in blocks if id(module) not in nested]
    with torch.no_grad():
        model(lr)
    for handle in handles:
        handle.remove()

    forward, backward, counts = defaultdict(float), defaultdict(float), defaultdict(int)
    for name, module, inputs in calls:
        inputs = tuple(t.detach().clone() for t in inputs)

        def run_forward(module=module, inputs=inputs):
            with torch.no_grad():
                module(*inputs)

        def run_training(module=module, inputs=inputs):
            grad_inputs = tuple(t.requires_grad_(True) for t in inputs)
            module.zero_grad(set_to_none=True)
            module(*grad_inputs).sum().backward()

        key = f'{name} @{inputs[0].shape[-1]}'
        fwd = cpu_seconds(run_forward, args.repeats)
        forward[key] += fwd
        backward[key] += cpu_seconds(run_training, args.repeats) - fwd
        counts[key] += 1

    total_forward, total_backward = sum(forward.values()), sum(backward.values())
    print(f'{"reference" if args.reference else "plugin"} SFMNet, num_feat {args.num_feat}, batch {args.batch}, '
          f'{args.threads} thread(s), CPU seconds (median of {args.repeats})\n')
    print('| block @ input width | calls | forward | share | backward | share |')
    print('|---|---|---|---|---|---|')
    for key in sorted(forward, key=lambda k: -(forward[k] + backward[k])):
        print(f'| {key} | {counts[key]} | {forward[key] * 1000:.0f} ms | {forward[key] / total_forward:.1%} | '
              f'{backward[key] * 1000:.0f} ms | {backward[key] / total_backward:.1%} |')
    print(f'| all blocks | {len(calls)} | {total_forward * 1000:.0f} ms | | {total_backward * 1000:.0f} ms | |')

    if args.ops:
        from torch.profiler import ProfilerActivity, profile

        target = torch.rand(args.batch, 3, 128, 128)
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            sr, sr_frequency = model(lr, return_frequency=True)
            ((sr - target).abs().mean() + (sr_frequency - target).abs().mean()).backward()
        print(profiler.key_averages().table(sort_by='self_cpu_time_total', row_limit=20))


if __name__ == '__main__':
    main()
