"""How CPU training steps degrade when other processes share the machine, per thread setting.

    python benchmarks/bench_threads.py                        # the demo's step, 0/1/2 busy processes, 3 rounds
    python benchmarks/bench_threads.py --busy 0 1 --rounds 2 --repeats 3

Each measurement runs in a fresh interpreter (libgomp reads its settings once, when torch loads it):
``--warmup`` untimed then ``--repeats`` timed training steps of a small SFMNet (``bench_arch.TINY_SFMNET``:
``num_feat 16``, x8, batch ``--batch-size``: forward, stage-1 loss, backward, Adam step), with the demo's allocator
settings.
The median step time is kept. Settings:

* ``2 threads, libgomp default``: neither ``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` set (idle threads spin);
* ``2 threads, GOMP_SPINCOUNT=10000``: the plugin's launchers' default (idle threads spin briefly, then sleep);
* ``2 threads, OMP_WAIT_POLICY=PASSIVE``: idle threads sleep at once;
* ``1 thread``.

Background load: ``--busy`` values are numbers of extra processes that spin (``while True: pass``) for the
whole measurement. Settings and loads are interleaved (every round measures every pair, in a rotated
order), so a change in the machine's own load hits all of them alike; each cell is the median over rounds.
The load average before each round is printed: on a machine shared with other jobs, "0 busy" is not quiet.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from os import path as osp

HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(HERE)

SETTINGS = {
    '2 threads, libgomp default (spinning)': {'OMP_NUM_THREADS': '2'},
    '2 threads, GOMP_SPINCOUNT=10000 (default)': {'OMP_NUM_THREADS': '2', 'GOMP_SPINCOUNT': '10000'},
    '2 threads, OMP_WAIT_POLICY=PASSIVE': {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'PASSIVE'},
    '1 thread': {'OMP_NUM_THREADS': '1'},
}

# Runs in the measuring interpreter; prints the median step time as JSON.
MEASURE = r'''
import json, sys, time, statistics
sys.path[:0] = [{repo!r}, {here!r}]
import sfmnet_plugin  # noqa
import torch
from sfmnet_plugin.utils.process_settings import apply_process_settings
apply_process_settings()  # the allocator setting; torch has read the wait setting of the environment already
from bench_arch import TINY_SFMNET, stage1_loss
from sfmnet_plugin.archs.sfmnet_arch import SFMNet
torch.manual_seed(0)
model = SFMNet(upscale=8, **TINY_SFMNET)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
lr, hr = torch.rand({batch}, 3, 16, 16), torch.rand({batch}, 3, 128, 128)
def step():
    optimizer.zero_grad(set_to_none=True)
    stage1_loss(model(lr, return_frequency=True), hr).backward()
    optimizer.step()
for _ in range({warmup}):
    step()
seconds = []
for _ in range({repeats}):
    start = time.perf_counter(); step(); seconds.append(time.perf_counter() - start)
print(json.dumps({{'median': statistics.median(seconds), 'threads': torch.get_num_threads()}}))
'''


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--busy', type=int, nargs='+', default=[0, 1, 2],
                        help='extra spinning processes (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=3, help='(default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=2, help='(default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=5, help='timed steps per measurement (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=4, help="(default: %(default)s, the demo's)")
    parser.add_argument('--timeout', type=float, default=600, help='seconds per measurement (default: %(default)s)')
    return parser.parse_args(argv)


def measure(setting, args):
    """Median step time (s) of one setting in a fresh interpreter, or None when it ran past ``--timeout``."""
    code = MEASURE.format(repo=REPO_ROOT, here=HERE, batch=args.batch_size, warmup=args.warmup, repeats=args.repeats)
    env = {k: v for k, v in os.environ.items() if k not in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')}
    env.update(setting)
    try:
        result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                                timeout=args.timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])['median']


def start_busy(count):
    return [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(count)]


def stop(processes):
    for process in processes:
        process.kill()
        process.wait()


def main(argv=None):
    args = parse_args(argv)
    names = list(SETTINGS)
    times = {(name, busy): [] for name in names for busy in args.busy}
    loads = []
    for round_index in range(args.rounds):
        loads.append(os.getloadavg()[0])
        print(f'round {round_index + 1}/{args.rounds}, load average {loads[-1]:.2f}', file=sys.stderr, flush=True)
        for busy in args.busy:
            processes = start_busy(busy)
            try:
                time.sleep(0.5 if busy else 0)
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    seconds = measure(SETTINGS[name], args)
                    times[name, busy].append(seconds)
                    print(f'  {busy} busy, {name}: {seconds}', file=sys.stderr, flush=True)
            finally:
                stop(processes)

    def cell(name, busy):
        values = [t for t in times[name, busy] if t is not None]
        if not values:
            return f'not done in {args.timeout:.0f} s'
        return f'{statistics.median(values):.2f} s' + ('' if len(values) == args.rounds else ' (some timed out)')

    print(f'\nSFMNet num_feat 16, x8, batch {args.batch_size}: median training-step time, {args.repeats} steps after '
          f'{args.warmup} warm-up, median of {args.rounds} interleaved rounds; {os.cpu_count()} CPUs; load average '
          f'before the rounds: {", ".join(f"{load:.1f}" for load in loads)}\n')
    header = ['setting', *(f'{busy} busy process{"es" if busy != 1 else ""}' for busy in args.busy)]
    print('| ' + ' | '.join(header) + ' |\n|' + '---|' * len(header))
    for name in names:
        print(f'| {name} | ' + ' | '.join(cell(name, busy) for busy in args.busy) + ' |')


if __name__ == '__main__':
    main()
