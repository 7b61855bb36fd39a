"""Another quantisation layout of a shipped GGUF, produced offline from its own
weights: every K-quant weight matrix dequantised and quantised again to `--type`
(Q8_0 keeps the shipped values almost exactly; Q4_0 loses some; other tensors are
copied as they are). For measuring which layout runs fastest on a CPU.

    pip install gguf==0.19.0
    python benchmarks/latency/requant.py SHIPPED.gguf OUT.gguf --type Q8_0
    python benchmarks/latency/requant.py SHIPPED.gguf OUT.gguf --type Q4_0 \
        --keep output.weight,token_embd.weight

`--keep` names tensors copied as they are (what llama.cpp's own quantiser does for a
Q4_0 file: the output matrix stays Q6_K; the token embeddings are only looked up, so
their layout costs no time).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

REQUANT = {Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q8_0, Q.Q4_0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--type", default="Q8_0", choices=["Q8_0", "Q4_0", "Q5_0", "BF16"])
    parser.add_argument("--keep", default="", help="tensor names copied as they are (a,b)")
    args = parser.parse_args()
    keep = {name for name in args.keep.split(",") if name}
    target = Q[args.type]
    reader = gguf.GGUFReader(args.source)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(args.out, arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    block = gguf.GGML_QUANT_SIZES[target][0]
    planned: list[tuple[str, np.ndarray, Q]] = []
    for tensor in reader.tensors:
        shape = tuple(int(x) for x in reversed(tensor.shape))  # numpy order
        if (
            tensor.tensor_type in REQUANT
            and tensor.tensor_type != target
            and tensor.name not in keep
            and shape[-1] % block == 0
        ):
            values = gguf.dequantize(tensor.data, tensor.tensor_type).reshape(shape)
            data = gguf.quantize(values.astype(np.float32), target)
            planned.append((tensor.name, data, target))
        else:
            planned.append((tensor.name, np.asarray(tensor.data), tensor.tensor_type))
        print(f"{tensor.name}: {tensor.tensor_type.name} -> {planned[-1][2].name}", flush=True)
    for name, data, kind in planned:
        writer.add_tensor(name, data, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
