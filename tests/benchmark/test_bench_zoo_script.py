"""``benchmarks/bench_zoo.py``: one row per network with its released parameter count, MACs and a time."""
import os
import sys


def test_zoo_benchmark_prints_a_row_per_network_with_its_released_size(repo_root, capsys):
    sys.path.insert(0, os.path.join(repo_root, 'benchmarks'))
    try:
        from bench_zoo import main
    finally:
        sys.path.pop(0)
    main(['--networks', 'UFSRNet', 'SISN', '--threads', '1', '--rounds', '1'])
    rows = {line.split(' | ')[0].strip('| '): line.split(' | ')[1:] for line in capsys.readouterr().out.splitlines()
            if line.startswith('| ') and not line.startswith('| network')}
    assert list(rows) == ['UFSRNet', 'SISN']  # SPARNet, the reference, is timed but not listed unless asked for
    assert rows['UFSRNet'][0] == '4,156,518' and rows['SISN'][0] == '8,755,035'
    assert rows['SISN'][1] == '2.22 G'
