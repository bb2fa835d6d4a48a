#!/usr/bin/env python3
"""Writes PyTorch reference fixtures for fusegrad's tests to test/fixtures/GROUP.json.

Run with the PyTorch 1.13 CPU install:

    /usr/bin/python3.11 scripts/make-fixtures.py            # every group
    /usr/bin/python3.11 scripts/make-fixtures.py core       # only the named groups

Each group is a function in GROUPS that returns a list of cases; the script writes one JSON file per
group, one case per line. A case records:

    name      what the case checks, used as the test name
    op        the fusegrad op to run (test/fixtures.test.ts maps it to fusegrad, OPS below to torch)
    args      the op's keyword arguments, in fusegrad's camelCase names
    inputs    [{shape, dtype, values, requiresGrad, view}], where dtype 'float' means the test picks
              float32 or float64, and view lists view ops (t, transpose, permute) applied to the leaf
    output    {shape, dtype, values}: the forward result
    weight    the fixed weighting w of the output, or null for outputs with no gradient
    grads     d(sum(out * w)) / d(input) for every input (null where an input needs no gradient)

References are computed in float64. Input values and weights are multiples of 2^-8 that float32
holds exactly, so the float32 and float64 runs of fusegrad start from the same numbers. Outputs and
gradients are rounded to 10 significant digits. JSON has no Infinity or NaN, so those are written as
the strings "inf", "-inf" and "nan".
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

from fixtures_optim import group_optim, group_safetensors
from fixtures_nn import group_nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "test", "fixtures")
SIGNIFICANT_DIGITS = 10

# ---- input data ----


class Data:
    """Seeded sample values; every value is a multiple of 2^-8 so that float32 stores it exactly."""

    def __init__(self, seed):
        self.generator = torch.Generator().manual_seed(seed)

    def _grid(self, values, step=1 / 256):
        return torch.round(values / step) * step

    def normal(self, shape, scale=1.0):
        values = torch.randn(shape, generator=self.generator, dtype=torch.float64) * scale
        return self._grid(values)

    def uniform(self, shape, low, high):
        values = torch.rand(shape, generator=self.generator, dtype=torch.float64) * (high - low) + low
        return self._grid(values)

    def away_from_zero(self, shape):
        magnitude = self.uniform(shape, 0.25, 2.0)
        sign = torch.where(torch.rand(shape, generator=self.generator) < 0.5, -1.0, 1.0).to(torch.float64)
        return magnitude * sign

    def coarse(self, shape, levels=4):
        """Small integers, so that ties are common (for max, min, argmax)."""
        return torch.randint(0, levels, shape, generator=self.generator).to(torch.float64)

    def weight(self, shape):
        """Non-zero multiples of 1/16 in [-1.5, 1.5]."""
        k = torch.randint(1, 25, shape, generator=self.generator)
        sign = torch.where(torch.rand(shape, generator=self.generator) < 0.5, -1, 1)
        return (k * sign).to(torch.float64) / 16


def floats(values, grad=True, view=None):
    return {"dtype": "float", "values": values, "requiresGrad": grad, "view": view or []}


def ints(values):
    return {"dtype": "int32", "values": values, "requiresGrad": False, "view": []}


def bools(values):
    return {"dtype": "bool", "values": values, "requiresGrad": False, "view": []}


# ---- the ops, in torch ----


def apply_view(x, steps):
    for step in steps:
        if step[0] == "t":
            x = x.t()
        elif step[0] == "transpose":
            x = x.transpose(step[1], step[2])
        elif step[0] == "permute":
            x = x.permute(*step[1])
        else:
            raise ValueError(f"unknown view op {step[0]!r}")
    return x


def reduce_dims(args):
    dim = args.get("dim")
    return tuple(dim) if isinstance(dim, list) else dim


def cross_entropy(x, target, args):
    return F.cross_entropy(
        x,
        target,
        ignore_index=args.get("ignoreIndex", -100),
        reduction=args.get("reduction", "mean"),
        label_smoothing=args.get("labelSmoothing", 0.0),
    )


def masked_fill(x, mask, args):
    return x.masked_fill(mask, decode(args["value"]))


def layer_norm(xs, args):
    """xs is [x] followed by weight and bias where args["weight"] and args["bias"] say they are given."""
    rest = iter(xs[1:])
    weight = next(rest) if args.get("weight") else None
    bias = next(rest) if args.get("bias") else None
    return F.layer_norm(xs[0], args["normalizedShape"], weight, bias, args.get("eps", 1e-5))


OPS = {
    "add": lambda xs, a: torch.add(xs[0], xs[1]),
    "sub": lambda xs, a: torch.sub(xs[0], xs[1]),
    "mul": lambda xs, a: torch.mul(xs[0], xs[1]),
    "div": lambda xs, a: torch.div(xs[0], xs[1]),
    "pow": lambda xs, a: torch.pow(xs[0], xs[1] if len(xs) > 1 else a["exponent"]),
    "maximum": lambda xs, a: torch.maximum(xs[0], xs[1]),
    "minimum": lambda xs, a: torch.minimum(xs[0], xs[1]),
    "matmul": lambda xs, a: torch.matmul(xs[0], xs[1]),
    "sum": lambda xs, a: xs[0].sum() if "dim" not in a else xs[0].sum(reduce_dims(a), keepdim=a.get("keepdim", False)),
    "mean": lambda xs, a: xs[0].mean() if "dim" not in a else xs[0].mean(reduce_dims(a), keepdim=a.get("keepdim", False)),
    "amax": lambda xs, a: torch.amax(xs[0], reduce_dims(a) if "dim" in a else (), keepdim=a.get("keepdim", False)),
    "amin": lambda xs, a: torch.amin(xs[0], reduce_dims(a) if "dim" in a else (), keepdim=a.get("keepdim", False)),
    "var": lambda xs, a: torch.var(xs[0], reduce_dims(a), unbiased=a.get("unbiased", True), keepdim=a.get("keepdim", False)),
    "argmax": lambda xs, a: torch.argmax(xs[0], a.get("dim"), keepdim=a.get("keepdim", False)),
    "argmin": lambda xs, a: torch.argmin(xs[0], a.get("dim"), keepdim=a.get("keepdim", False)),
    "softmax": lambda xs, a: torch.softmax(xs[0], a["dim"]),
    "logSoftmax": lambda xs, a: torch.log_softmax(xs[0], a["dim"]),
    "crossEntropy": lambda xs, a: cross_entropy(xs[0], xs[1], a),
    "gelu": lambda xs, a: F.gelu(xs[0], approximate=a.get("approximate", "none")),
    "embedding": lambda xs, a: F.embedding(xs[0], xs[1]),
    "cat": lambda xs, a: torch.cat(xs, a["dim"]),
    "permute": lambda xs, a: xs[0].permute(*a["dims"]),
    "maskedFill": lambda xs, a: masked_fill(xs[0], xs[1], a),
    "maskedFillSoftmax": lambda xs, a: torch.softmax(masked_fill(xs[0], xs[1], a), a["dim"]),
    "layerNorm": lambda xs, a: layer_norm(xs, a),
}

# ---- encoding ----


def encode(value):
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 2**53:
        return int(value)
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def decode(value):
    if isinstance(value, str):
        return {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}[value]
    return value


def encode_tensor(t):
    return [encode(v) for v in t.detach().reshape(-1).tolist()]


def to_torch(spec):
    values = spec["values"]
    if spec["dtype"] == "int32":
        return torch.tensor(values, dtype=torch.long).reshape(spec["shape"])
    if spec["dtype"] == "bool":
        return torch.tensor(values, dtype=torch.bool).reshape(spec["shape"])
    data = torch.tensor([decode(v) for v in values], dtype=torch.float64).reshape(spec["shape"])
    return data.requires_grad_(spec["requiresGrad"])


def case(name, op, inputs, args=None, data=None):
    """Runs one case in torch and returns its fixture entry. Inputs hold tensors as `values`."""
    args = args or {}
    specs = []
    for spec in inputs:
        values = spec["values"]
        specs.append({**spec, "shape": list(values.shape), "values": encode_tensor(values.to(torch.float64)) if spec["dtype"] == "float" else values.reshape(-1).tolist()})
    leaves = [to_torch(spec) for spec in specs]
    operands = [apply_view(leaf, spec["view"]) for leaf, spec in zip(leaves, specs)]
    out = OPS[op](operands, args)

    entry = {"name": name, "op": op, "args": args, "inputs": specs}
    floating = out.dtype.is_floating_point
    entry["output"] = {"shape": list(out.shape), "dtype": "float" if floating else "int32", "values": encode_tensor(out.to(torch.float64))}
    if not floating or not out.requires_grad:
        entry["weight"] = None
        entry["grads"] = [None for _ in leaves]
        return entry

    weight = (data or Data(0)).weight(tuple(out.shape))
    (out * weight).sum().backward()
    entry["weight"] = encode_tensor(weight)
    entry["grads"] = [encode_tensor(leaf.grad) if leaf.requires_grad else None for leaf in leaves]
    return entry


def format_shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


# ---- groups ----


def core_binary(d):
    cases = []
    shape_pairs = [((4, 1), (1, 5)), ((2, 3, 5), (5,))]
    for op in ["add", "sub", "mul", "div", "maximum", "minimum"]:
        for sa, sb in shape_pairs:
            b = d.away_from_zero(sb) if op == "div" else d.normal(sb)
            cases.append(case(f"{op}: broadcast {format_shape(sa)} and {format_shape(sb)}", op, [floats(d.normal(sa)), floats(b)], data=d))
    for sa, sb in shape_pairs:
        base = d.uniform(sa, 0.5, 2.5)
        cases.append(case(f"pow: broadcast {format_shape(sa)} and {format_shape(sb)}", "pow", [floats(base), floats(d.uniform(sb, -2, 2))], data=d))
    cases.append(case("pow: negative base, integer exponent", "pow", [floats(d.normal((3, 4)))], {"exponent": 3}, data=d))
    cases.append(case("pow: fractional exponent", "pow", [floats(d.uniform((7,), 0.5, 3))], {"exponent": 1.5}, data=d))
    for op in ["maximum", "minimum"]:
        cases.append(case(f"{op}: ties split the gradient", op, [floats(d.coarse((4, 1))), floats(d.coarse((1, 5)))], data=d))
    cases.append(case("sub: transposed operand", "sub", [floats(d.normal((5, 3)), view=[["t"]]), floats(d.normal((3, 5)))], data=d))
    return cases


def core_matmul(d):
    pairs = [
        ("matrix", (3, 4), (4, 5), [], []),
        ("vector on the left", (4,), (4, 3), [], []),
        ("vector on the right", (2, 3, 4), (4,), [], []),
        ("dot product", (6,), (6,), [], []),
        ("vector times a batch", (4,), (2, 4, 3), [], []),
        ("a.t() on the left", (4, 3), (4, 5), [["t"]], []),
        ("b.t() on the right", (3, 4), (5, 4), [], [["t"]]),
        ("both transposed", (5, 3), (4, 5), [["t"]], [["t"]]),
        ("batched transpose(-1, -2)", (2, 5, 3), (2, 5, 4), [["transpose", -1, -2]], []),
        ("broadcast batch [2, 1, 3, 4] and [3, 4, 2]", (2, 1, 3, 4), (3, 4, 2), [], []),
        ("broadcast batch with transposed right", (2, 1, 3, 4), (3, 2, 4), [], [["transpose", -1, -2]]),
        ("odd sizes beyond one tile", (34, 5), (5, 33), [], []),
    ]
    return [case(f"matmul: {label}", "matmul", [floats(d.normal(sa), view=va), floats(d.normal(sb), view=vb)], data=d) for label, sa, sb, va, vb in pairs]


def core_reductions(d):
    x = lambda: floats(d.normal((3, 4, 5)))
    cases = [
        case("sum: dim 1 keepdim", "sum", [x()], {"dim": 1, "keepdim": True}, d),
        case("sum: dims [0, 2]", "sum", [x()], {"dim": [0, 2]}, d),
        case("sum: all", "sum", [x()], {}, d),
        case("sum: long rows keepdim", "sum", [floats(d.normal((3, 300)))], {"dim": -1, "keepdim": True}, d),
        case("mean: dim -1 keepdim", "mean", [x()], {"dim": -1, "keepdim": True}, d),
        case("mean: dims [0, 1]", "mean", [x()], {"dim": [0, 1]}, d),
        case("amax: dim 1 keepdim", "amax", [x()], {"dim": 1, "keepdim": True}, d),
        case("amax: ties share the gradient", "amax", [floats(d.coarse((4, 6)))], {"dim": -1}, d),
        case("amax: long rows keepdim", "amax", [floats(d.normal((2, 300)))], {"dim": 1, "keepdim": True}, d),
        case("amin: dim 0 keepdim", "amin", [x()], {"dim": 0, "keepdim": True}, d),
        case("amin: all with ties", "amin", [floats(d.coarse((3, 5)))], {}, d),
        case("var: unbiased dim 1 keepdim", "var", [x()], {"dim": 1, "unbiased": True, "keepdim": True}, d),
        case("var: biased dims [0, 2]", "var", [x()], {"dim": [0, 2], "unbiased": False}, d),
        case("var: unbiased with a large offset", "var", [floats(d.normal((4, 8)) + 1000)], {"dim": -1}, d),
        case("var: one element per row gives NaN", "var", [floats(d.normal((3, 1)))], {"dim": 1}, d),
        case("argmax: dim 1 keepdim", "argmax", [floats(d.normal((3, 4, 5)), grad=False)], {"dim": 1, "keepdim": True}, d),
        case("argmax: ties pick the first", "argmax", [floats(d.coarse((5, 6), levels=3), grad=False)], {"dim": -1}, d),
        case("argmax: flat", "argmax", [floats(d.normal((4, 7)), grad=False)], {}, d),
        case("argmax: long rows", "argmax", [floats(d.normal((2, 300)), grad=False)], {"dim": 1}, d),
        case("argmin: dim 0", "argmin", [floats(d.normal((5, 3)), grad=False)], {"dim": 0}, d),
    ]
    return cases


def core_softmax(d):
    rows = torch.tensor([
        [1000.0, -1000.0, 0.5, 999.0, -0.25],
        [1e4, 1e4 - 1, 1e4 - 2.5, -1e4, 0.0],
        [-1e3, -1e3 + 0.5, -1e3 + 1, -1e3 - 3, -1e3],
        [1e4, -1e4, 1e4 - 0.125, 3.0, -1e4],
    ], dtype=torch.float64)
    cases = []
    for op in ["softmax", "logSoftmax"]:
        cases.append(case(f"{op}: large magnitudes, last dim", op, [floats(rows)], {"dim": -1}, d))
        cases.append(case(f"{op}: magnitudes near 1e3, middle dim", op, [floats(d.normal((2, 4, 3), scale=1e3))], {"dim": 1}, d))
        cases.append(case(f"{op}: magnitudes near 1e4, middle dim", op, [floats(d.normal((2, 5, 3), scale=1e4))], {"dim": -2}, d))
        cases.append(case(f"{op}: huge spread, first dim", op, [floats(rows.t().contiguous())], {"dim": 0}, d))
        cases.append(case(f"{op}: rows wider than a workgroup", op, [floats(d.normal((2, 300), scale=20))], {"dim": -1}, d))
    return cases


def core_cross_entropy(d):
    logits = lambda: floats(d.normal((6, 5), scale=2))
    target = torch.tensor([1, -100, 4, 0, -100, 2])
    cases = []
    for reduction in ["mean", "sum", "none"]:
        cases.append(case(f"crossEntropy: ignoreIndex -100, {reduction}", "crossEntropy", [logits(), ints(target)], {"reduction": reduction}, d))
        cases.append(case(f"crossEntropy: label smoothing 0.1 with ignored targets, {reduction}", "crossEntropy",
                          [logits(), ints(target)], {"reduction": reduction, "labelSmoothing": 0.1}, d))
    cases.append(case("crossEntropy: ignoreIndex 2 is a class number", "crossEntropy",
                      [logits(), ints(torch.tensor([2, 1, 2, 0, 4, 3]))], {"ignoreIndex": 2}, d))
    cases.append(case("crossEntropy: spatial [N, C, d] with ignored targets", "crossEntropy",
                      [floats(d.normal((2, 4, 3))), ints(torch.tensor([[0, -100, 3], [2, 1, -100]]))], {}, d))
    cases.append(case("crossEntropy: one sample of shape [C]", "crossEntropy", [floats(d.normal((7,))), ints(torch.tensor(3))], {}, d))
    cases.append(case("crossEntropy: every target ignored gives NaN and zero gradients", "crossEntropy",
                      [logits(), ints(torch.tensor([-100] * 6))], {}, d))
    cases.append(case("crossEntropy: large logits", "crossEntropy",
                      [floats(d.normal((4, 6), scale=1e3)), ints(torch.tensor([5, 0, -100, 2]))], {"labelSmoothing": 0.2}, d))
    return cases


def core_nn(d):
    values = torch.cat([torch.linspace(-6, 6, 25), d.normal((20,))]).reshape(5, 9)
    values = torch.round(values * 256) / 256
    cases = [
        case("gelu: exact", "gelu", [floats(values)], {"approximate": "none"}, d),
        case("gelu: tanh approximation", "gelu", [floats(values)], {"approximate": "tanh"}, d),
        case("embedding: repeated indices accumulate", "embedding", [ints(torch.tensor([[0, 2, 2], [5, 2, 0]])), floats(d.normal((6, 4)))], {}, d),
        case("embedding: one index many times", "embedding", [ints(torch.tensor([3, 3, 3, 1])), floats(d.normal((5, 3)))], {}, d),
    ]
    return cases


def core_shape(d):
    return [
        case("cat: dim 0", "cat", [floats(d.normal((2, 3))), floats(d.normal((4, 3)))], {"dim": 0}, d),
        case("cat: last dim with a transposed input", "cat", [floats(d.normal((3, 2))), floats(d.normal((2, 3)), view=[["t"]])], {"dim": -1}, d),
        case("cat: middle dim, one input without grad", "cat",
             [floats(d.normal((2, 1, 3))), floats(d.normal((2, 2, 3)), grad=False), floats(d.normal((2, 3, 3)))], {"dim": 1}, d),
        case("permute: three dims", "permute", [floats(d.normal((2, 3, 4)))], {"dims": [2, 0, 1]}, d),
        case("permute: of a permuted view", "permute", [floats(d.normal((2, 3, 4)), view=[["permute", [1, 2, 0]]])], {"dims": [0, 2, 1]}, d),
    ]


def core_masking(d):
    causal = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    causal5 = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    return [
        case("maskedFill: causal -inf then softmax", "maskedFillSoftmax", [floats(d.normal((4, 4))), bools(causal)], {"value": "-inf", "dim": -1}, d),
        case("maskedFill: batched causal mask at large magnitudes, then softmax", "maskedFillSoftmax",
             [floats(d.normal((2, 5, 5), scale=1e3)), bools(causal5)], {"value": "-inf", "dim": -1}, d),
        case("maskedFill: a fully masked row gives NaN after softmax", "maskedFillSoftmax",
             [floats(d.normal((2, 3))), bools(torch.tensor([[False, True, True], [True, True, True]]))], {"value": "-inf", "dim": -1}, d),
        case("maskedFill: -inf in the output", "maskedFill", [floats(d.normal((3, 4))), bools(causal[:3])], {"value": "-inf"}, d),
        case("maskedFill: broadcast row mask", "maskedFill", [floats(d.normal((3, 6))), bools(torch.tensor([[True, False, False, True, False, True]]))], {"value": 2.5}, d),
    ]


def core_strided_reductions(d):
    """Reductions over a strided dim, long enough for one workgroup per output row on WebGPU."""
    return [
        case("sum: long column, dim 0", "sum", [floats(d.normal((300, 3)))], {"dim": 0}, d),
        case("mean: long rows of a transpose", "mean", [floats(d.normal((130, 4)), view=[["t"]])], {"dim": 1, "keepdim": True}, d),
        case("amax: dims [0, 2] of a permuted view", "amax", [floats(d.normal((3, 70, 2)), view=[["permute", [1, 0, 2]]])], {"dim": [0, 2]}, d),
        case("var: long rows of a transpose", "var", [floats(d.normal((100, 3)) * 3 + 50, view=[["t"]])], {"dim": -1, "unbiased": True}, d),
    ]


def group_core():
    d = Data(1234)
    cases = core_binary(d) + core_matmul(d) + core_reductions(d) + core_softmax(d) + core_cross_entropy(d) + core_nn(d) + core_shape(d) + core_masking(d)
    # A separate seed, so that adding cases here leaves the numbers of the cases above unchanged.
    return cases + core_strided_reductions(Data(99))


def layer_norm_case(d, label, x, normalized_shape, weight=True, bias=True, eps=1e-5, view=None):
    """One layerNorm case: x plus a random weight (k/16) and bias (normal) where requested."""
    shape = tuple(normalized_shape)
    inputs = [floats(x, view=view)]
    if weight:
        inputs.append(floats(d.weight(shape)))
    if bias:
        inputs.append(floats(d.normal(shape)))
    args = {"normalizedShape": list(shape), "eps": eps, "weight": weight, "bias": bias}
    return case(f"layerNorm: {label}", "layerNorm", inputs, args, d)


def group_layernorm():
    """LayerNorm cases by category; very wide rows and more than 65535 rows are checked against the CPU backend."""
    d = Data(4321)
    constant_rows = torch.tensor([[0.1] * 8, [-3.0] * 8, [1e4 + 0.5] * 8], dtype=torch.float64)
    constant_rows = torch.round(constant_rows * 256) / 256
    return [
        layer_norm_case(d, "width 1 gives the bias", d.normal((5, 1)), [1]),
        layer_norm_case(d, "width 2", d.normal((4, 2)), [2]),
        layer_norm_case(d, "width 3", d.normal((6, 3)), [3]),
        layer_norm_case(d, "width 7", d.normal((3, 7)), [7]),
        layer_norm_case(d, "width 16, vec4 rows", d.normal((5, 16)), [16]),
        layer_norm_case(d, "width 100", d.normal((3, 100), scale=2), [100]),
        layer_norm_case(d, "width 257, wider than a workgroup", d.normal((2, 257)), [257]),
        layer_norm_case(d, "width 130, not a multiple of 4", d.normal((2, 130)), [130]),
        layer_norm_case(d, "300 narrow rows", d.normal((300, 3)), [3]),
        layer_norm_case(d, "two trailing dims", d.normal((2, 3, 4, 5)), [4, 5]),
        layer_norm_case(d, "three trailing dims", d.normal((2, 3, 4, 5)), [3, 4, 5]),
        layer_norm_case(d, "weight without bias", d.normal((4, 12)), [12], bias=False),
        layer_norm_case(d, "bias without weight", d.normal((4, 9)), [9], weight=False),
        layer_norm_case(d, "no affine", d.normal((3, 24)), [24], weight=False, bias=False),
        layer_norm_case(d, "values near 1e4 with unit spread", d.normal((4, 64)) + 1e4, [64]),
        layer_norm_case(d, "values near -1e4 with small spread, odd width", d.normal((3, 37), scale=0.25) - 1e4, [37]),
        layer_norm_case(d, "constant rows with eps 1e-12", constant_rows, [8], eps=1e-12),
        layer_norm_case(d, "constant rows, no affine", constant_rows[:, :5], [5], weight=False, bias=False),
        layer_norm_case(d, "batch 1, sequence 13", d.normal((1, 13, 24)), [24]),
        layer_norm_case(d, "batch 1, sequence 1", d.normal((1, 1, 8)), [8]),
        layer_norm_case(d, "eps 0.1", d.normal((3, 10), scale=0.5), [10], eps=0.1),
        layer_norm_case(d, "transposed input", d.normal((6, 4)), [6], view=[["t"]]),
    ]


GROUPS = {
    "core": group_core,
    "layernorm": group_layernorm,
    "optim": group_optim,
    "safetensors": group_safetensors,
    "nn": group_nn,
}


def write_group(name, cases):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, f"{name}.json")
    header = {"group": name, "generator": "scripts/make-fixtures.py", "torch": torch.__version__, "significantDigits": SIGNIFICANT_DIGITS}
    lines = [json.dumps(c, separators=(",", ":"), allow_nan=False) for c in cases]
    body = json.dumps(header, separators=(",", ":"))[:-1] + ',"cases":[\n' + ",\n".join(lines) + "\n]}\n"
    with open(path, "w") as f:
        f.write(body)
    print(f"{os.path.relpath(path, ROOT)}: {len(cases)} cases, {len(body) // 1024} KiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("groups", nargs="*", help=f"groups to write (default: all of {', '.join(GROUPS)})")
    options = parser.parse_args()
    unknown = [g for g in options.groups if g not in GROUPS]
    if unknown:
        sys.exit(f"make-fixtures: unknown group {', '.join(unknown)}; known groups: {', '.join(GROUPS)}")
    torch.set_grad_enabled(True)
    for name in options.groups or GROUPS:
        write_group(name, GROUPS[name]())


if __name__ == "__main__":
    main()
