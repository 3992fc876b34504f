"""``.onnx``: graph initializers and ``Constant`` node values, via ``onnx.load(load_external_data=False)``.

Initializers whose data lives in a side file (``data_location == EXTERNAL``) are
refused unless the caller opted in (``allow_external_data=True``, for a model path it
trusts, as the CLI does); then they are read from the model's own directory through
onnx's containment and bounds checks. An upload saved to a temporary file must not opt
in: its side-file names are attacker-chosen and would read other files of that directory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Source, TensorInfo, TensorLoadError


def _text(value: str | bytes) -> str:
    """A protobuf string field as text: protobuf hands back ``bytes`` when they are not valid UTF-8."""
    return value.decode("utf-8", errors="backslashreplace") if isinstance(value, bytes) else value


def _tensors(src: Source) -> tuple[dict[str, Any], dict[str, str]]:
    """``{name: TensorProto}`` in graph order (initializers, then Constant nodes) and model metadata."""
    import onnx

    if src.path is not None:
        model = onnx.load(str(src.path), load_external_data=False)
    else:
        model = onnx.load_model_from_string(src.data)
    tensors: dict[str, Any] = {_text(t.name): t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    tensors.setdefault(_text(node.output[0]), attr.t)
    producer = f"{_text(model.producer_name)} {_text(model.producer_version)}".strip()
    metadata = {"producer": producer, "ir_version": str(model.ir_version)}
    metadata.update({_text(p.key): _text(p.value) for p in model.metadata_props})
    return tensors, metadata


def _dtype_name(data_type: int) -> str:
    import onnx

    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).name
    except (KeyError, TypeError, ValueError):
        return f"onnx {onnx.TensorProto.DataType.Name(data_type)}"


def onnx_infos(src: Source) -> tuple[list[TensorInfo], dict[str, str]]:
    """Names, dims and element types of the initializers (no data decoded)."""
    tensors, metadata = _tensors(src)
    infos = [TensorInfo(name, tuple(int(d) for d in t.dims), _dtype_name(t.data_type)) for name, t in tensors.items()]
    return infos, metadata


def onnx_read(src: Source, names: list[str]) -> dict[str, np.ndarray]:
    """Decode initializers with ``numpy_helper.to_array`` (bfloat16/float8/int4 via ml_dtypes)."""
    import onnx
    from onnx import numpy_helper

    tensors, _ = _tensors(src)
    out = {}
    for name in names:
        t = tensors[name]
        if t.data_location == onnx.TensorProto.EXTERNAL:
            location = next((e.value for e in t.external_data if e.key == "location"), "?")
            if not src.allow_external or src.path is None:
                raise TensorLoadError(
                    f"initializer {name!r} keeps its data in an external file ({location!r}); external data is "
                    "refused for uploads: save the model with its weights inside (onnx.save(model, path, "
                    "save_as_external_data=False)) or export them to .safetensors"
                )
            out[name] = numpy_helper.to_array(t, base_dir=str(src.path.parent))
        else:
            out[name] = numpy_helper.to_array(t)
    return out
