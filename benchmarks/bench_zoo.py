"""Every face-SR network of the toolbox side by side: parameters, MACs and CPU forward time per face (16 -> 128).

    python benchmarks/bench_zoo.py                       # every network at its released size, 2 threads
    python benchmarks/bench_zoo.py --threads 1 --rounds 5 --networks SFMNet WFEN

Each network is built with its registry defaults (the released network, never-called modules included; SISN at x8)
in float32, ``eval()`` under ``no_grad``, and fed one
16 x 16 LR face (the x8 input step, the 8-bit PIL resize, is part of the forward, as in use). The networks are timed
in turns, one forward each per round after one untimed warm-up round, so a change of the machine's load during the
run reaches every network alike; the table gives the median over the rounds, and each network's time relative to
SPARNet's in the same rounds. MACs: Conv2d, ConvTranspose2d and Linear multiply-accumulates
(:mod:`sfmnet_plugin.utils.profiling`); attention matmuls, FFTs and element-wise work are not counted. Prints a
Markdown table; docs/zoo.md gives its output with the machine it ran on.
"""
import argparse
import os
import platform
import statistics
import time

# (registry name, constructor options): the released networks, x8 from a 16 x 16 face
NETWORKS = {
    'SFMNet': {},
    'SPARNet': {},
    'SMLNet': {},
    'WFEN': {},
    'CTCNet': {},
    'UFSRNet': {},
    'DIC': {},
    'SISN': {'upscale': 8},
}
REFERENCE = 'SPARNet'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--networks', nargs='+', choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=5, help='timed rounds (default: %(default)s)')
    return parser.parse_args(argv)


def cpu_description():
    """The CPU's model name and its widest vector extensions, from /proc/cpuinfo where there is one."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            fields = {key.strip(): value.strip() for key, value in (line.split(':', 1) for line in f if ':' in line)}
    except OSError:
        return platform.processor() or platform.machine()
    flags = set(fields.get('flags', '').split())
    vector = [flag for flag in ('avx2', 'avx512f', 'avx512_bf16', 'amx_tile') if flag in flags]
    model = fields.get('model name', platform.machine())
    return f'{model} ({", ".join(vector) or "no AVX2"})'


def build(name):
    import torch
    from basicsr.archs import build_network

    torch.manual_seed(0)
    return build_network({'type': name, **NETWORKS[name]}).eval()


def main(argv=None):
    args = parse_args(argv)
    import torch

    import sfmnet_plugin  # noqa: F401  (registers the networks)
    from sfmnet_plugin.utils.profiling import count_macs_per_image, count_parameters

    torch.set_num_threads(args.threads)
    names = args.networks if REFERENCE in args.networks else [REFERENCE, *args.networks]
    networks = {name: build(name) for name in names}
    lr = torch.rand(1, 3, 16, 16)
    seconds = {name: [] for name in names}
    with torch.no_grad():
        for round_index in range(args.rounds + 1):
            for name, network in networks.items():
                start = time.perf_counter()
                network(lr)
                if round_index:  # the first round warms up (allocations, caches)
                    seconds[name].append(time.perf_counter() - start)
        macs = {name: count_macs_per_image(network, lr) for name, network in networks.items()}
    reference = statistics.median(seconds[REFERENCE])
    print(f'CPU: {cpu_description()}, {os.cpu_count()} cores, {args.threads} torch thread(s), '
          f'load average before the table {os.getloadavg()[0]:.1f}; median of {args.rounds} rounds\n')
    print('| network | parameters | MACs per face | CPU ms per face | vs SPARNet |')
    print('|---|---:|---:|---:|---:|')
    for name in args.networks:
        median = statistics.median(seconds[name])
        print(f'| {name} | {count_parameters(networks[name]):,} | {macs[name] / 1e9:.2f} G | {median * 1e3:.0f} | '
              f'{median / reference:.2f}x |')


if __name__ == '__main__':
    main()
