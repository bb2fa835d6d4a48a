"""The optim and safetensors fixture groups of scripts/make-fixtures.py, and a check of safetensors files.

    /usr/bin/python3.11 scripts/make-fixtures.py optim safetensors
    /usr/bin/python3.11 scripts/fixtures_optim.py check-safetensors FILE

optim: each case runs a torch.optim optimizer (torch 1.13) in float64 for a few steps on fixed
gradients and records the parameters after every step. A gradient of null means the parameter has no
gradient at that step, so the optimizer skips it.

safetensors: writes test/fixtures/python-written.safetensors with one tensor of each dtype, and a JSON
case listing the expected tensors. The Python `safetensors` package is not installed here (Debian
bookworm has no package for it and PyPI is unreachable), so the file is written byte by byte from the
format's specification: an 8-byte little-endian header length, a JSON header padded with spaces to a
multiple of 8 bytes ("__metadata__" first, then the tensors sorted by dtype (F64, F32, I32, F16, BOOL)
and by name, as the safetensors library writes them) and the raw little-endian data.

check-safetensors FILE: parses a file that fusegrad wrote (test/checkpoint.test.ts writes one to
$TMPDIR/fusegrad-written.safetensors), validates its header per the specification, loads every tensor
with torch.frombuffer and compares it with the expected tensors of test/fixtures/safetensors.json.
"""

import json
import math
import os
import struct
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures")
SIGNIFICANT_DIGITS = 12


def encode(value):
    if value == int(value) and abs(value) < 2**53:
        return int(value)
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def encode_tensor(t):
    return [encode(v) for v in t.detach().to(torch.float64).reshape(-1).tolist()]


def grid_normal(generator, shape, scale=1.0):
    """Normal values rounded to multiples of 2^-8, which float32 holds exactly."""
    values = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
    return torch.round(values * 256) / 256


# ---- optim ----

SHAPES = [(3, 4), (5,), (5, 53)]
STEPS = 4


def optim_case(name, optimizer, options, torch_options=None, missing=(), groups=None, seed=0):
    """Runs `optimizer` for STEPS steps; `missing` lists (step, param) pairs that get no gradient."""
    generator = torch.Generator().manual_seed(seed)
    initial = [grid_normal(generator, shape) for shape in SHAPES]
    grads = [[grid_normal(generator, shape, 0.5) for shape in SHAPES] for _ in range(STEPS)]
    params = [p.clone().requires_grad_(True) for p in initial]
    if groups is None:
        opt = getattr(torch.optim, optimizer)(params, **(torch_options or options))
    else:
        opt = getattr(torch.optim, optimizer)([{"params": [params[i] for i in g["params"]], **g["torch"]} for g in groups], **(torch_options or options))

    after = []
    for step in range(STEPS):
        for i, p in enumerate(params):
            p.grad = None if (step, i) in missing else grads[step][i].clone()
        opt.step()
        after.append([encode_tensor(p) for p in params])

    return {
        "name": name,
        "optimizer": optimizer,
        "options": options,
        "groups": None if groups is None else [{"params": g["params"], "options": g["options"]} for g in groups],
        "params": [{"shape": list(shape), "values": encode_tensor(p)} for shape, p in zip(SHAPES, initial)],
        "grads": [[None if (step, i) in missing else encode_tensor(g) for i, g in enumerate(grads[step])] for step in range(STEPS)],
        "expected": after,
    }


def group_optim():
    return [
        optim_case("SGD: plain", "SGD", {"lr": 0.1}),
        optim_case("SGD: momentum and dampening", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}, seed=1),
        optim_case("SGD: Nesterov with weight decay", "SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weightDecay": 0.01},
                   {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}, seed=2),
        optim_case("SGD: weight decay without momentum, a skipped gradient", "SGD", {"lr": 0.1, "weightDecay": 0.1}, {"lr": 0.1, "weight_decay": 0.1}, missing={(1, 0)}, seed=3),
        optim_case("SGD: maximize with momentum", "SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}, {"lr": 0.05, "momentum": 0.5, "maximize": True}, seed=4),
        optim_case("Adam: defaults with lr 0.01", "Adam", {"lr": 0.01}, seed=5),
        optim_case("Adam: L2 weight decay and AMSGrad", "Adam", {"lr": 0.02, "betas": [0.8, 0.99], "eps": 1e-6, "weightDecay": 0.1, "amsgrad": True},
                   {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True}, seed=6),
        optim_case("Adam: a parameter without gradient at step 2", "Adam", {"lr": 0.01}, missing={(1, 2), (2, 1)}, seed=7),
        optim_case("AdamW: default weight decay 0.01", "AdamW", {"lr": 0.01}, seed=8),
        optim_case("AdamW: strong decay and AMSGrad", "AdamW", {"lr": 0.05, "weightDecay": 0.5, "amsgrad": True}, {"lr": 0.05, "weight_decay": 0.5, "amsgrad": True}, seed=9),
        optim_case("Adam: two parameter groups", "Adam", {"lr": 0.01}, seed=10, groups=[
            {"params": [0, 2], "options": {}, "torch": {}},
            {"params": [1], "options": {"lr": 0.1, "betas": [0.5, 0.9]}, "torch": {"lr": 0.1, "betas": (0.5, 0.9)}},
        ]),
    ] + [scheduler_case()]


def scheduler_case():
    """The lr of torch's StepLR over 10 steps, as a case with no parameters."""
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.5)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(9):
        opt.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return {"name": "StepLR: step size 3, gamma 0.5", "optimizer": "StepLR", "options": {"lr": 0.5, "stepSize": 3, "gamma": 0.5}, "lrs": lrs}


# ---- safetensors ----

# (torch dtype, element size) of each safetensors code, in the order the safetensors library sorts
# tensors by (F64 first, BOOL last; equal codes by name).
DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "I32": (torch.int32, 4),
    "F16": (torch.float16, 2),
    "BOOL": (torch.bool, 1),
}

PYTHON_FILE = os.path.join(FIXTURES, "python-written.safetensors")


def safetensors_tensors():
    """The tensors of the round-trip fixture: every dtype, a 0-dim tensor and an empty one."""
    generator = torch.Generator().manual_seed(42)
    return {
        "layer.weight": ("F32", grid_normal(generator, (3, 4)).to(torch.float32)),
        "layer.bias": ("F64", torch.tensor([0.1, -2.5, 1e-300, 3.141592653589793, -0.0], dtype=torch.float64)),
        "tokens": ("I32", torch.tensor([[0, -1, 7], [2147483647, -2147483648, 42]], dtype=torch.int32)),
        "mask": ("BOOL", torch.tensor([True, False, False, True], dtype=torch.bool)),
        "half": ("F16", torch.tensor([[1.5, -0.25, 65504.0], [2.0**-14, 2.0**-24, -3.0]], dtype=torch.float16)),
        "scale": ("F32", torch.tensor(0.75, dtype=torch.float32)),
        "empty": ("F32", torch.zeros((0, 3), dtype=torch.float32)),
    }


def raw_bytes(t):
    """The tensor's data as little-endian bytes."""
    if t.dtype == torch.bool:
        return bytes(int(v) for v in t.reshape(-1).tolist())
    code = {torch.float64: "<d", torch.float32: "<f", torch.int32: "<i", torch.float16: "<e"}[t.dtype]
    return b"".join(struct.pack(code, v) for v in t.reshape(-1).tolist())


def write_safetensors(path, tensors, metadata):
    rank = list(DTYPES)
    order = sorted(tensors.items(), key=lambda item: (rank.index(item[1][0]), item[0]))
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name, (code, t) in order:
        data = raw_bytes(t)
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


def exact_values(t):
    """The values as Python numbers, whose JSON form (repr) converts back to the same float64."""
    return [v for v in t.to(torch.float64).reshape(-1).tolist()]


def group_safetensors():
    tensors = safetensors_tensors()
    metadata = {"format": "pt", "writer": "scripts/fixtures_optim.py"}
    os.makedirs(FIXTURES, exist_ok=True)
    write_safetensors(PYTHON_FILE, tensors, metadata)
    print(f"{os.path.relpath(PYTHON_FILE, ROOT)}: {os.path.getsize(PYTHON_FILE)} bytes")
    return [{
        "name": "python-written.safetensors",
        "metadata": metadata,
        "tensors": [{"name": name, "dtype": code, "shape": list(t.shape), "values": exact_values(t)} for name, (code, t) in tensors.items()],
    }]


def read_safetensors(path):
    """Parses and validates a safetensors file per the specification; returns (tensors, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: {len(data)} bytes, too short for the header length")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError(f"{path}: header length {length} exceeds the file")
    if length % 8 != 0:
        raise ValueError(f"{path}: header length {length} is not a multiple of 8")
    text = data[8:8 + length].decode("utf-8")
    if not text.startswith("{"):
        raise ValueError(f"{path}: the header does not start with '{{'")
    header = json.loads(text)
    buffer = data[8 + length:]
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError(f"{path}: __metadata__ must map strings to strings")
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"])
    covered = 0
    tensors = {}
    for name, entry in entries:
        dtype, size = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        if begin != covered:
            raise ValueError(f"{path}: tensor {name} starts at {begin}, expected {covered} (a gap or an overlap)")
        if end - begin != math.prod(entry["shape"]) * size:
            raise ValueError(f"{path}: tensor {name} spans {end - begin} bytes, which does not match its shape and dtype")
        if begin % size != 0:
            raise ValueError(f"{path}: tensor {name} is not aligned to its element size")
        covered = end
        chunk = bytearray(buffer[begin:end])
        if len(chunk) == 0:
            tensors[name] = torch.zeros(entry["shape"], dtype=dtype)
        else:
            tensors[name] = torch.frombuffer(chunk, dtype=dtype).reshape(entry["shape"])
    if covered != len(buffer):
        raise ValueError(f"{path}: the tensors cover {covered} of {len(buffer)} data bytes")
    return tensors, metadata


def check_safetensors(path):
    with open(os.path.join(FIXTURES, "safetensors.json")) as f:
        expected = json.load(f)["cases"][0]["tensors"]
    tensors, metadata = read_safetensors(path)
    missing = {e["name"] for e in expected} - set(tensors)
    if missing:
        sys.exit(f"check-safetensors: {path} lacks tensors {sorted(missing)}")
    for e in expected:
        t = tensors[e["name"]]
        want_dtype = DTYPES[e["dtype"]][0]
        if t.dtype != want_dtype or list(t.shape) != e["shape"]:
            sys.exit(f"check-safetensors: {e['name']} is {t.dtype} {list(t.shape)}, expected {want_dtype} {e['shape']}")
        want = torch.tensor(e["values"], dtype=torch.float64).reshape(e["shape"])
        if not torch.equal(t.to(torch.float64), want):
            sys.exit(f"check-safetensors: the values of {e['name']} differ: {t.tolist()} != {want.tolist()}")
    print(f"check-safetensors: {path}: {len(tensors)} tensors match test/fixtures/safetensors.json; metadata {metadata}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "check-safetensors":
        sys.exit("usage: /usr/bin/python3.11 scripts/fixtures_optim.py check-safetensors FILE")
    check_safetensors(sys.argv[2])
