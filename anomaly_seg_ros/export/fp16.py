"""FP16 variant of an ONNX graph: FP16 inside, the original float32/int32 inputs and outputs, and the
numerically sensitive ops kept in FP32.

TensorRT 10.12+ and 11 take their precision from the graph (strong typing), so an FP16 engine needs an
FP16 ONNX graph. The conversion is an allow list: convolutions and matrix products
(:data:`HEAVY_OPS`) run in FP16, and the light ops of :data:`FP16_OPS` (activations, pooling,
element-wise arithmetic, resize, layout ops) run in FP16 where one of their inputs is FP16, so the
pre- and post-processing on FP32 values stays FP32. Everything else keeps its type, in particular
InstanceNormalization and every reduction around it (ReduceMean/ReduceSum), Softmax/LogSoftmax,
Exp/Log, TopK and ArgMax. ``Cast`` nodes are inserted at
each boundary between the FP16 and FP32 regions, float32 initializers read by FP16 ops get FP16
copies (clipped to the FP16 range), and graph inputs and outputs keep their names and types.

Only the ``onnx`` package and numpy are needed. onnxconverter-common's ``float16`` converter does
the generic version with an op block list; this pass is small, keeps the FP16/FP32 policy above in
one place, and adds no dependency.
"""
from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ['FP16_OPS', 'HEAVY_OPS', 'convert_to_fp16', 'count_ops_by_type']

_LOG = logging.getLogger(__name__)
FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
_FP16_MAX = float(np.finfo(np.float16).max)

#: Ops that run in FP16 (when their first input is float32). Everything else stays as exported.
FP16_OPS = frozenset({
    'Abs', 'Add', 'AveragePool', 'BatchNormalization', 'Clip', 'Concat', 'Conv', 'ConvTranspose', 'Div', 'Elu',
    'Expand', 'Flatten', 'Gather', 'Gemm', 'GlobalAveragePool', 'HardSigmoid', 'Identity', 'LeakyRelu',
    'MatMul', 'Max', 'MaxPool', 'Min', 'Mul', 'Neg', 'Pad', 'Relu', 'Reshape', 'Resize', 'Selu', 'Sigmoid',
    'Slice', 'Split', 'Squeeze', 'Sub', 'Tanh', 'Tile', 'Transpose', 'Unsqueeze',
})
#: Ops that always run in FP16 (the cost of the network); the other ops of :data:`FP16_OPS` run in FP16
#: only where one of their inputs comes from an FP16 op, so pre- and post-processing on FP32 values
#: (normalization of the input image, the uncertainty maps, the ensemble) stays FP32.
HEAVY_OPS = frozenset({'Conv', 'ConvTranspose', 'Gemm', 'MatMul'})
# Inputs that must keep their type whatever the op's precision (Resize: roi and scales).
_KEEP_INPUTS = {'Resize': (1, 2)}


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    types = {init.name: init.data_type for init in graph.initializer}
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.HasField('tensor_type'):
            types[value.name] = value.type.tensor_type.elem_type
    return types


def _unique(name: str, taken: set[str]) -> str:
    candidate, index = name, 1
    while candidate in taken:
        candidate = f'{name}_{index}'
        index += 1
    taken.add(candidate)
    return candidate


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A converted copy of ``model`` (see the module docstring); the input is left unchanged."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for node in graph.node for attr in node.attribute):
        raise ValueError('graphs with subgraphs (If/Loop/Scan) are not supported by the FP16 conversion')
    types = _elem_types(model)
    initializers = {init.name: init for init in graph.initializer}
    taken = set(types) | {out for node in graph.node for out in node.output} | {n.name for n in graph.node}

    nodes = list(graph.node)
    fp16_nodes: set[int] = set()
    fp16_tensors: set[str] = set()
    for node in nodes:  # topological order: heavy ops start FP16 regions, light ops follow their inputs
        if not (node.domain in ('', 'ai.onnx') and node.op_type in FP16_OPS and len(node.input) > 0
                and types.get(node.input[0]) == FLOAT):
            continue
        if node.op_type in HEAVY_OPS or any(name in fp16_tensors for name in node.input):
            fp16_nodes.add(id(node))
            fp16_tensors.update(out for out in node.output if types.get(out) == FLOAT)
    # Float tensors produced by FP16 nodes live as '<name>__fp16'; '<name>' is re-made by a Cast if needed.
    half: dict[str, str] = {}
    produced_half: set[str] = set()
    for node in nodes:
        if id(node) in fp16_nodes:
            for out in node.output:
                if out and types.get(out) == FLOAT:
                    half[out] = _unique(f'{out}__fp16', taken)
                    produced_half.add(out)
    full: dict[str, str] = {}
    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[TensorProto] = []

    def as_half(name: str) -> str:
        if name not in half:
            half[name] = _unique(f'{name}__fp16', taken)
            if name in initializers:
                values = numpy_helper.to_array(initializers[name]).astype(np.float32)
                if np.any(np.abs(values) > _FP16_MAX):
                    _LOG.warning('initializer %s exceeds the FP16 range; clipped', name)
                new_inits.append(numpy_helper.from_array(
                    np.clip(values, -_FP16_MAX, _FP16_MAX).astype(np.float16), half[name]))
            else:
                new_nodes.append(helper.make_node('Cast', [name], [half[name]], to=FLOAT16,
                                                  name=_unique(f'{name}_to_fp16', taken)))
        return half[name]

    def as_full(name: str) -> str:
        if name not in produced_half:
            return name
        if name not in full:  # cast back under the original name, so graph outputs keep theirs
            new_nodes.append(helper.make_node('Cast', [half[name]], [name], to=FLOAT,
                                              name=_unique(f'{name}_to_fp32', taken)))
            full[name] = name
        return full[name]

    for original in nodes:
        node = onnx.NodeProto()
        node.CopyFrom(original)  # never edit messages that are about to leave the repeated field
        if id(original) in fp16_nodes:
            keep = _KEEP_INPUTS.get(node.op_type, ())
            for index, name in enumerate(node.input):
                if name and index not in keep and types.get(name) == FLOAT:
                    node.input[index] = as_half(name)
            for index, name in enumerate(node.output):
                if name in produced_half:
                    node.output[index] = half[name]
        else:
            for index, name in enumerate(node.input):
                if name in produced_half:
                    node.input[index] = as_full(name)
        new_nodes.append(node)
    for output in graph.output:
        as_full(output.name)

    used = {name for node in new_nodes for name in node.input}
    kept_inits = [_copy(init) for init in graph.initializer if init.name in used]
    graph.ClearField('node')
    graph.node.extend(new_nodes)
    graph.ClearField('initializer')
    graph.initializer.extend(kept_inits + [init for init in new_inits if init.name in used])
    graph.ClearField('value_info')
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _copy(tensor: TensorProto) -> TensorProto:
    copy = TensorProto()
    copy.CopyFrom(tensor)
    return copy


def count_ops_by_type(model: onnx.ModelProto, elem_type: int) -> dict[str, int]:
    """How many nodes of each op type produce a first output of ``elem_type`` (for reports and tests)."""
    types = _elem_types(model)
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.output and types.get(node.output[0]) == elem_type:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
