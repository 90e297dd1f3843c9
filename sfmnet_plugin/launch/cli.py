"""The command lines of ``sfmnet-train`` and ``sfmnet-test``: help, usage errors, pre-flight errors.

BasicSR parses the same arguments again inside its pipeline; this parser is checked first so that
``--help`` explains the command (BasicSR's bare parser offered ``--auto_resume`` for testing too), a
wrong argument is a usage error, and a :class:`~sfmnet_plugin.launch.preflight.PreflightError` is printed
as one line per problem, without a traceback, with exit status 2.
"""
import argparse
import sys

DESCRIPTIONS = {
    'train': '''Train a network with BasicSR's trainer and the plugin's components (SFMNet, PairedFaceDataset,
FrequencyLoss, face metrics, ...).

The option file (-opt) is a BasicSR YAML file, with optional `_base_` inheritance: name, model_type,
scale, datasets (train, val), network_g, path, train, val, logger. See options/train_SFMNet_x8.yml
and options/_base_/sfmnet_celeba_x8.yml. Before anything is created, the datasets and pretrained
files it names are checked; a missing one is reported with the command that prepares it.

Outputs: experiments/<name>/ (models, training_states, the log with the full options and network,
the merged option file) and tb_logger/<name>/, under the repository root ($SFMNET_ROOT_PATH).''',
    'test': '''Test a trained network with BasicSR's tester: metrics per image and on average, with the
bicubic baseline, SR images, a Markdown summary and a contact sheet.

The option file (-opt) is a BasicSR YAML file, with optional `_base_` inheritance, whose datasets are
the test sets and whose path.pretrain_network_g is the network to test. See options/test_SFMNet_x8.yml.
Before anything is created, the test sets, the network file and metric weights are checked.

Outputs: results/<name>/ (visualization/, <set>_metrics.csv, <set>_summary.md,
<set>_contact_sheet.png and the log), under the repository root ($SFMNET_ROOT_PATH).''',
}

EXAMPLES = {
    'train': '''examples:
  sfmnet-train -opt options/train_SFMNet_x8.yml
  sfmnet-train -opt options/train_SFMNet_x8.yml --auto_resume          # continue from the newest state
  sfmnet-train -opt options/demo_SFMNet_x8.yml --force_yml train:total_iter=100
  python basicsr/train.py -opt options/train_SFMNet_x8.yml              # the same, BasicSR's usual command
  torchrun --nproc_per_node=4 sfmnet_plugin/train.py -opt options/train_SFMNet_x8.yml --launcher pytorch''',
    'test': '''examples:
  sfmnet-test -opt options/test_SFMNet_x8.yml
  sfmnet-test -opt options/test_SFMNet_x8.yml \\
      --force_yml path:pretrain_network_g=experiments/pretrained_models/SFMNet_x8.pth   # converted official weights
  python basicsr/test.py -opt options/test_SFMNet_x8.yml               # the same, BasicSR's usual command''',
}


def build_parser(stage, prog=None):
    """The argument parser of the ``stage`` ('train' | 'test') launcher: BasicSR's arguments, documented."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTIONS[stage],
                                     epilog=EXAMPLES[stage], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, metavar='OPTIONS.yml', help='BasicSR option file (YAML)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='distributed launcher: pytorch under torchrun (GPUs: nccl, CPUs: gloo) '
                             '(default: %(default)s)')
    if stage == 'train':
        parser.add_argument('--auto_resume', action='store_true',
                            help="continue from the newest state in experiments/<name>/training_states/")
    parser.add_argument('--debug', action='store_true',
                        help='BasicSR debug mode: name prefixed with debug_, frequent logs, no TensorBoard')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--force_yml', nargs='+', metavar='KEY:KEY=VALUE',
                        help='override existing options, e.g. train:total_iter=1000 '
                             'datasets:train:batch_size_per_gpu=4')
    return parser


def main(stage, root_path=None, argv=None):
    """Check the command line (``argv``, default ``sys.argv[1:]``), then run the pipeline on it.

    Returns when the run finished; exits with status 2 and one line per problem when it cannot start.
    """
    from sfmnet_plugin.launch.pipeline import run_basicsr_pipeline
    from sfmnet_plugin.launch.preflight import PreflightError

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    build_parser(stage).parse_args(sys.argv[1:])
    try:
        run_basicsr_pipeline(stage, root_path)
    except PreflightError as error:
        lines = error.problems
        print(f'sfmnet-{stage}: cannot start, {len(lines)} problem{"s" if len(lines) != 1 else ""} '
              '(nothing was created):', file=sys.stderr)
        for line in lines:
            print(f'  - {line}', file=sys.stderr)
        sys.exit(2)
