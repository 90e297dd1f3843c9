"""What the console scripts' bodies share: the network options of the command line, input listing, the
end-of-run report, the preparation scripts' sample spec.

Every tool imports these from here, never from a sibling tool, so a tool can change without
breaking another. Their command lines (argument sets included) are in :mod:`sfmnet_cli`.
"""
import json
import os
import sys
from os import path as osp

from sfmnet_plugin.data.image_io import IMAGE_EXTENSIONS, why_not_a_file
from sfmnet_plugin.inference import InferenceError
from sfmnet_plugin.inference.network_options import network_options_from_file
from sfmnet_plugin.prep.split_writer import SampleSpec


def network_options(args):
    """``network_g`` from ``--opt`` / ``--arch-json`` / the default (None)."""
    if args.opt:
        return network_options_from_file(args.opt)
    if args.arch_json:
        try:
            options = json.loads(args.arch_json)
        except json.JSONDecodeError as error:
            raise InferenceError(f'--arch-json is not valid JSON: {error}') from error
        if not isinstance(options, dict):
            raise InferenceError('--arch-json must be a JSON object such as {"type": "SFMNet", "upscale": 8}.')
        return options
    return None


def collect_inputs(inputs, bad):
    """Image paths from files and folders (non-recursive, sorted). Everything skipped is added to ``bad`` with its
    reason: a missing path, and every entry with an image name that is not a regular file (a dangling link, a link
    loop, a link to a device, a FIFO...)."""
    paths = []
    for item in inputs:
        if osp.isdir(item):
            for name in sorted(os.listdir(item)):
                if not name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                path = osp.join(item, name)
                reason = why_not_a_file(path)
                if reason is None:
                    paths.append(path)
                else:
                    bad.append((path, f'{reason}: skipped'))
        else:
            reason = why_not_a_file(item)  # named explicitly: tried whatever its extension
            if reason is None:
                paths.append(item)
            else:
                bad.append((item, reason if reason == 'not found' else f'{reason}: skipped'))
    return paths


def input_labels(inputs):
    """``[(label, path)]`` of the command line's inputs for :class:`~sfmnet_plugin.utils.output_guard.OutputPlan`."""
    return [('input folder' if osp.isdir(item) else 'input', item) for item in inputs]


def report(summary, written, bad, skipped_noun, strict) -> int:
    """Print the summary line and every skipped item with its reason; the exit status: 0 if something was
    written (and, with ``strict``, nothing was skipped), otherwise 1."""
    print(summary)
    if bad:
        print(f'{len(bad)} {skipped_noun} skipped:', file=sys.stderr)
        for what, reason in bad:
            print(f'  {what}: {reason}', file=sys.stderr)
    return 0 if written and not (strict and bad) else 1


def spec_from_args(args):
    """The SampleSpec of parsed ``add_output_arguments`` options."""
    return SampleSpec(hr_size=args.hr_size, scales=tuple(sorted(set(args.scales))), downsampler=args.downsampler,
                      min_crop_size=args.min_crop_size, landmarks=args.landmarks)
