"""How SFMNet's ``phase_cut_width`` option trades faithfulness for a well-conditioned output, on real faces.

    python benchmarks/bench_conditioning.py --checkpoint demo_output/models/SFMNet.safetensors \\
        --lr demo_output/lr_inputs --widths 0 0.1 0.3 0.5 1.0

For each width (radians; 0 is the official function) one row: the largest output change when the LR input moves
by ``--delta`` (``sfmnet_plugin.utils.numerics.input_sensitivity``, over ``--trials`` random sign patterns), how far the
output is from the official function's (largest absolute difference, and PSNR of one against the other), the
largest difference between two float32 runs that only order their sums differently (NCHW against channels_last
weights: what separates ONNX Runtime, another GPU or another library from PyTorch), and, with ``--gt``, the PSNR
change against the ground truth (mean and worst face). The same weights
are used for every row: the option adds no parameters. Prints a Markdown table.
"""
import argparse
import inspect
import os.path as osp
import sys

import numpy as np


def parse_args(argv=None):
    from sfmnet_cli.arguments import add_network_arguments

    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_network_arguments(parser, example='{"type": "SFMNet", "num_feat": 16, "num_heads": 2}')
    parser.add_argument('--lr', required=True, help='folder of LR faces (the network input)')
    parser.add_argument('--gt', help='folder of the HR faces with the same file names (optional)')
    parser.add_argument('--widths', type=float, nargs='+', default=[0, 0.1, 0.3, 0.5, 1.0])
    parser.add_argument('--delta', type=float, default=1e-7, help='input change of the sensitivity measurement')
    parser.add_argument('--trials', type=int, default=2, help='random sign patterns of the input change')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads')
    return parser.parse_args(argv)


def load_batch(paths):
    """``N x 3 x H x W`` float tensor in [0, 1] from image files of one size (the preparation decoder)."""
    import torch

    from sfmnet_plugin.data.image_io import read_rgb_image

    arrays = [np.asarray(read_rgb_image(path)[0], dtype=np.float32) / 255. for path in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def measure(restorer_for_width, widths, lr, gt, delta, trials):
    """One dict per width: sensitivity, distance from the official output, float32 reordering gap, PSNR vs GT."""
    import copy

    import torch

    from sfmnet_plugin.utils.numerics import input_sensitivity, psnr

    rows, official = [], None
    for width in widths:
        net = restorer_for_width(width).net
        reordered = copy.deepcopy(net).to(memory_format=torch.channels_last)
        with torch.no_grad():
            out, out_reordered = net(lr), reordered(lr)
        official = out if official is None else official
        row = {'width': width, 'sensitivity': input_sensitivity(net, lr, delta=delta, trials=trials),
               'from_official': float((out - official).abs().max()), 'psnr_vs_official': psnr(out, official),
               'reordering_gap': float((out_reordered - out).abs().max())}
        if gt is not None:
            change = [psnr(out[i], gt[i]) - psnr(official[i], gt[i]) for i in range(len(lr))]
            row['gt_mean'], row['gt_worst'] = float(np.mean(change)), float(min(change))
        rows.append(row)
    return rows


def markdown(rows, count, delta):
    has_gt = 'gt_mean' in rows[0]
    header = ['phase_cut_width (rad)', f'max output change for a {delta:g} input change',
              'max abs(out - official)', 'PSNR vs official (dB)', 'max abs(NCHW - channels_last), fp32']
    header += ['PSNR vs GT change, mean / worst (dB)'] if has_gt else []
    lines = [f'{count} faces', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [f"{row['width']:g}" + (' (official)' if row['width'] == 0 else ''), f"{row['sensitivity']:.1e}",
                 f"{row['from_official']:.1e}", f"{row['psnr_vs_official']:.1f}", f"{row['reordering_gap']:.1e}"]
        if has_gt:
            cells.append(f"{row['gt_mean']:+.4f} / {row['gt_worst']:+.4f}")
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import torch

    import sfmnet_plugin  # noqa: F401  (compatibility fixes before basicsr is imported)
    from sfmnet_plugin.inference import FaceRestorer, InferenceError
    from sfmnet_plugin.inference.network_options import architecture
    from sfmnet_plugin.tools.common import collect_inputs, network_options

    if args.threads:
        torch.set_num_threads(args.threads)
    bad = []
    paths = collect_inputs([args.lr], bad)
    if bad or not paths:
        sys.exit(f'error: --lr {args.lr}: no images found (expected a folder of LR faces).')
    try:
        # --opt / --arch-json, else the network_g the checkpoint carries (or an official checkpoint's network)
        base = FaceRestorer(args.checkpoint, network_options(args), scale=args.scale, param_key=args.param_key,
                            device='cpu').options
        if 'phase_cut_width' not in inspect.signature(architecture(base)).parameters:
            sys.exit(f"error: network_g type {base['type']!r} has no phase_cut_width option (SFMNet, SMLNet).")

        def restorer_for_width(width):
            return FaceRestorer(args.checkpoint, network={**base, 'phase_cut_width': width}, scale=args.scale,
                                param_key=args.param_key, device='cpu')

        lr = load_batch(paths)
        gt = None
        if args.gt:
            gt_paths = [osp.join(args.gt, osp.basename(path)) for path in paths]
            missing = [path for path in gt_paths if not osp.isfile(path)]
            if missing:
                sys.exit(f'error: --gt {args.gt}: no {osp.basename(missing[0])} (expected the LR file names).')
            gt = load_batch(gt_paths)
        rows = measure(restorer_for_width, args.widths, lr, gt, args.delta, args.trials)
    except InferenceError as error:
        sys.exit(f'error: {error}')
    print(markdown(rows, len(paths), args.delta))


if __name__ == '__main__':
    main()
