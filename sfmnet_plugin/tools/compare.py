"""Equal-budget comparison of face SR networks on the demo's real faces, next to PIL bicubic.

    python -m sfmnet_plugin.tools.compare                                  # every network with demo option files
    python -m sfmnet_plugin.tools.compare --networks SFMNet SMLNet --iterations 300

Network ``N`` is trained with ``options/demo_N_x8.yml`` and tested with ``options/demo_test_N_x8.yml``. Those files
inherit the demo's SFMNet files and change only ``network_g``, so every network gets the same training faces, batch
size, learning rate, seed and number of iterations; the learning-rate drop is moved to 80 % of ``--iterations`` and
validation runs once, at the end. The held-out faces are scored with the paper's protocol (``sfmnet``: rounded Y,
8-px crop, skimage SSIM). The faces and LMDBs are the demo's (``demo_output/lmdb``); when they are missing they are
built the way ``sfmnet-demo`` builds them. Writes ``<output>/compare_x8.md`` and ``compare_x8.csv`` and prints the
table; experiments are named ``compare_N_x8`` / ``compare_test_N_x8``.
"""
import argparse
import csv
import os
import sys
import time
from os import path as osp

from sfmnet_plugin.option_files import default_root_path
from sfmnet_plugin.tools.demo import TEST_SET, run_step

OPTIONS_DIR = 'options'
METRICS = ('psnr', 'ssim')


def option_files(network):
    """``(train, test)`` option files of ``network``, relative to the repository root."""
    return (osp.join(OPTIONS_DIR, f'demo_{network}_x8.yml'), osp.join(OPTIONS_DIR, f'demo_test_{network}_x8.yml'))


def available_networks(root):
    """Networks that have both demo option files, SFMNet first, then alphabetical."""
    names = {name[len('demo_'):-len('_x8.yml')] for name in os.listdir(osp.join(root, OPTIONS_DIR))
             if name.startswith('demo_') and name.endswith('_x8.yml') and not name.startswith('demo_test_')}
    names = [name for name in names if all(osp.isfile(osp.join(root, f)) for f in option_files(name))]
    return sorted(names, key=lambda name: (name != 'SFMNet', name))


def prepare_face_lmdbs(output, root, cache_dir=None, jitter=6, seed=0):
    """``(train_lmdb, test_lmdb)`` under ``output/lmdb``: reused when both exist, else built as ``sfmnet-demo`` does."""
    lmdb_root = osp.join(output, 'lmdb')
    lmdbs = tuple(osp.join(lmdb_root, f'{split}_HR.lmdb') for split in ('train', 'test'))
    if all(osp.isdir(path) for path in lmdbs):
        print(f'==> Reusing the face LMDBs in {lmdb_root}', flush=True)
        return lmdbs
    from sfmnet_plugin.faces import build_face_set

    print(f'==> Gathering and aligning real face photos into {output}/faces', flush=True)
    print(f'    {build_face_set(osp.join(output, "faces"), cache_dir=cache_dir, jitter=jitter, seed=seed)}', flush=True)
    for split, lmdb in zip(('train', 'test'), lmdbs):
        run_step(f'LMDB of the {split} faces', [sys.executable, 'datasets_prep/folder_to_lmdb.py',
                                               osp.join(output, 'faces', split, 'HR'), lmdb, '--overwrite'], root)
    return lmdbs


def budget_overrides(iterations):
    """``--force_yml`` edits that give every network the same budget of ``iterations``.

    BasicSR validates once more after the last iteration, so ``val_freq`` past the end validates only there.
    """
    return [f'train:total_iter={iterations}', f'train:scheduler:milestones=[{max(1, int(0.8 * iterations))}]',
            f'val:val_freq={iterations + 1}', f'logger:save_checkpoint_freq={iterations}']


def count_parameters(option_path):
    from basicsr.archs import build_network

    import sfmnet_plugin  # noqa: F401  (registrations before basicsr)
    from sfmnet_plugin.option_files import load_merged_options

    network = build_network(dict(load_merged_options(option_path)['network_g']))
    return sum(p.numel() for p in network.parameters())


def read_metric_means(csv_path):
    """Means of the network's and the bicubic baseline's metrics in a test run's per-image CSV, plus
    ``above_bicubic``: the number of images whose PSNR beats bicubic's. Returns ``(means, number of images)``."""
    with open(csv_path, newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f'{csv_path} holds no image rows.')
    means = {key: sum(float(row[key]) for row in rows) / len(rows) for key in rows[0] if key != 'image'}
    means['above_bicubic'] = sum(float(row['psnr']) > float(row['bicubic_psnr']) for row in rows)
    return means, len(rows)


def train_and_test(network, lmdbs, iterations, root):
    """Train and test ``network`` on the given LMDBs; returns one result row (metrics, parameters, seconds)."""
    train_options, test_options = option_files(network)
    train_name, test_name = f'compare_{network}_x8', f'compare_test_{network}_x8'
    train_lmdb, test_lmdb = lmdbs
    started, load_before = time.monotonic(), os.getloadavg()[0]
    run_step(f'Training {network} for {iterations} iterations',
             [sys.executable, 'sfmnet_plugin/train.py', '-opt', train_options, '--force_yml', f'name={train_name}',
              f'datasets:train:dataroot_gt={train_lmdb}', f'datasets:val:dataroot_gt={test_lmdb}',
              *budget_overrides(iterations)], root)
    train_seconds = time.monotonic() - started
    checkpoint = osp.join(root, 'experiments', train_name, 'models', 'net_g_latest.pth')
    run_step(f'Testing {network} on the held-out faces',
             [sys.executable, 'sfmnet_plugin/test.py', '-opt', test_options, '--force_yml', f'name={test_name}',
              f'datasets:test:dataroot_gt={test_lmdb}', f'path:pretrain_network_g={checkpoint}'], root)
    means, num_images = read_metric_means(osp.join(root, 'results', test_name, f'{TEST_SET}_metrics.csv'))
    return {'network': network, 'parameters': count_parameters(osp.join(root, train_options)),
            'iterations': iterations, 'train_seconds': train_seconds, 'images': num_images,
            'load_average': (load_before + os.getloadavg()[0]) / 2, **means}


def markdown_table(rows):
    """Bicubic first (from the first run: every run scores the same faces), then each network."""
    lines = ['| x8, held-out faces | parameters | iterations | PSNR (dB) | SSIM | images above bicubic (PSNR) '
             '| training time (load avg) |', '|---|---|---|---|---|---|---|']
    first = rows[0]
    lines.append(f'| Bicubic (PIL) | - | - | {first["bicubic_psnr"]:.4f} | {first["bicubic_ssim"]:.4f} | - | - |')
    for row in rows:
        lines.append(f'| {row["network"]} | {row["parameters"]:,} | {row["iterations"]} | {row["psnr"]:.4f} | '
                     f'{row["ssim"]:.4f} | {row["above_bicubic"]} of {row["images"]} | '
                     f'{row["train_seconds"]:.0f} s ({row["load_average"]:.1f}) |')
    return '\n'.join(lines)


REPORT_COLUMNS = ('network', 'parameters', 'iterations', 'images', 'above_bicubic', 'psnr', 'ssim', 'bicubic_psnr',
                  'bicubic_ssim', 'train_seconds', 'load_average')


def read_previous_rows(output, iterations):
    """Rows of an earlier ``compare_x8.csv`` in ``output`` that had the same budget of ``iterations``."""
    csv_path = osp.join(output, 'compare_x8.csv')
    if not osp.isfile(csv_path):
        return []
    with open(csv_path, newline='', encoding='utf-8') as f:
        rows = [{key: (value if key == 'network' else float(value)) for key, value in row.items()}
                for row in csv.DictReader(f)]
    for row in rows:
        row.update({key: int(row[key]) for key in ('parameters', 'iterations', 'images', 'above_bicubic')})
    return [row for row in rows if row['iterations'] == iterations]


def write_reports(output, rows):
    """``compare_x8.csv`` (every number) and ``compare_x8.md`` (the table), written atomically."""
    os.makedirs(output, exist_ok=True)
    columns = list(REPORT_COLUMNS)
    csv_path, md_path = osp.join(output, 'compare_x8.csv'), osp.join(output, 'compare_x8.md')
    with open(f'{csv_path}.partial', 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    os.replace(f'{csv_path}.partial', csv_path)
    with open(f'{md_path}.partial', 'w', encoding='utf-8') as f:
        f.write(markdown_table(rows) + '\n')
    os.replace(f'{md_path}.partial', md_path)
    return md_path


def compare(networks, iterations, output, root, cache_dir=None, jitter=6, seed=0, append=False):
    """Train and test every network with the same budget; returns the result rows (also written to ``output``).

    ``append``: keep the rows of other networks from an earlier report in ``output`` with the same ``iterations``
    (networks run at different times, e.g. as they become available).
    """
    lmdbs = prepare_face_lmdbs(output, root, cache_dir=cache_dir, jitter=jitter, seed=seed)
    previous = [row for row in read_previous_rows(output, iterations) if row['network'] not in networks] \
        if append else []
    rows = previous + [train_and_test(network, lmdbs, iterations, root) for network in networks]
    bicubic = {round(row['bicubic_psnr'], 6) for row in rows}
    if len(bicubic) != 1:
        raise RuntimeError(f'the runs scored different test faces (bicubic PSNR {sorted(bicubic)}).')
    write_reports(output, rows)
    return rows


def build_parser(root):
    networks = available_networks(root)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--networks', nargs='+', choices=networks, default=networks,
                        help='networks to train (default: all with demo option files: %(default)s)')
    parser.add_argument('--iterations', type=int, default=500, help='training iterations for every network')
    parser.add_argument('--output', default='demo_output', help='folder of the face LMDBs and the reports '
                        '(relative to the repository root; default: %(default)s, shared with sfmnet-demo)')
    parser.add_argument('--cache-dir', help='where downloaded photo packages are kept (default: ~/.cache/...)')
    parser.add_argument('--jitter', type=int, default=6, help='extra jittered crops per training face')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--append', action='store_true', help='keep the other networks\' rows of an earlier '
                        'report in --output with the same --iterations')
    return parser


def main(argv=None):
    root = default_root_path()
    if not osp.isdir(osp.join(root, OPTIONS_DIR)):
        raise SystemExit(f'the comparison runs from a source checkout: {OPTIONS_DIR}/ not found under {root}.')
    args = build_parser(root).parse_args(argv)
    if args.iterations < 1:
        raise SystemExit(f'--iterations must be at least 1, got {args.iterations}.')
    output = osp.join(root, args.output)
    rows = compare(args.networks, args.iterations, output, root, cache_dir=args.cache_dir, jitter=args.jitter,
                   seed=args.seed, append=args.append)
    print('\n' + markdown_table(rows))
    print(f'\n{os.cpu_count()} CPU cores; reports in {output}/compare_x8.md and compare_x8.csv')


if __name__ == '__main__':
    main()
