"""Pre-flight checks: find what a run is missing before BasicSR creates anything.

BasicSR creates ``experiments/<name>/`` and ``tb_logger/<name>/`` (archiving an older folder of that
name), prints its banner and options, builds the networks and only then opens the datasets, so a
missing LMDB became a traceback after 170 lines, with an empty experiment folder left behind for every
try. :func:`check_run` reads the options of the launcher's
:class:`~sfmnet_plugin.launch.request.RunRequest`, the same ones BasicSR will read (the ``-opt`` file with
its ``_base_`` files and ``--force_yml`` edits), and checks, without building anything or touching
BasicSR's logger:

* every dataset path (``dataroot_gt``, ``dataroot_lq``, ``meta_info_file``): it exists, an LMDB is
  complete (``data.mdb`` and ``meta_info.txt``, which the preparation scripts write last) and a folder
  or LMDB holds images; for the plugin's and BasicSR's paired datasets also the pairing by name;
* that the training set gives at least one full batch per epoch (BasicSR drops the last partial batch,
  so a batch larger than the set trained zero iterations and reported success);
* every pretrained file the run reads: ``path.pretrain_network_*`` and ``path.resume_state`` with the network
  files it resumes from (and, when testing, that a network is given at all: BasicSR would score a random one),
  the VGG weights of the perceptual loss, the AlexNet/VGG weights of LPIPS and the FID Inception weights and
  reference;
* that no two sets the run evaluates share a ``name`` (their results are filed under it).

Each problem is one line naming the option, the path and the command that prepares it; all problems
are reported together in a :class:`PreflightError`. The module is long because it is the one checklist of what
a run needs, read top to bottom in the order BasicSR would fail; split, each part would need the others' helpers.
"""
import math
import re
from os import path as osp

from sfmnet_plugin.data.image_io import list_image_files
from sfmnet_plugin.data.lmdb_reader import META_INFO_NAME, meta_info_problems, read_meta_info
from sfmnet_plugin.launch.checkpoint_network import network_fit_problems

DATA_PATH_KEYS = ('dataroot_gt', 'dataroot_lq', 'meta_info_file')
# Datasets whose images are the files of dataroot_gt (or the keys of its LMDB), paired with dataroot_lq by name.
PAIRED_DATASETS = ('PairedFaceDataset', 'PairedImageDataset')
DATA_README = 'datasets_prep/README.md'


class PreflightError(Exception):
    """What stops a run before it starts: ``problems``, one line each (``str()`` joins them)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__('\n'.join(self.problems))


# ----------------------------------------------------------------------------- what prepares a path


def preparation_command(path):
    """The command that writes a dataset at ``path`` (by the layout the preparation scripts use)."""
    normalized = path.replace('\\', '/')
    split = next((s for s in ('train', 'val', 'test') if f'/{s}/' in f'/{normalized}/'), 'test')
    if 'demo_output' in normalized:
        return 'sfmnet-demo (it gathers the demo faces and writes these LMDBs)'
    if 'CelebA_aligned' in normalized:
        return f'python datasets_prep/prepare_celeba.py --root /path/to/CelebA --protocol aligned (see {DATA_README})'
    if 'CelebA' in normalized:
        return f'python datasets_prep/prepare_celeba.py --root /path/to/CelebA (see {DATA_README})'
    if 'Helen' in normalized or 'helen' in normalized:
        if split == 'test':
            return (f'python datasets_prep/prepare_helen.py --from-aligned /path/to/helen_test/HR --split-name test '
                    f'(see {DATA_README})')
        return f'python datasets_prep/prepare_helen.py --images ... --annotations ... (see {DATA_README})'
    if normalized.rstrip('/').endswith('.lmdb'):
        return f'python datasets_prep/folder_to_lmdb.py /path/to/your/images {path} (see {DATA_README})'
    return f'a folder of images; or an LMDB written by datasets_prep/folder_to_lmdb.py (see {DATA_README})'


# Pretrained files that are not networks of this plugin's training: where to get them instead.
PRETRAINED_FILE_HINTS = {
    'pretrain_network_hourglass': "It is DIC's pretrained landmark estimator FB_HG_68_CelebA.pth (the official "
                                  'release\'s "models" folder, Maclory/Deep-Iterative-Collaboration); or set '
                                  'pretrain_network_hourglass: ~ to train the hourglass from scratch.',
}


def network_command(path):
    """The command that writes a network file at ``path``."""
    match = re.search(r'experiments/([^/]+)/models/', path.replace('\\', '/'))
    if match:
        name = match[1]
        options = f'options/{name}.yml'
        if osp.isfile(options):
            return f'sfmnet-train -opt {options} (it writes {path})'
        return f'train the experiment {name!r} first (its models/ folder holds this file)'
    return (f'sfmnet-convert-official OFFICIAL_CHECKPOINT.pth {path} --drop-unused-attention '
            '(docs/inference.md, "Model zoo"), or a path to a trained net_g_*.pth or net_g_*.safetensors')


# ----------------------------------------------------------------------------- datasets


def _is_lmdb(path, dataset_opt):
    backend = (dataset_opt.get('io_backend') or {}).get('type')
    return backend == 'lmdb' or str(path).rstrip('/').endswith('.lmdb')


def lmdb_problem(option, path):
    """Why ``path`` is not a complete BasicSR LMDB, or None."""
    if not osp.isdir(path):
        return f'{option}: {path!r} is a file, not an LMDB folder. Prepare it with: {preparation_command(path)}'
    missing = [name for name in ('data.mdb', META_INFO_NAME) if not osp.isfile(osp.join(path, name))]
    if missing:
        return (f'{option}: {path!r} is an incomplete LMDB (no {" or ".join(missing)}: its preparation was '
                f'interrupted or is still running). Rebuild it with: {preparation_command(path)} --overwrite')
    try:  # what the run would otherwise find only when it first draws the image, possibly hours in
        problems = meta_info_problems(path)
    except (ValueError, OSError) as error:  # a malformed meta_info.txt, a damaged LMDB
        return f'{option}: {error}'
    if problems:
        return (f'{option}: {path!r}: {"; ".join(problems)}. Check it with datasets_prep/verify_lmdb.py {path}, '
                f'rebuild it with: {preparation_command(path)} --overwrite')
    return None


def path_problems(option_prefix, dataset_opt):
    """Problems with the paths a dataset reads; an empty list when they all exist and are complete."""
    problems = []
    for key in DATA_PATH_KEYS:
        path = dataset_opt.get(key)
        if not isinstance(path, str) or not path:
            continue
        path = osp.expanduser(path)
        option = f'{option_prefix}.{key}'
        if not osp.exists(path):
            what = 'file' if key == 'meta_info_file' else 'dataset'
            problems.append(f'{option}: {what} {path!r} does not exist. Prepare it with: {preparation_command(path)}')
        elif key != 'meta_info_file' and _is_lmdb(path, dataset_opt):
            problem = lmdb_problem(option, path)
            if problem:
                problems.append(problem)
        elif key != 'meta_info_file' and not osp.isdir(path):
            problems.append(f'{option}: {path!r} is a file; expected a folder of images or an LMDB folder (*.lmdb).')
    return problems


def image_keys(path, dataset_opt):
    """The image names a paired dataset reads from ``path`` (LMDB keys or image files)."""
    if _is_lmdb(path, dataset_opt):
        return set(read_meta_info(path))
    return set(list_image_files(path))


def paired_dataset_size(option_prefix, dataset_opt):
    """``(number of pairs, problems)`` of a PairedFaceDataset / PairedImageDataset whose paths exist."""
    gt_root, lq_root = osp.expanduser(dataset_opt['dataroot_gt']), dataset_opt.get('dataroot_lq')
    try:
        keys = image_keys(gt_root, dataset_opt)
        if lq_root:
            lq_keys = image_keys(osp.expanduser(lq_root), dataset_opt)
            if dataset_opt.get('type') == 'PairedFaceDataset' and lq_keys != keys:
                missing = sorted(keys ^ lq_keys)[:5]
                return 0, [f'{option_prefix}: dataroot_gt {gt_root!r} and dataroot_lq {lq_root!r} do not hold the '
                           f'same image names (e.g. {", ".join(missing)}); rebuild both with: '
                           f'{preparation_command(gt_root)}']
        if dataset_opt.get('meta_info_file'):
            with open(osp.expanduser(dataset_opt['meta_info_file']), encoding='utf-8') as f:
                keys = {line.split()[0] for line in f if line.strip()}
    except (OSError, ValueError) as error:
        return 0, [f'{option_prefix}: {error}']
    if not keys:
        return 0, [f'{option_prefix}.dataroot_gt: {gt_root!r} holds no images. Prepare it with: '
                   f'{preparation_command(gt_root)}']
    return len(keys), []


def batch_problem(option_prefix, dataset_opt, size, world_size):
    """A problem when the training set gives no full batch (BasicSR drops the last partial one), or None."""
    batch = int(dataset_opt.get('batch_size_per_gpu') or 1)
    ratio = int(dataset_opt.get('dataset_enlarge_ratio') or 1)
    per_process = math.ceil(size * ratio / world_size)
    if per_process >= batch:
        return None
    processes = f' shared by {world_size} processes' if world_size > 1 else ''
    return (f'{option_prefix}.batch_size_per_gpu: {batch} is larger than the {per_process} training images per '
            f'process ({size} in {dataset_opt["dataroot_gt"]!r} x dataset_enlarge_ratio {ratio}{processes}): '
            f'BasicSR would train zero iterations. Use batch_size_per_gpu <= {per_process} or raise '
            'dataset_enlarge_ratio.')


def dataset_problems(opt, stage, world_size=1):
    """Problems with every dataset the ``stage`` ('train' or 'test') builds."""
    problems = []
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        if not isinstance(dataset_opt, dict):
            continue
        role = phase.split('_')[0]
        if stage == 'train' and role not in ('train', 'val'):
            continue
        prefix = f'datasets.{phase}'
        found = path_problems(prefix, dataset_opt)
        problems += found
        if found or dataset_opt.get('type') not in PAIRED_DATASETS or not dataset_opt.get('dataroot_gt'):
            continue
        size, found = paired_dataset_size(prefix, dataset_opt)
        problems += found
        if stage == 'train' and role == 'train' and size:
            problem = batch_problem(prefix, dataset_opt, size, world_size)
            if problem:
                problems.append(problem)
    return problems + evaluated_name_problems(opt, stage)


def evaluated_name_problems(opt, stage):
    """Two sets the ``stage`` evaluates (a test run: every dataset; training: the ``val*`` ones) with one ``name``:
    their metrics, summary and images are filed under the name, so the second would replace the first's."""
    problems, first_with = [], {}
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        if not isinstance(dataset_opt, dict) or (stage == 'train' and not phase.startswith('val')):
            continue
        name = dataset_opt.get('name')
        if name in first_with:
            problems.append(f'datasets.{phase}.name: {name!r} is also the name of datasets.{first_with[name]}; give '
                            'each evaluated set its own name (its metrics, summary and images are filed under it).')
        else:
            first_with[name] = phase
    return problems


# ----------------------------------------------------------------------------- pretrained files


def weight_file_problem(key, path):
    """Why the network file ``path`` of ``path.<key>`` cannot be used (corrupt, code-carrying, NaN or inf weights),
    or None: read now, so that a bad file stops the run before its folder exists."""
    from sfmnet_plugin.checkpoints.io import load_checkpoint_file
    from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

    try:
        load_checkpoint_file(path, what=f'path.{key}')
    except (UnsafeOrInvalidFileError, OSError) as error:
        return str(error)
    return None


def network_file_problems(opt, stage, auto_resume):
    """Missing ``path.pretrain_network_*`` / ``path.resume_state`` files; a test without any network."""
    paths = opt.get('path') or {}
    problems = []
    for key, value in paths.items():
        if not isinstance(value, str) or not value:
            continue
        value = osp.expanduser(value)
        if key.startswith('pretrain_network') and not osp.isfile(value):
            fix = PRETRAINED_FILE_HINTS.get(key) or f'Make it with: {network_command(value)}'
            problems.append(f'path.{key}: network file {value!r} not found. {fix}')
        elif key.startswith('pretrain_network'):
            problem = weight_file_problem(key, value)
            if problem:
                problems.append(problem)
        elif key == 'resume_state' and not auto_resume and not osp.isfile(value):
            problems.append(f'path.resume_state: training state {value!r} not found (use --auto_resume to continue '
                            "from the experiment's newest state).")
    if stage == 'test' and not paths.get('pretrain_network_g'):
        problems.append('path.pretrain_network_g: not set, so the test would score a randomly initialised network. '
                        'Set it to a trained net_g_*.pth or a converted official checkpoint.')
    return problems


def resume_state_problems(request):
    """An explicit ``path.resume_state`` that does not load, or whose network files (``net_<x>_<iter>.pth`` or
    ``.safetensors`` in the run's own ``models/`` folder, where BasicSR's ``check_resume`` looks) are missing."""
    from sfmnet_plugin.compat.resume import explicit_state_problem
    from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file

    opt = request.options
    state_path = (opt.get('path') or {}).get('resume_state')
    if request.stage != 'train' or request.auto_resume or not isinstance(state_path, str) or not state_path:
        return []
    state_path = osp.expanduser(state_path)
    if not osp.isfile(state_path):
        return []  # reported by network_file_problems
    try:
        state = load_torch_file(state_path, what='path.resume_state')
    except (UnsafeOrInvalidFileError, OSError) as error:
        return [str(error)]
    name = str(opt.get('name'))
    if request.debug and not name.startswith('debug'):  # as BasicSR's parse_options names a --debug run
        name = f'debug_{name}'
    models = osp.join(request.root_path, 'experiments', name, 'models')
    problem = explicit_state_problem(opt, models, state_path, state.get('iter') if isinstance(state, dict) else None)
    return [problem] if problem else []


def _weights_problem(pretrained, explicit_path, option, read=False):
    """Why the pretrained file of ``option`` cannot be used, or None; with ``read``, the file is also read (the
    weights of a validation metric: a corrupt file would otherwise stop the run at its first validation)."""
    from sfmnet_plugin.utils.pretrained import resolve_pretrained_file
    from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file

    try:
        path = resolve_pretrained_file(pretrained, explicit_path, option_name=option)
        if read:
            load_torch_file(path, what=option)
    except FileNotFoundError as error:
        return f'{option}: {error}' if not str(error).startswith(option) else str(error)
    except UnsafeOrInvalidFileError as error:
        return str(error)
    return None


def lpips_heads_problem(net, option):
    """Why the ``lpips`` package's linear heads of ``net`` do not load, or None (read as the metric reads them)."""
    from sfmnet_plugin.metrics.lpips_metric import linear_layers_file
    from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file

    try:
        load_torch_file(linear_layers_file(net), what=f'{option}: LPIPS-{net} linear layers')
    except (UnsafeOrInvalidFileError, FileNotFoundError) as error:
        return f'{error} The file comes with the lpips package: reinstall it (pip install --force-reinstall lpips).'
    return None


def backbone_weight_problems(opt, stage):
    """Missing VGG weights (perceptual loss); missing or unreadable AlexNet/VGG/SqueezeNet weights and linear heads
    (LPIPS) and FID Inception weights and reference (``val.fid``), first used at the first validation."""
    from sfmnet_plugin.metrics.lpips_metric import _TORCHVISION_TRUNKS
    from sfmnet_plugin.utils.pretrained import PretrainedFile

    problems = []
    if stage == 'train':
        perceptual = (opt.get('train') or {}).get('perceptual_opt') or {}
        if perceptual.get('type') == 'FacePerceptualLoss' and not perceptual.get('random_backbone_for_tests'):
            problems.append(_weights_problem(PretrainedFile.torchvision(perceptual.get('vgg_type', 'vgg19')),
                                             perceptual.get('vgg_weights_path'),
                                             'train.perceptual_opt.vgg_weights_path'))
    validates = stage == 'test' or any(phase.startswith('val') for phase in (opt.get('datasets') or {}))
    metrics = ((opt.get('val') or {}).get('metrics') or {}) if validates else {}
    for name, metric in metrics.items():
        if not isinstance(metric, dict) or metric.get('type') != 'calculate_lpips':
            continue
        net = metric.get('net', 'alex')
        if net not in _TORCHVISION_TRUNKS:
            continue
        problems.append(lpips_heads_problem(net, f'val.metrics.{name}'))
        if not metric.get('random_backbone_for_tests'):
            problems.append(_weights_problem(PretrainedFile.torchvision(_TORCHVISION_TRUNKS[net]),
                                             metric.get('weights_path'), f'val.metrics.{name}.weights_path', read=True))
    if validates and (opt.get('val') or {}).get('fid'):
        problems += fid_problems(opt['val']['fid'])
    return [problem for problem in problems if problem]


def fid_problems(fid):
    """Why ``val.fid`` cannot run (its Inception weights missing or unreadable, its reference missing), before the
    run rather than at its first validation, hours in."""
    from sfmnet_plugin.metrics.fid import FID_INCEPTION_WEIGHTS

    if not isinstance(fid, dict):
        return [f'val.fid: expected a mapping with reference (and weights_path), got {fid!r}.']
    reference = fid.get('reference')
    problems = [_weights_problem(FID_INCEPTION_WEIGHTS, fid.get('weights_path'), 'val.fid.weights_path', read=True)]
    if not reference:
        problems.append('val.fid.reference: not set; give a folder of images, an LMDB or an .npz of FID statistics.')
    elif not (osp.isdir(reference) or (str(reference).endswith('.npz') and osp.isfile(reference))):
        problems.append(f'val.fid.reference: no folder, LMDB or .npz of FID statistics at {reference!r}.')
    return problems


# ----------------------------------------------------------------------------- loggers

# BasicSR's optional loggers (basicsr/train.py init_tb_loggers), off in runs whose name contains 'debug':
# option -> (the module it imports, what installs it)
LOGGER_MODULES = {'logger.use_tb_logger': ('tensorboard', 'pip install tensorboard'),
                  'logger.wandb.project': ('wandb', "pip install 'sfmnet-plugin[wandb]' (or pip install wandb)")}


def logger_problems(opt, stage):
    """The loggers a training run asks for whose package is not installed (BasicSR imports them mid-start)."""
    import importlib.util

    logger = opt.get('logger') or {}
    if stage != 'train' or 'debug' in str(opt.get('name', '')):
        return []
    wanted = {'logger.use_tb_logger': bool(logger.get('use_tb_logger')),
              'logger.wandb.project': bool((logger.get('wandb') or {}).get('project'))}
    problems = []
    for option, (module, install) in LOGGER_MODULES.items():
        if wanted[option] and importlib.util.find_spec(module) is None:
            problems.append(f'{option}: is set, but the {module} package is not installed; {install}, '
                            'or remove the option.')
    if wanted['logger.wandb.project'] and not wanted['logger.use_tb_logger']:
        problems.append('logger.wandb.project: BasicSR logs to wandb only together with TensorBoard; '
                        'set logger.use_tb_logger: true.')
    return problems


# ----------------------------------------------------------------------------- the check


def check_run(request):
    """Raise a :class:`PreflightError` listing everything the run of ``request`` (a
    :class:`~sfmnet_plugin.launch.request.RunRequest`) is missing; nothing is created or built.

    Each check reads ``request.options`` (merged, with ``--force_yml`` applied) and returns its problems; a new
    check is one more line here.
    """
    opt, stage = request.options, request.stage
    problems = dataset_problems(opt, stage, request.world_size)
    problems += network_file_problems(opt, stage, request.auto_resume)
    problems += resume_state_problems(request)
    problems += backbone_weight_problems(opt, stage)
    problems += logger_problems(opt, stage)
    if not problems:  # the weights are read only once the files are there
        problems += network_fit_problems(opt)
    if problems:
        raise PreflightError(problems)
