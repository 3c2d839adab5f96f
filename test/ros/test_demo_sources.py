"""Frame sources of the demo: synthetic scenes, image folders, rosbags (no ROS graph needed)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.demo.sources import bag_source, folder_source, synthetic_source
from anomaly_seg_ros.errors import DatasetError


def test_synthetic_source_is_deterministic_and_sized():
    source = synthetic_source(3, seed=2, width=96, height=48)
    first, again = list(source.open()), list(source.open())
    assert source.count == 3 and [f.name for f in first] == ['000000', '000001', '000002']
    assert all(f.rgb.shape == (48, 96, 3) and f.rgb.dtype == np.uint8 for f in first)
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(first, again))


def test_folder_source_reads_images_sorted_and_refuses_an_empty_folder(tmp_path):
    for name in ('b', 'a'):
        cv2.imwrite(str(tmp_path / f'{name}.png'), np.zeros((4, 6, 3), dtype=np.uint8))
    (tmp_path / 'notes.txt').write_text('x')
    source = folder_source(tmp_path)
    assert source.count == 2 and [f.name for f in source.open()] == ['a', 'b']
    assert folder_source(tmp_path, limit=1).count == 1
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='no images'):
        folder_source(tmp_path / 'empty')
    with pytest.raises(DatasetError, match='not a directory'):
        folder_source(tmp_path / 'missing')


def test_bag_source_reads_the_first_image_topic(tmp_path):
    bags = pytest.importorskip('anomaly_seg_ros.bags')
    from anomaly_seg_ros.data.sample import Sample

    frames = [np.full((8, 12, 3), 30 * i, dtype=np.uint8) for i in range(3)]
    samples = [Sample(f'f{i}', frame, None, None, None, None) for i, frame in enumerate(frames)]
    bags.make_bag(samples, tmp_path / 'bag')
    source = bag_source(tmp_path / 'bag')
    assert source.count == 3 and '/camera/image_raw' in source.description
    read = list(source.open())
    assert all(np.array_equal(f.rgb, frame) for f, frame in zip(read, frames))
    with pytest.raises(DatasetError, match='no image topic /nope'):
        bag_source(tmp_path / 'bag', topic='/nope')
