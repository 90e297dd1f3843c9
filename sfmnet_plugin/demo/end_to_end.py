"""The demo's run: real faces gathered and aligned, LMDBs, each network trained as a user would train it, and the
benchmark's table; ``sfmnet-demo`` (:mod:`sfmnet_cli.demo`) is its command line.

Before any work the outputs go through the plugin's output guard (no file under a link, no folder replaced that an
earlier demo run did not make: its owner marker) and the output folder is locked with the training run lock, so a
second demo on the same folder is refused. Each training runs as the command a user would type
(``python -m sfmnet_plugin.train -opt ...``) with ``threads`` CPU threads; nothing is read from a source checkout,
so an installed wheel runs it from any directory. The same command on the same machine prints the same table to the
last digit; another thread count changes the last digits (the thread count changes how convolutions are summed).
"""
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from os import path as osp

from sfmnet_plugin.checkpoints.io import network_path
from sfmnet_plugin.config.option_files import default_root_path, load_merged_options
from sfmnet_plugin.utils import process_settings
from sfmnet_plugin.utils.atomic import atomic_write, atomic_write_bytes
from sfmnet_plugin.utils.output_guard import OutputPlan, make_our_folder, refuse_unless_ours, remove_our_folder
from sfmnet_plugin.utils.run_lock import FolderLock

TEST_SET = 'DemoFaces_test'
LR_INPUTS = 'lr_inputs'
DEFAULT_THREADS = 2
# The demo's option files ship inside the package (package data), so an installed wheel has them.
DEMO_OPTIONS = osp.join(osp.dirname(osp.abspath(__file__)), 'options')
WARMUP_FRACTION = 20  # --iterations N warms the learning rate up over N / 20 iterations, as the option files do


@dataclass(frozen=True)
class DemoNetwork:
    """One network the demo trains: its option file, and ``--force_yml`` edits per preset."""

    label: str  # table row, contact-sheet column and file names in the output folder
    option_file: str  # in DEMO_OPTIONS
    presets: dict = field(default_factory=dict)  # preset -> ['key:key=value', ...]
    landmarks: int | None = None  # 68: its training reads dlib's landmarks, stored beside the training LMDB

    @property
    def train_options(self):
        """Path of the option file the training runs."""
        return osp.join(DEMO_OPTIONS, self.option_file)

    @property
    def train_name(self):
        return load_merged_options(self.train_options)['name']


def budget_overrides(iterations):
    """``--force_yml`` edits that give every network a budget of ``iterations`` (``--iterations``).

    The warm-up is the first 5 % of the run and the cosine decay reaches its minimum at the end; BasicSR validates
    once more after the last iteration, so ``val_freq`` past the end validates only there (the benchmark scores
    the networks afterwards).
    """
    return [f'train:total_iter={iterations}', f'train:warmup_iter={max(1, iterations // WARMUP_FRACTION)}',
            f'train:scheduler:periods=[{iterations}]', f'val:val_freq={iterations + 1}',
            f'logger:save_checkpoint_freq={iterations}']


# The GPU preset: the paper's batch and full-size networks (SFMNet's every interaction block and ResBlock), long
# enough to learn faces; the demo's MSE stays.
GPU_BUDGET = ['datasets:train:batch_size_per_gpu=8', 'datasets:train:num_worker_per_gpu=4',
              'train:optim_g:lr=!!float 2e-4', *budget_overrides(20000), 'val:val_freq=2000',
              'logger:save_checkpoint_freq=2000']
# The CPU preset is the option files as written: widths and iterations chosen so that the default (SFMNet alone),
# the face gathering and the benchmark take minutes on a small CPU (timings in docs/speed.md);
# --family trains the seed family (SFMNet, SPARNet, SMLNet) with that same budget each; --networks names any network
# of DEMO_NETWORKS, zoo networks included, each with that budget too (DIC's training LMDB then also gets dlib's 68
# landmarks).
DEMO_NETWORKS = (
    DemoNetwork('SFMNet', 'demo_SFMNet_x8.yml', presets={
        'cpu': [], 'gpu': ['network_g:num_feat=64', 'network_g:num_heads=8', 'network_g:num_resblocks=2',
                           'network_g:fusion_positions=~', *GPU_BUDGET]}),
    DemoNetwork('SPARNet', 'demo_SPARNet_x8.yml', presets={
        'cpu': [], 'gpu': ['network_g:min_ch=32', 'network_g:max_ch=128', 'network_g:res_depth=10', *GPU_BUDGET]}),
    DemoNetwork('SMLNet', 'demo_SMLNet_x8.yml', presets={
        'cpu': [], 'gpu': ['network_g:num_feat=64', 'network_g:num_heads=8', *GPU_BUDGET]}),
    DemoNetwork('WFEN', 'demo_WFEN_x8.yml', presets={
        'cpu': [], 'gpu': ['network_g:min_ch=40', 'network_g:res_depth=6', *GPU_BUDGET]}),
    DemoNetwork('CTCNet', 'demo_CTCNet_x8.yml', presets={
        'cpu': [], 'gpu': ['network_g:num_feat=32', *GPU_BUDGET]}),
    DemoNetwork('UFSRNet', 'demo_UFSRNet_x8.yml', presets={
        'cpu': [], 'gpu': ['network_g:num_feat=32', *GPU_BUDGET]}),
    DemoNetwork('SISN', 'demo_SISN_x8.yml', presets={
        'cpu': [], 'gpu': ['network_g:num_feat=64', 'network_g:num_groups=10', 'network_g:num_blocks=10',
                           *GPU_BUDGET]}),
    DemoNetwork('DIC', 'demo_DIC_x8.yml', landmarks=68, presets={
        'cpu': [], 'gpu': ['network_g:num_features=48', 'network_g:num_groups=6', 'network_g:hg_num_feature=256',
                           'network_g:num_fusion_block=7', *GPU_BUDGET]}),
)
PRESETS = ('cpu', 'gpu')
NETWORK_LABELS = tuple(network.label for network in DEMO_NETWORKS)
FAMILY = ('SFMNet', 'SPARNet', 'SMLNet')  # the seed family: --family
DEFAULT_NETWORKS = ('SFMNet',)


def step_environment(threads):
    """The environment of every step: ``threads`` OpenMP threads spinning briefly when idle (the plugin's default,
    see :mod:`sfmnet_plugin.utils.process_settings`). Each step is a launcher, which also lets glibc keep freed
    memory (no page faults on every step's feature maps)."""
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    process_settings.set_openmp_wait_policy_default(environment, modules={})
    return environment


def run_step(title, command, cwd, env):
    """Run ``command`` as its own process, printing it first and its duration after."""
    print(f'\n==> {title}\n    $ {shlex.join(command)}', flush=True)
    started = time.monotonic()
    subprocess.run(command, cwd=cwd, env=env, check=True)
    print(f'    ({time.monotonic() - started:.0f} s)', flush=True)


def write_lr_inputs(hr_dir, lr_dir, scale):
    """The LR faces the test used (PIL bicubic of each held-out HR crop, as the dataset makes them), as PNGs."""
    import numpy as np
    from PIL import Image

    from sfmnet_plugin.data.downsample import downsample
    from sfmnet_plugin.data.image_io import list_image_files, write_png

    if osp.lexists(lr_dir):  # only the folder an earlier run made (its owner marker) is replaced
        remove_our_folder(lr_dir)
    make_our_folder(lr_dir)
    for name, path in sorted(list_image_files(hr_dir).items()):
        with Image.open(path) as image:
            hr = np.asarray(image.convert('RGB'))
        write_png(osp.join(lr_dir, f'{name}.png'), downsample(hr, scale))
    return lr_dir


def export_for_inference(output, label, checkpoint, lr_dir, python=sys.executable):
    """Copy the trained network (which carries its ``network_g``) to ``output/models/<label><suffix>`` and write
    ``infer_<label>.sh``; return ``(model path, command)``.

    The command uses paths relative to the folder that holds ``output`` (the outputs root of the demo).
    """
    models = osp.join(output, 'models')
    os.makedirs(models, exist_ok=True)
    model_path = osp.join(models, label + osp.splitext(checkpoint)[1])
    atomic_write(model_path, lambda target: shutil.copyfile(checkpoint, target))  # replaces a link, never follows it
    base = osp.dirname(osp.abspath(output))
    lr_rel, sr_rel, model_rel = (osp.relpath(osp.abspath(p), base) for p in (
        lr_dir, osp.join(output, f'sr_{label}'), model_path))
    arguments = [lr_rel, '--output', sr_rel, '--checkpoint', model_rel, '--side-by-side']
    command = shlex.join(['sfmnet-infer', *arguments])
    script = ('#!/usr/bin/env bash\n'
              f"# Super-resolve the demo's LR test faces with the {label} it trained (for your own 16x16 faces, "
              f'put their folder in place of {lr_rel}).\n'
              f'# Writes <name>.png and <name>_sbs.png (bicubic | {label}) into {sr_rel}/. '
              f'The same as, from {base}:\n'
              f'#   {command}\n'
              'set -euo pipefail\n'
              f'cd {shlex.quote(base)}\n'
              f'{shlex.join([python, "-m", "sfmnet_cli.infer", *arguments])} "$@"\n')
    # an executable file of its own (a link under this name is replaced, never followed or made executable)
    atomic_write_bytes(osp.join(output, f'infer_{label}.sh'), script.encode('utf-8'), executable=True)
    return model_path, command


def gather_faces(faces_dir, cache_dir=None, jitter=6, seed=0):
    """Real aligned face crops in ``faces_dir/{train,test}/HR``; returns the printable summary."""
    from sfmnet_plugin.demo.face_set import build_face_set

    return build_face_set(faces_dir, cache_dir=cache_dir, jitter=jitter, seed=seed)


def write_lmdbs(output, landmarks=None):
    """``(train, test)`` LMDBs of the gathered faces under ``output/lmdb`` (the library behind
    ``folder_to_lmdb.py``, in this process); ``landmarks`` (68) also stores dlib's landmarks of the training faces
    beside the training LMDB (what DIC's training reads)."""
    from sfmnet_plugin.prep.folder import convert_folder

    lmdbs = tuple(osp.join(output, 'lmdb', f'{split}_HR.lmdb') for split in ('train', 'test'))
    for split, lmdb in zip(('train', 'test'), lmdbs):
        print(f'\n==> LMDB of the {split} faces', flush=True)
        convert_folder(osp.join(output, 'faces', split, 'HR'), lmdb, workers=1, overwrite=True,
                       landmarks=landmarks if split == 'train' else None)
    return lmdbs


def train_network(network, overrides, lmdbs, root, env, python=sys.executable):
    """Train ``network`` on the demo's LMDBs (``python -m sfmnet_plugin.train``, outputs under ``root``); returns
    its latest checkpoint."""
    from sfmnet_plugin.checkpoints.io import existing_network_file

    train_lmdb, test_lmdb = lmdbs
    run_step(f'Training {network.label}',
             [python, '-m', 'sfmnet_plugin.train', '-opt', network.train_options, '--force_yml',
              f'datasets:train:dataroot_gt={train_lmdb}', f'datasets:val:dataroot_gt={test_lmdb}', *overrides],
             root, dict(env, SFMNET_ROOT_PATH=root))
    return existing_network_file(osp.join(root, 'experiments', network.train_name, 'models', 'net_g_latest.pth'))


def benchmark_family(output, test_lmdb, scale, models, lpips_weights=None):
    """Bicubic and every trained network on the held-out faces, one metric code: ``run_benchmark`` writes the
    table, per-image metrics, contact sheet and plot into ``output``. ``models``: label -> checkpoint (which
    carries its ``network_g``); ``lpips_weights``: a local AlexNet file for the LPIPS column. Latency is left
    out: it would make the table differ from run to run."""
    from sfmnet_plugin.benchmark import Bicubic, Network, TestSet, run_benchmark

    methods = [Bicubic(), *(Network(label, checkpoint) for label, checkpoint in models.items())]
    print(f'\n==> Benchmark: bicubic and {", ".join(models)} on the held-out faces', flush=True)
    started = time.monotonic()
    result = run_benchmark(TestSet(test_lmdb, scale=scale, name=TEST_SET), methods, output, latency_repeats=0,
                           overwrite=True, lpips_weights=lpips_weights)
    print(f'    ({time.monotonic() - started:.0f} s)', flush=True)
    return result


def plan_outputs(output, networks, cache_dir, lpips_weights=None):
    """The output guard's plan of everything the demo writes into ``output``, checked before any work: no file
    under a link or over a folder, and every folder it replaces (the face splits, the LR inputs, the LMDBs) made
    by an earlier demo run."""
    from sfmnet_plugin.benchmark.outputs import OUTPUT_FILES

    plan = OutputPlan(output, [('--cache-dir', cache_dir), ('--lpips-weights', lpips_weights)], option='--output')
    for network in networks:
        network_format = load_merged_options(network.train_options).get('path', {}).get('network_format', 'pth')
        plan.add(network_path(osp.join(output, 'models'), network.label, network_format))
        plan.add(osp.join(output, f'infer_{network.label}.sh'))
    for name in OUTPUT_FILES:
        plan.add(osp.join(output, name))
    plan.add(osp.join(output, 'faces', 'sources.json'))
    plan.check()
    for folder in (osp.join(output, 'faces', 'train'), osp.join(output, 'faces', 'test'), osp.join(output, LR_INPUTS),
                   *(osp.join(output, 'lmdb', f'{split}_HR.lmdb') for split in ('train', 'test'))):
        refuse_unless_ours(folder, action='replace')
    return plan


def run_demo(labels=DEFAULT_NETWORKS, output_name='demo_output', preset='cpu', iterations=None,
             threads=DEFAULT_THREADS, cache_dir=None, jitter=6, seed=0, lpips_weights=None):
    """Gather faces, write LMDBs, train each network of ``labels`` (see :data:`DEMO_NETWORKS`) with the ``preset``
    budget (or ``iterations``), benchmark them against bicubic and print where everything is.

    ``output_name`` is relative to the outputs root (:func:`~sfmnet_plugin.config.option_files.default_root_path`).
    ``lpips_weights``: a local AlexNet weight file for the table's LPIPS column (default: the pretrained folders;
    without one the column is left out with a note). A bad ``threads`` or ``iterations`` is a ValueError.
    """
    if threads < 1:
        raise ValueError('--threads must be at least 1.')
    if iterations is not None and iterations < 1:
        raise ValueError(f'--iterations must be at least 1, got {iterations}.')
    networks = [network for label in dict.fromkeys(labels) for network in DEMO_NETWORKS if network.label == label]
    root = default_root_path()
    output = osp.join(root, output_name)
    with plan_outputs(output, networks, cache_dir, lpips_weights) as plan:
        plan.make_folder()
        with FolderLock(output):  # the training run lock: one demo per output folder
            _run_steps(networks, root, output, output_name, preset, iterations, threads, cache_dir, jitter, seed,
                       lpips_weights)


def _run_steps(networks, root, output, output_name, preset, iterations, threads, cache_dir, jitter, seed,
               lpips_weights):
    """Every step of the demo (see the module docstring), once the outputs are planned and the folder locked."""
    env = step_environment(threads)
    started = time.monotonic()

    import torch

    torch.set_num_threads(threads)  # the face detector and the benchmark run in this process
    print(f'==> Gathering and aligning real face photos into {output}/faces ({threads} CPU thread'
          f'{"s" if threads != 1 else ""})', flush=True)
    print(f'    {gather_faces(osp.join(output, "faces"), cache_dir, jitter, seed)}', flush=True)
    lmdbs = write_lmdbs(output, next((network.landmarks for network in networks if network.landmarks), None))

    models, commands = {}, []
    scale = load_merged_options(networks[0].train_options)['scale']
    lr_dir = write_lr_inputs(osp.join(output, 'faces', 'test', 'HR'), osp.join(output, LR_INPUTS), scale)
    for network in networks:
        overrides = list(network.presets.get(preset, []))
        if iterations:
            overrides += budget_overrides(iterations)
        checkpoint = train_network(network, overrides, lmdbs, root, env)
        models[network.label], command = export_for_inference(output, network.label, checkpoint, lr_dir)
        commands.append(command)
    result = benchmark_family(output, lmdbs[1], scale, models, lpips_weights)

    with open(result.files['table.md'], encoding='utf-8') as f:
        print('\n' + f.read())
    for name, what in (('contact_sheet.png', 'Contact sheet'), ('quality_vs_cost.png', 'Quality vs parameters'),
                       ('per_image.csv', 'Per-image metrics'), ('table.csv', 'Table (full precision)')):
        print(f"{what + ':':<24}{result.files[name]}")
    print(f"{'LR test inputs:':<24}{lr_dir}/")
    for network, command in zip(networks, commands):
        print(f'Your own 16x16 faces with the trained {network.label} (from {osp.dirname(output)}):\n    {command}\n'
              f'    (or: bash {osp.join(output_name, f"infer_{network.label}.sh")})')
    print(f'\nsfmnet-demo took {time.monotonic() - started:.0f} s (1-minute system load {os.getloadavg()[0]:.1f}).')

