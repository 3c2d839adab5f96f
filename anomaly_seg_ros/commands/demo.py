"""``anomaly_seg demo``: run the node on synthetic scenes, an image folder or a bag; see :mod:`..demo`."""
from __future__ import annotations

import argparse
import re
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r'(\d+)x(\d+)', text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT, e.g. 512x256, got {text!r}')
    return int(match.group(1)), int(match.group(2))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'demo', help='run the ROS 2 node on synthetic scenes (or images, or a bag) and save what it publishes',
        description='Starts anomaly_seg_node as its own process (shipped models, default parameters, a ROS '
                    'domain of its own unless ROS_DOMAIN_ID is set), streams camera frames to it over ROS '
                    'topics, receives every output topic and writes per-frame pictures, a contact sheet, an '
                    'MP4 and a summary (frame rate, latency, drops) to the output folder.')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--images', type=Path, metavar='DIR', help='stream the images of this folder')
    source.add_argument('--bag', type=Path, metavar='PATH', help='stream the image topic of this rosbag2')
    parser.add_argument('--topic', help='image topic of --bag (default: its first Image/CompressedImage topic)')
    parser.add_argument('--frames', type=int, metavar='N',
                        help='frames to stream (default: 60 synthetic frames; every image of --images/--bag)')
    parser.add_argument('--size', type=_size, default=(512, 256), metavar='WxH',
                        help='synthetic frame size (default 512x256)')
    parser.add_argument('--seed', type=int, default=0, help='synthetic scene seed (default 0)')
    parser.add_argument('--rate', type=float, default=10.0, metavar='HZ',
                        help='camera rate in frames per second (default 10); 0: send the next frame when the '
                             'previous one came back')
    parser.add_argument('--models', type=Path, metavar='DIR',
                        help='model directory (default: the synthetic-scene models/demo for synthetic frames, the '
                             "node's default models/cityscapes_camvid for --images and --bag)")
    parser.add_argument('--backend', choices=('onnxruntime', 'tensorrt', 'torch'),
                        help='inference backend (default: the config file\'s, onnxruntime)')
    parser.add_argument('--config', type=Path, metavar='YAML', help='node parameters file (default: the shipped one)')
    parser.add_argument('--out', type=Path, default=Path('demo_output'), metavar='DIR',
                        help='output folder (default ./demo_output)')
    parser.add_argument('--no-video', action='store_true', help='do not write demo.mp4')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    parser.add_argument('--startup-timeout', type=float, default=180.0, metavar='S',
                        help='seconds to wait for the node to answer the first frame (default 180)')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import DemoOptions, bag_source, folder_source, run_demo, synthetic_source
    from ..resources import DEMO_MODEL_NAME, default_model_dir

    if args.frames is not None and args.frames < 1:
        raise SystemExit('anomaly_seg demo: error: --frames must be positive')
    if args.rate < 0:
        raise SystemExit('anomaly_seg demo: error: --rate must be 0 or positive')
    if args.images is not None:
        source = folder_source(args.images, args.frames)
    elif args.bag is not None:
        source = bag_source(args.bag, args.topic, args.frames)
    else:
        source = synthetic_source(args.frames or 60, args.seed, *args.size)
        # The synthetic scenes are what the demo models were trained on; real frames get the node's default.
        if args.models is None:
            args.models = default_model_dir(DEMO_MODEL_NAME)
    run_demo(DemoOptions(source=source, out_dir=args.out, model_dir=args.models, backend=args.backend,
                         config_file=args.config, rate_hz=args.rate, video=not args.no_video,
                         startup_timeout_s=args.startup_timeout, progress=not args.no_progress))
    return 0
