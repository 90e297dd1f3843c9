"""How long a command takes to start: every console script's ``--help`` beside ``import torch`` and the library.

    python benchmarks/bench_startup.py                  # every console script, 5 rounds
    python benchmarks/bench_startup.py --rounds 3 --scripts sfmnet-infer sfmnet-train

Each probe is a fresh interpreter (``sys.executable``), so nothing is cached in the process; the file system's cache is
warm after the untimed first round. The probes run in turns, one of each per round, so a change of the machine's load
during the run reaches every probe alike; the table gives the median wall-clock time over the rounds and what each
probe loaded (``torch`` in ``sys.modules`` at exit). The console scripts are run as ``python -m sfmnet_cli.<tool>
--help``, what their installed entry points do. Prints a Markdown table; docs/speed.md gives its output with the
machine it ran on.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

from bench_zoo import cpu_description

SCRIPTS = ('sfmnet-train', 'sfmnet-test', 'sfmnet-infer', 'sfmnet-restore', 'sfmnet-benchmark', 'sfmnet-export',
           'sfmnet-demo', 'sfmnet-convert', 'sfmnet-convert-official', 'sfmnet-folder-to-lmdb', 'sfmnet-verify-lmdb',
           'sfmnet-prepare-celeba', 'sfmnet-prepare-helen', 'sfmnet-prepare-ffhq')
# What a command that does work imports anyway, for scale: the interpreter alone, torch, the library.
REFERENCES = {'python (nothing imported)': 'pass', 'import torch': 'import torch',
              'import sfmnet_plugin (registers every component)': 'import sfmnet_plugin'}
REPORT = "; import sys; print('torch' in sys.modules)"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scripts', nargs='+', choices=SCRIPTS, default=list(SCRIPTS))
    parser.add_argument('--rounds', type=int, default=5, help='timed rounds (default: %(default)s)')
    return parser.parse_args(argv)


def probes(scripts):
    """``{label: code run by python -c}``: the references, then each script's ``--help``."""
    table = {label: code + REPORT for label, code in REFERENCES.items()}
    for script in scripts:
        module = 'sfmnet_cli.' + script.removeprefix('sfmnet-').replace('-', '_')
        # --help ends in SystemExit(0): report what was loaded from an exit hook, as a user's run would end.
        table[f'{script} --help'] = (f"import atexit, sys; atexit.register(lambda: print('torch' in sys.modules)); "
                                     f"sys.argv = ['{script}', '--help']; import {module}; {module}.main()")
    return table


def run_once(code):
    """(seconds, torch loaded) of ``python -c code`` in a fresh interpreter."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip().splitlines()[-1] == 'True'


def main(argv=None):
    args = parse_args(argv)
    table = probes(args.scripts)
    times = {label: [] for label in table}
    loaded = {}
    for round_index in range(args.rounds + 1):  # the first round is untimed: it warms the file cache
        for label, code in table.items():
            seconds, loaded[label] = run_once(code)
            if round_index:
                times[label].append(seconds)
    print(f'CPU: {cpu_description()}, {os.cpu_count()} cores, 1-minute system load {os.getloadavg()[0]:.1f} at the '
          f'end, median of {args.rounds} rounds')
    print('\n| command | wall clock (median) | torch loaded |\n|---|---:|---|')
    for label in table:
        print(f'| {label} | {statistics.median(times[label]):.2f} s | {"yes" if loaded[label] else "no"} |')


if __name__ == '__main__':
    main()
