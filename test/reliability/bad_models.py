"""Broken copies of a good model directory, one per way a model can be bad, with what the error must say.

Each case is a directory (or a missing path) and the phrases the one error line must hold: the file
it is about and what to do.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx
import yaml

from anomaly_seg_ros.labels import CITYSCAPES


@dataclass(frozen=True)
class BadModel:
    name: str
    path: Path
    phrases: tuple[str, ...]  # all must appear in the error message


def _copy(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix in ('.onnx', '.yaml') and not path.name.endswith('.fp16.onnx'):
            shutil.copy2(path, target / path.name)
    return target


def _edit_yaml(directory: Path, edit) -> None:  # noqa: ANN001 - a callable on the loaded mapping
    path = directory / 'model.yaml'
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _set_metadata(path: Path, key: str, value: str) -> None:
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            break
    else:
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def make_bad_models(good: Path, root: Path) -> list[BadModel]:
    """Every broken variant of ``good`` (an exported model directory) under ``root``."""
    export = 'anomaly_seg export'
    cases = [BadModel('missing_directory', root / 'no_such_model', (str(root / 'no_such_model'), 'does not exist',
                                                                     export))]

    empty = root / 'no_metadata'
    empty.mkdir(parents=True)
    cases.append(BadModel('missing_metadata', empty, (str(empty / 'model.yaml'), 'is missing', export)))

    d = _copy(good, root / 'missing_file')
    (d / 'perceptual.onnx').unlink()
    cases.append(BadModel('missing_file', d, (str(d / 'perceptual.onnx'), 'is missing', export)))

    d = _copy(good, root / 'empty_file')
    (d / 'segmentation.onnx').write_bytes(b'')
    cases.append(BadModel('empty_file', d, (str(d / 'segmentation.onnx'), 'is empty', export)))

    d = _copy(good, root / 'truncated_file')
    data = (d / 'dissimilarity.onnx').read_bytes()
    (d / 'dissimilarity.onnx').write_bytes(data[: len(data) // 3])
    cases.append(BadModel('truncated_file', d, (str(d / 'dissimilarity.onnx'), 'cannot be loaded', export)))

    d = _copy(good, root / 'corrupt_file')
    (d / 'synthesis.onnx').write_bytes(bytes(range(256)) * 40)
    cases.append(BadModel('corrupt_file', d, (str(d / 'synthesis.onnx'), 'cannot be loaded', export)))

    d = _copy(good, root / 'incompatible_version')
    _edit_yaml(d, lambda data: data.update(format_version=99))
    cases.append(BadModel('incompatible_version', d, (str(d / 'model.yaml'), 'format_version 99',
                                                      're-export or retrain')))

    d = _copy(good, root / 'unreadable_metadata')
    (d / 'model.yaml').write_text('format_version: 1\nstages: [unclosed\n')
    cases.append(BadModel('unreadable_metadata', d, (str(d / 'model.yaml'), 'cannot be read as YAML', 'regenerate')))

    d = _copy(good, root / 'metadata_missing_a_stage')
    _edit_yaml(d, lambda data: data['stages'].pop('perceptual'))
    cases.append(BadModel('metadata_missing_a_stage', d, (str(d / 'model.yaml'), "['perceptual'] missing")))

    # The synthesis file was exported for another synthesis resolution than model.yaml says.
    d = _copy(good, root / 'resolution_mismatch')
    _edit_yaml(d, lambda data: data['stages']['synthesis'].update(input_size=[48, 96]))
    cases.append(BadModel('resolution_mismatch', d, (str(d / 'synthesis.onnx'), 'does not match stage',
                                                     '(1, 3, 48, 96)', export)))

    # A segmentation file exported for another label set (19 classes) in a 10-class model.
    d = _copy(good, root / 'stage_classes_mismatch')
    _set_metadata(d / 'segmentation.onnx', 'num_classes', '19')
    cases.append(BadModel('stage_classes_mismatch', d, (str(d / 'segmentation.onnx'), 'exported for 19 classes',
                                                        '10 classes', export)))

    # model.yaml names another label set than the one the graphs were exported for.
    d = _copy(good, root / 'label_set_mismatch')
    _edit_yaml(d, lambda data: data.update(label_set=CITYSCAPES.to_dict()))
    cases.append(BadModel('label_set_mismatch', d, (str(d / 'segmentation.onnx'), 'exported for 10 classes',
                                                    "'cityscapes' with 19 classes", export)))
    return cases
