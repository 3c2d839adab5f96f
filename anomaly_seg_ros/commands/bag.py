"""``anomaly_seg bag make|play|record|eval``: rosbag2 tools that work without rosbag2 installed."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ['register']

_STORAGES = ('mcap', 'sqlite3')
_IMAGE_TOPIC = '/camera/image_raw'
_ANOMALY_GT_TOPIC = '/ground_truth/anomaly'
_SEMANTIC_GT_TOPIC = '/ground_truth/semantic'
_ANOMALY_OUTPUT_TOPIC = '/anomaly_seg/anomaly'
_WORKFLOW = '''evaluating the node through ROS:
  anomaly_seg bag make --dataset road_anomaly --root DATA --out frames_bag
  anomaly_seg_node --ros-args -r image:=/camera/image_raw &
  anomaly_seg bag record --out outputs_bag --topics /anomaly_seg/anomaly /ground_truth/anomaly &
  anomaly_seg bag play frames_bag --restamp --wait-for /camera/image_raw /ground_truth/anomaly
  (stop the recorder with Ctrl-C, or give it --count N)
  anomaly_seg bag eval outputs_bag
--restamp makes the stamps live, so that the latency (receipt minus stamp) means something; the
ground truth is recorded with the outputs because its stamps are shifted the same way.'''


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('bag', help='make, play, record and evaluate rosbag2 files',
                                   description='rosbag2 tools (mcap or sqlite3) for machines without rosbag2.',
                                   epilog=_WORKFLOW, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='bag_command', metavar='ACTION', required=True)
    _register_make(commands)
    _register_play(commands)
    _register_record(commands)
    _register_eval(commands)


def _register_make(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser('make', help='write frames (and ground truth) to a bag',
                            description='Write images or a dataset to a rosbag2: frames as sensor_msgs/Image rgb8 '
                                        '(optionally CompressedImage on TOPIC/compressed) with increasing stamps at '
                                        'RATE, and, where labels exist, the ground truth as mono8 with the same '
                                        'stamps (anomaly 0/1/255, semantic train ids).')
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument('--images', type=Path, help='folder of images (no labels)')
    source.add_argument('--dataset', choices=('cityscapes', 'camvid', 'synthetic', 'road_anomaly', 'fishyscapes',
                                              'folder'), help='dataset kind (with --root)')
    p.add_argument('--root', type=Path, help='dataset root (with --dataset)')
    p.add_argument('--split', default=None, help='dataset split (cityscapes, camvid, synthetic)')
    p.add_argument('--out', type=Path, required=True, help='bag directory to create')
    p.add_argument('--storage', choices=_STORAGES, default='mcap', help='storage format (default mcap)')
    p.add_argument('--rate', type=float, default=10.0, help='frames per second of the stamps (default 10)')
    p.add_argument('--frame-id', default='camera', help='header frame_id (default camera)')
    p.add_argument('--topic', default=_IMAGE_TOPIC, help=f'image topic (default {_IMAGE_TOPIC})')
    p.add_argument('--compressed', action='store_true', help='also write CompressedImage on TOPIC/compressed')
    p.add_argument('--compressed-only', action='store_true', help='write only the CompressedImage topic')
    p.add_argument('--compressed-format', choices=('jpeg', 'png'), default='jpeg')
    p.add_argument('--anomaly-gt-topic', default=_ANOMALY_GT_TOPIC)
    p.add_argument('--semantic-gt-topic', default=_SEMANTIC_GT_TOPIC)
    p.add_argument('--start-time', type=float, default=None, metavar='SEC',
                   help='stamp of the first frame, seconds since the epoch (default: a fixed time, so the same '
                        'input gives the same bag)')
    p.add_argument('--limit', type=int, default=None, metavar='N', help='at most N frames')
    p.set_defaults(run=_run_make, parser=p)


def _register_play(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser('play', help='publish a bag with its original timing (rclpy)')
    p.add_argument('bag', type=Path)
    p.add_argument('--rate', type=float, default=1.0, help='speed factor (default 1)')
    p.add_argument('--loop', action='store_true', help='start over at the end until Ctrl-C')
    p.add_argument('--topics', nargs='+', default=None, help='topics to play (default all)')
    p.add_argument('--restamp', action='store_true',
                   help='shift header stamps to the wall clock of playback (for latency measurements)')
    p.add_argument('--wait-for', nargs='+', default=(), metavar='TOPIC',
                   help='start once each of these topics has a subscriber')
    p.add_argument('--wait-timeout', type=float, default=30.0, help='seconds to wait for subscribers (default 30)')
    p.add_argument('--delay', type=float, default=0.5, help='seconds between advertising and the first message')
    p.add_argument('--no-dds-profile', action='store_true',
                   help='do not give this process config/fastdds_large_images.xml (used where no Fast DDS profile '
                        'variable is set; without it Fast DDS loses or delays images of 640x480 and more)')
    p.set_defaults(run=_run_play, parser=p)


def _register_record(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser('record', help='record topics to a bag until Ctrl-C, --duration or --count')
    p.add_argument('--out', type=Path, required=True, help='bag directory to create')
    p.add_argument('--topics', nargs='+', required=True, help='topics to record')
    p.add_argument('--storage', choices=_STORAGES, default='mcap', help='storage format (default mcap)')
    p.add_argument('--duration', type=float, default=None, metavar='SEC', help='stop after SEC seconds')
    p.add_argument('--count', type=int, default=None, metavar='N', help='stop once every topic has N messages')
    p.set_defaults(run=_run_record, parser=p)


def _register_eval(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser('eval', help='evaluate recorded outputs against ground-truth topics',
                            description='Match recorded outputs to ground truth by header stamp; report AP, FPR95 '
                                        'and AUROC (and mIoU with --semantic-topic), the fraction of input frames '
                                        'that got an output, and the latency from header stamp to receipt.')
    p.add_argument('bag', type=Path, help='the recorded bag')
    p.add_argument('--anomaly-topic', default=_ANOMALY_OUTPUT_TOPIC,
                   help=f"anomaly output (32FC1 or mono8; default {_ANOMALY_OUTPUT_TOPIC}; '' to skip)")
    p.add_argument('--gt-topic', default=_ANOMALY_GT_TOPIC, help=f'anomaly ground truth (default {_ANOMALY_GT_TOPIC})')
    p.add_argument('--semantic-topic', default=None, help='semantic output (mono8 train ids)')
    p.add_argument('--semantic-gt-topic', default=_SEMANTIC_GT_TOPIC,
                   help=f'semantic ground truth (default {_SEMANTIC_GT_TOPIC})')
    p.add_argument('--input-topic', default=None, help='camera topic counting the input frames (default: gt topic)')
    p.add_argument('--gt-bag', type=Path, default=None, help='bag with the ground truth, if not the recorded one')
    p.add_argument('--num-classes', type=int, default=None, help='classes for IoU (default: ids seen)')
    p.add_argument('--json', type=Path, default=None, help='also write the results as JSON')
    p.set_defaults(run=_run_eval, parser=p)


def _run_make(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..bags import make_bag
    from ..bags.make import DEFAULT_START_NS, image_folder_samples

    if args.dataset is not None:
        if args.root is None:
            args.parser.error('--dataset needs --root')
        from ..data.registry import open_dataset
        dataset = open_dataset(args.dataset, args.root, args.split)
        samples = (dataset[i] for i in range(len(dataset)))
        total = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        source = f'{args.dataset} {args.root}' + (f' split {args.split}' if args.split else '')
    else:
        samples, total, source = image_folder_samples(args.images), None, f'images {args.images}'
    start_ns = DEFAULT_START_NS if args.start_time is None else int(round(args.start_time * 1e9))
    result = make_bag(tqdm(samples, total=total, desc='bag make', unit='frame'), args.out, storage=args.storage,
                      rate=args.rate, frame_id=args.frame_id, topic=args.topic,
                      compressed=args.compressed or args.compressed_only, raw=not args.compressed_only,
                      compressed_format=args.compressed_format, anomaly_topic=args.anomaly_gt_topic,
                      semantic_topic=args.semantic_gt_topic, start_ns=start_ns, limit=args.limit, source=source)
    print(f'wrote {result.frames} frames to {result.path} ({result.storage})')
    for topic, count in result.counts.items():
        print(f'  {topic}: {count} messages')
    return 0


def _run_play(args: argparse.Namespace) -> int:
    from ..bags import play_bag
    from ..ros.node_process import dds_profile_environment, environment

    # The sender's Fast DDS segment carries the images: like the launch file for the node.
    with environment({} if args.no_dds_profile else dds_profile_environment()):
        result = play_bag(args.bag, rate=args.rate, loop=args.loop, topics=args.topics, restamp=args.restamp,
                          wait_for=args.wait_for, wait_timeout_s=args.wait_timeout, start_delay_s=args.delay)
    total = sum(result.counts.values())
    print(f'published {total} messages in {result.wall_s:.1f} s ({result.loops} complete passes)')
    return 0


def _run_record(args: argparse.Namespace) -> int:
    from ..bags import record_bag

    print(f'recording {", ".join(args.topics)} to {args.out} (Ctrl-C to stop)', flush=True)
    result = record_bag(args.out, args.topics, storage=args.storage, duration_s=args.duration, count=args.count)
    for topic, count in result.counts.items():
        print(f'  {topic}: {count} messages')
    for topic in result.missing:
        print(f'  {topic}: never advertised')
    for topic, reason in result.skipped.items():
        print(f'  {topic}: not recorded ({reason})')
    print(f'recorded {result.duration_s:.1f} s to {result.path}')
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from ..bags import evaluate_bag

    anomaly_topic = args.anomaly_topic or None
    result = evaluate_bag(args.bag, anomaly_topic=anomaly_topic, gt_topic=args.gt_topic if anomaly_topic else None,
                          semantic_topic=args.semantic_topic,
                          semantic_gt_topic=args.semantic_gt_topic if args.semantic_topic else None,
                          input_topic=args.input_topic, gt_bag=args.gt_bag, num_classes=args.num_classes)
    print(result.format())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_dict(), indent=2) + '\n')
        print(f'json: {args.json}')
    return 0
