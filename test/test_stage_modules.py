"""Stage modules: the stage contract's shapes and dtypes, pre-processing, batch independence,
model-directory files and their errors, and ONNX export parity on a tiny configuration."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.labels import CITYSCAPES, SYNTHETIC
from anomaly_seg_ros.model_config import ModelConfig, load_model_config
from anomaly_seg_ros.networks import has_spectral_norm, one_hot, resize_labels_nearest
from anomaly_seg_ros.stage_modules import (
    build_stage_module,
    init_random_model_dir,
    light_model_config,
    load_network,
    load_stage_modules,
    make_model_config,
    paper_model_config,
    save_network,
)
from anomaly_seg_ros.stages import STAGE_ORDER, STAGES, stage_specs

TINY_ARCHITECTURES = {
    'segmentation': {'name': 'icnet', 'num_classes': 10, 'block': 'basic', 'layers': [1, 1, 1, 1],
                     'planes': [8, 8, 16, 16], 'stem': [8, 8, 8], 'sub1': [8, 8, 8], 'head_channels': 16,
                     'cff_channels': 16},
    'synthesis': {'name': 'spade_generator', 'num_classes': 10, 'output_size': [32, 64], 'ngf': 4,
                  'spade_hidden': 8},
    'perceptual': {'name': 'vgg19_features', 'width': 0.125},
    'dissimilarity': {'name': 'dissimilarity', 'num_classes': 10, 'width': 0.125},
}
TINY_SIZES = {'segmentation': (64, 128), 'synthesis': (32, 64), 'perceptual': (32, 48), 'dissimilarity': (32, 64)}


@pytest.fixture(scope='module')
def config() -> ModelConfig:
    return make_model_config(SYNTHETIC, TINY_ARCHITECTURES, TINY_SIZES, perceptual_scale=2.0,
                             ensemble_weights=(0.5, 0.2, 0.2, 0.1))


@pytest.fixture(scope='module')
def modules(config: ModelConfig) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {stage: build_stage_module(stage, config).eval() for stage in STAGE_ORDER}


def _run_all(modules: dict[str, torch.nn.Module], image: torch.Tensor,
             weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    tensors = {'image': image, 'ensemble_weights': weights if weights is not None else torch.tensor(
        [0.5, 0.2, 0.2, 0.1])}
    with torch.no_grad():
        for stage in STAGE_ORDER:
            inputs, outputs = STAGES[stage]
            result = modules[stage](*(tensors[n] for n in inputs))
            assert isinstance(result, tuple) and len(result) == len(outputs)
            tensors.update(zip(outputs, result))
    return tensors


def _image(batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, *TINY_SIZES['segmentation'], generator=torch.Generator().manual_seed(seed))


def test_stage_outputs_follow_the_stage_contract(config: ModelConfig, modules: dict[str, torch.nn.Module]) -> None:
    tensors = _run_all(modules, _image())
    for spec in stage_specs(config).values():
        for t in spec.inputs + spec.outputs:
            assert tuple(tensors[t.name].shape) == t.shape, t.name
            assert str(tensors[t.name].dtype).removeprefix('torch.') == t.dtype, t.name
    for name in ('entropy', 'softmax_distance', 'synthesis', 'perceptual_difference', 'dissimilarity', 'anomaly'):
        assert tensors[name].min() >= 0 and tensors[name].max() <= 1, name
    assert tensors['semantic'].min() >= 0 and tensors['semantic'].max() < 10


@pytest.mark.numerics
def test_batch_of_one_and_of_n_agree_and_runs_are_deterministic(modules: dict[str, torch.nn.Module]) -> None:
    images = torch.cat([_image(seed=s) for s in range(3)])
    batch = _run_all(modules, images)
    again = _run_all(modules, images)
    singles = [_run_all(modules, images[i:i + 1]) for i in range(3)]
    for name, value in batch.items():
        if name == 'ensemble_weights':
            continue
        assert torch.equal(value, again[name]), name
        torch.testing.assert_close(value, torch.cat([s[name] for s in singles]), atol=1e-5, rtol=1e-5)


def test_dissimilarity_stage_ensemble_respects_weights(modules: dict[str, torch.nn.Module]) -> None:
    entropy_only = _run_all(modules, _image(), torch.tensor([0.0, 1.0, 0.0, 0.0]))
    expected = F.interpolate(entropy_only['entropy'], size=TINY_SIZES['dissimilarity'], mode='bilinear',
                             align_corners=False)
    torch.testing.assert_close(entropy_only['anomaly'], expected)
    dis_only = _run_all(modules, _image(), torch.tensor([2.0, 0.0, 0.0, 0.0]))
    assert torch.equal(dis_only['anomaly'], dis_only['dissimilarity'])


def test_perceptual_stage_is_zero_for_identical_images_and_positive_where_they_differ(
        modules: dict[str, torch.nn.Module]) -> None:
    stage = modules['perceptual']
    synthesis = torch.rand(1, 3, *TINY_SIZES['synthesis'], generator=torch.Generator().manual_seed(1))
    image = F.interpolate(synthesis, size=TINY_SIZES['segmentation'], mode='nearest')
    altered = image.clone()
    altered[..., :, 64:] = 1.0 - altered[..., :, 64:]  # right half differs
    with torch.no_grad():
        same = stage.raw_difference(synthesis, synthesis)
        (diff,) = stage(altered, synthesis)
    assert torch.equal(same, torch.zeros_like(same))
    assert diff[..., :, 30:].mean() > 0
    assert diff[..., :, 30:].mean() > diff[..., :, :10].mean()


def test_synthesis_stage_encodes_ignore_as_zero_and_resizes_nearest() -> None:
    labels = torch.randint(0, 10, (2, 64, 128), dtype=torch.int32)
    labels[:, :8] = 255
    for size in [(32, 64), (48, 80), (64, 128)]:
        expected = F.interpolate(labels[:, None].float(), size=size, mode='nearest')[:, 0].to(torch.int32)
        assert torch.equal(resize_labels_nearest(labels, size), expected)
    encoded = one_hot(labels, 10)
    assert encoded.shape == (2, 10, 64, 128)
    assert torch.equal(encoded[:, :, :8], torch.zeros_like(encoded[:, :, :8]))
    assert torch.equal(encoded[:, :, 8:].sum(dim=1), torch.ones(2, 56, 128))


def test_config_factories_fill_sizes_architectures_and_files() -> None:
    light = light_model_config()
    assert light.stage('segmentation').input_size == (256, 512)
    assert light.stage('dissimilarity').input_size == (128, 256)
    assert light.stage('synthesis').architecture['output_size'] == [128, 256]
    assert light.stage('perceptual').files == {'torch': 'perceptual.pt'}
    paper = paper_model_config()
    assert paper.label_set is CITYSCAPES
    assert paper.stage('segmentation').input_size == (1024, 2048)
    assert paper.stage('dissimilarity').architecture['num_classes'] == 19
    assert ModelConfig.from_dict(paper.to_dict()).to_dict() == paper.to_dict()


def test_random_model_dir_loads_and_matches_its_networks(tmp_path: Path, config: ModelConfig) -> None:
    init_random_model_dir(tmp_path, config, seed=1)
    loaded_config = load_model_config(tmp_path)
    assert loaded_config.provenance['weights'] == 'random'
    modules = load_stage_modules(tmp_path, loaded_config)
    assert set(modules) == set(STAGE_ORDER)
    assert not has_spectral_norm(modules['synthesis'])
    assert not any(p.requires_grad for m in modules.values() for p in m.parameters())
    unfolded = build_stage_module('synthesis', config, load_network(
        tmp_path / 'synthesis.pt', 'synthesis', config.stage('synthesis').architecture))
    semantic = torch.randint(0, 10, (1, 64, 128), dtype=torch.int32)
    with torch.inference_mode():
        torch.testing.assert_close(modules['synthesis'](semantic)[0], unfolded(semantic)[0])
        outputs = _run_all(modules, _image())
    assert outputs['anomaly'].shape == (1, 1, 32, 64)


def test_load_network_errors_name_the_file(tmp_path: Path, config: ModelConfig) -> None:
    arch = config.stage('perceptual').architecture
    with pytest.raises(ModelError, match=r'missing\.pt is missing'):
        load_network(tmp_path / 'missing.pt', 'perceptual', arch)
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'\x00garbage')
    with pytest.raises(ModelError, match=r'corrupt\.pt cannot be read'):
        load_network(corrupt, 'perceptual', arch)
    torch.manual_seed(0)
    good = save_network(tmp_path / 'perceptual.pt', 'perceptual', arch,
                        build_stage_module('perceptual', config).vgg)
    with pytest.raises(ModelError, match=r'perceptual\.pt: architecture differs.*width'):
        load_network(good, 'perceptual', {**arch, 'width': 0.25})
    with pytest.raises(ModelError, match="holds the 'perceptual' network"):
        load_network(good, 'dissimilarity', arch)
    record = torch.load(good, weights_only=True)
    record['state_dict'].pop(next(iter(record['state_dict'])))
    torch.save(record, tmp_path / 'partial.pt')
    with pytest.raises(ModelError, match=r'partial\.pt: the weights do not fit'):
        load_network(tmp_path / 'partial.pt', 'perceptual', arch)


def test_mismatched_class_count_is_refused(config: ModelConfig) -> None:
    other = make_model_config(CITYSCAPES, {s: c.architecture for s, c in config.stages.items()}, TINY_SIZES)
    with pytest.raises(ModelError, match='10 classes'):
        build_stage_module('dissimilarity', other)


@pytest.mark.slow
@pytest.mark.parametrize('stage', STAGE_ORDER)
@pytest.mark.numerics
def test_stage_exports_to_onnx_and_matches_torch(stage: str, modules: dict[str, torch.nn.Module]) -> None:
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    tensors = _run_all(modules, _image(seed=5))
    inputs, outputs = STAGES[stage]
    args = tuple(tensors[n] for n in inputs)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(modules[stage], args, buffer, opset_version=17, dynamo=False,
                          input_names=list(inputs), output_names=list(outputs))
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model)
    session = ort.InferenceSession(buffer.getvalue(), providers=['CPUExecutionProvider'])
    feeds = {i.name: tensors[i.name].numpy() for i in session.get_inputs()}
    results = session.run(list(outputs), feeds)
    for name, result in zip(outputs, results):
        expected = tensors[name].numpy()
        assert result.dtype == expected.dtype, name
        if name == 'semantic':
            assert np.array_equal(result, expected)
        else:
            np.testing.assert_allclose(result, expected, atol=1e-4, rtol=0, err_msg=name)
