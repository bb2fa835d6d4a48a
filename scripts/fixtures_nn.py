"""The nn fixture group of scripts/make-fixtures.py: torch.nn layers with given weights, inputs and states.

    /usr/bin/python3.11 scripts/make-fixtures.py nn

Each case builds a torch 1.13 module in float64, loads weights that are multiples of 2^-8 (so float32
stores them exactly), runs it and backpropagates loss = sum over outputs k of sum(out_k * w_k). A case
records:

    name       what the case checks, used as the test name
    module     the fusegrad class (Linear, Embedding, MultiheadAttention, TransformerBlock, RNN, LSTM, GRU)
    args       positional constructor arguments
    options    constructor options in fusegrad's camelCase names
    call       forward options (MultiheadAttention: isCausal, needWeights, averageAttnWeights)
    stateDict  {torch name: {shape, values}}: test/nn.test.ts maps the names to camelCase and loads them
               with loadStateDict, so the mapping itself is under test
    inputs     [{name, shape, dtype, values, requiresGrad}] in forward order; dtype 'float' means the
               dtype under test. Names: input, query, key, value, attnMask, keyPaddingMask, h0, c0.
    outputs    [{name, shape, values, weight}] in the order the test flattens fusegrad's return value
    grads      {inputs: {name: values}, params: {torch name: values}}

The layer-normalized LSTM and GRU have no torch class; ln_lstm and ln_gru below compute the formulas in
the docstrings of src/nn/rnn.ts with torch ops, under the parameter names that map to fusegrad's.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SIGNIFICANT_DIGITS = 10


class Data:
    """Seeded values on a grid of 2^-8, exact in float32."""

    def __init__(self, seed):
        self.generator = torch.Generator().manual_seed(seed)

    def normal(self, shape, scale=1.0):
        values = torch.randn(shape, generator=self.generator, dtype=torch.float64) * scale
        return torch.round(values * 256) / 256

    def weight(self, shape):
        """Non-zero multiples of 1/16 in [-1.5, 1.5], the loss weighting of an output."""
        k = torch.randint(1, 25, shape, generator=self.generator)
        sign = torch.where(torch.rand(shape, generator=self.generator) < 0.5, -1, 1)
        return (k * sign).to(torch.float64) / 16


def encode(value):
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"fixture value {value} is not finite")
    if value == int(value) and abs(value) < 2**53:
        return int(value)
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def values_of(t):
    return [encode(v) for v in t.detach().reshape(-1).tolist()]


def fill_parameters(module, d, scale=0.5):
    """Overwrites every parameter with grid values, so that float32 runs start from the same numbers."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(d.normal(tuple(p.shape), scale))


def float_input(name, values, grad=True):
    return {"name": name, "dtype": "float", "tensor": values.clone().requires_grad_(grad)}


def int_input(name, values):
    return {"name": name, "dtype": "int32", "tensor": values}


def bool_input(name, values):
    return {"name": name, "dtype": "bool", "tensor": values}


def module_case(name, d, module, kind, args, options, inputs, run, call=None):
    """Runs `run(module, tensors)` (a list of (name, output)) and records the case."""
    tensors = {spec["name"]: spec["tensor"] for spec in inputs}
    outputs = run(module, tensors)
    loss = 0
    recorded = []
    for out_name, out in outputs:
        weight = d.weight(tuple(out.shape))
        loss = loss + (out * weight).sum()
        recorded.append({"name": out_name, "shape": list(out.shape), "values": values_of(out), "weight": values_of(weight)})
    module.zero_grad()
    loss.backward()
    state = {key: {"shape": list(value.shape), "values": values_of(value)} for key, value in module.state_dict().items()}
    params = {key: values_of(p.grad) for key, p in module.named_parameters()}
    input_specs = []
    input_grads = {}
    for spec in inputs:
        t = spec["tensor"]
        values = values_of(t) if spec["dtype"] == "float" else [v for v in t.reshape(-1).tolist()]
        requires_grad = spec["dtype"] == "float" and t.requires_grad
        input_specs.append({"name": spec["name"], "shape": list(t.shape), "dtype": spec["dtype"], "values": values, "requiresGrad": requires_grad})
        if requires_grad:
            input_grads[spec["name"]] = values_of(t.grad)
    return {
        "name": name, "module": kind, "args": args, "options": options, "call": call or {},
        "stateDict": state, "inputs": input_specs, "outputs": recorded,
        "grads": {"inputs": input_grads, "params": params},
    }


# ---- layers without a torch class ----


class LayerNormLSTM(nn.Module):
    """gates = LN(x W_ih^T) + LN(h W_hh^T) + b_ih + b_hh; c' = f c + i g; h' = o tanh(LN(c'))."""

    def __init__(self, input_size, hidden_size, num_layers=1, batch_first=False):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        for k in range(num_layers):
            inputs = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", nn.Parameter(torch.empty(4 * hidden_size, inputs, dtype=torch.float64)))
            setattr(self, f"weight_hh_l{k}", nn.Parameter(torch.empty(4 * hidden_size, hidden_size, dtype=torch.float64)))
            setattr(self, f"bias_ih_l{k}", nn.Parameter(torch.empty(4 * hidden_size, dtype=torch.float64)))
            setattr(self, f"bias_hh_l{k}", nn.Parameter(torch.empty(4 * hidden_size, dtype=torch.float64)))
            setattr(self, f"ln_weight_ih_l{k}", nn.Parameter(torch.empty(4 * hidden_size, dtype=torch.float64)))
            setattr(self, f"ln_weight_hh_l{k}", nn.Parameter(torch.empty(4 * hidden_size, dtype=torch.float64)))
            setattr(self, f"ln_weight_c_l{k}", nn.Parameter(torch.empty(hidden_size, dtype=torch.float64)))
            setattr(self, f"ln_bias_c_l{k}", nn.Parameter(torch.empty(hidden_size, dtype=torch.float64)))

    def forward(self, x, state=None):
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch, _ = x.shape
        H = self.hidden_size
        hs, cs = [], []
        for k in range(self.num_layers):
            p = lambda name: getattr(self, f"{name}_l{k}")
            h = state[0][k] if state else torch.zeros(batch, H, dtype=x.dtype)
            c = state[1][k] if state else torch.zeros(batch, H, dtype=x.dtype)
            projected = F.layer_norm(x @ p("weight_ih").t(), (4 * H,), p("ln_weight_ih")) + p("bias_ih") + p("bias_hh")
            outputs = []
            for t in range(steps):
                gates = projected[t] + F.layer_norm(h @ p("weight_hh").t(), (4 * H,), p("ln_weight_hh"))
                i, f, g, o = gates.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, (H,), p("ln_weight_c"), p("ln_bias_c")))
                outputs.append(h)
            x = torch.stack(outputs)
            hs.append(h)
            cs.append(c)
        out = x.transpose(0, 1) if self.batch_first else x
        return out, (torch.stack(hs), torch.stack(cs))


class LayerNormGRU(nn.Module):
    """a = LN(x W_ih^T) + b_ih, b = LN(h W_hh^T) + b_hh; r, z = sigmoid(a + b); n = tanh(a_n + r b_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, batch_first=False):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        for k in range(num_layers):
            inputs = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", nn.Parameter(torch.empty(3 * hidden_size, inputs, dtype=torch.float64)))
            setattr(self, f"weight_hh_l{k}", nn.Parameter(torch.empty(3 * hidden_size, hidden_size, dtype=torch.float64)))
            setattr(self, f"bias_ih_l{k}", nn.Parameter(torch.empty(3 * hidden_size, dtype=torch.float64)))
            setattr(self, f"bias_hh_l{k}", nn.Parameter(torch.empty(3 * hidden_size, dtype=torch.float64)))
            setattr(self, f"ln_weight_ih_l{k}", nn.Parameter(torch.empty(3 * hidden_size, dtype=torch.float64)))
            setattr(self, f"ln_weight_hh_l{k}", nn.Parameter(torch.empty(3 * hidden_size, dtype=torch.float64)))

    def forward(self, x, h0=None):
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch, _ = x.shape
        H = self.hidden_size
        finals = []
        for k in range(self.num_layers):
            p = lambda name: getattr(self, f"{name}_l{k}")
            h = h0[k] if h0 is not None else torch.zeros(batch, H, dtype=x.dtype)
            a_all = F.layer_norm(x @ p("weight_ih").t(), (3 * H,), p("ln_weight_ih")) + p("bias_ih")
            outputs = []
            for t in range(steps):
                a = a_all[t]
                b = F.layer_norm(h @ p("weight_hh").t(), (3 * H,), p("ln_weight_hh")) + p("bias_hh")
                r = torch.sigmoid(a[:, :H] + b[:, :H])
                z = torch.sigmoid(a[:, H:2 * H] + b[:, H:2 * H])
                n = torch.tanh(a[:, 2 * H:] + r * b[:, 2 * H:])
                h = (1 - z) * n + z * h
                outputs.append(h)
            x = torch.stack(outputs)
            finals.append(h)
        out = x.transpose(0, 1) if self.batch_first else x
        return out, torch.stack(finals)


class TransformerBlock(nn.Module):
    """Pre-LN block: x + attn(ln1(x)) with a causal mask, then + mlp(ln2(x)); fusegrad's field names."""

    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, dtype=torch.float64)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True, dtype=torch.float64)
        self.ln2 = nn.LayerNorm(dim, dtype=torch.float64)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim, dtype=torch.float64), nn.GELU(), nn.Linear(mlp_ratio * dim, dim, dtype=torch.float64))

    def forward(self, x):
        steps = x.shape[-2]
        causal = torch.triu(torch.ones(steps, steps, dtype=torch.bool), diagonal=1)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=causal, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


# ---- cases ----


def causal(L, S):
    return torch.triu(torch.ones(L, S, dtype=torch.bool), diagonal=1)


def recurrent_outputs(kind):
    def run(module, t):
        if kind == "LSTM":
            state = (t["h0"], t["c0"]) if "h0" in t else None
            out, (h, c) = module(t["input"], state)
            return [("output", out), ("hN", h), ("cN", c)]
        out, h = module(t["input"], t["h0"]) if "h0" in t else module(t["input"])
        return [("output", out), ("hN", h)]
    return run


def recurrent_case(d, name, kind, input_size, hidden, options, steps, batch, with_state, torch_module=None):
    """A recurrent layer on [steps, batch, input] (batch first if asked; batch None for one unbatched sequence)."""
    layers = options.get("numLayers", 1)
    batch_first = options.get("batchFirst", False)
    if torch_module is None:
        cls = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[kind]
        extra = {"nonlinearity": options["nonlinearity"]} if "nonlinearity" in options else {}
        torch_module = cls(input_size, hidden, num_layers=layers, bias=options.get("bias", True), batch_first=batch_first, dtype=torch.float64, **extra)
    fill_parameters(torch_module, d)
    if batch is None:
        shape = (steps, input_size)
        state_shape = (layers, hidden)
    else:
        shape = (batch, steps, input_size) if batch_first else (steps, batch, input_size)
        state_shape = (layers, batch, hidden)
    inputs = [float_input("input", d.normal(shape))]
    if with_state:
        inputs.append(float_input("h0", d.normal(state_shape, 0.5)))
        if kind == "LSTM":
            inputs.append(float_input("c0", d.normal(state_shape, 0.5)))
    return module_case(name, d, torch_module, kind, [input_size, hidden], options, inputs, recurrent_outputs(kind))


def linear_cases(d):
    def make(label, in_features, out_features, bias, shape):
        module = nn.Linear(in_features, out_features, bias=bias, dtype=torch.float64)
        fill_parameters(module, d)
        return module_case(f"Linear: {label}", d, module, "Linear", [in_features, out_features], {"bias": bias},
                           [float_input("input", d.normal(shape))], lambda m, t: [("output", m(t["input"]))])
    return [
        make("3-D input", 5, 4, True, (2, 3, 5)),
        make("2-D input without bias", 6, 3, False, (4, 6)),
        make("1-D input", 3, 2, True, (3,)),
    ]


def embedding_cases(d):
    def make(label, num, dim, padding_idx, indices):
        module = nn.Embedding(num, dim, padding_idx=padding_idx, dtype=torch.float64)
        fill_parameters(module, d, 1.0)  # a non-zero padding row: its value is returned, its gradient stays zero
        options = {} if padding_idx is None else {"paddingIdx": padding_idx}
        return module_case(f"Embedding: {label}", d, module, "Embedding", [num, dim], options,
                           [int_input("input", indices)], lambda m, t: [("output", m(t["input"]))])
    return [
        make("repeated indices", 6, 3, None, torch.tensor([[0, 2, 2], [5, 2, 0]])),
        make("paddingIdx 1", 7, 4, 1, torch.tensor([[1, 3, 1, 0], [6, 1, 3, 2]])),
        make("negative paddingIdx", 5, 2, -1, torch.tensor([4, 0, 4, 2])),
    ]


def attention_cases(d):
    cases = []

    def make(label, E, heads, options, inputs, call, forward):
        module = nn.MultiheadAttention(E, heads, batch_first=options.get("batchFirst", False), bias=options.get("bias", True), dtype=torch.float64)
        fill_parameters(module, d)
        return module_case(f"MultiheadAttention: {label}", d, module, "MultiheadAttention", [E, heads], options, inputs, forward, call)

    def weights_out(out):
        return [("output", out[0]), ("weights", out[1])]

    # Self-attention on one tensor: fusegrad takes the one-matmul path when query, key and value are one tensor.
    cases.append(make(
        "causal self-attention, seq first", 8, 2, {},
        [float_input("input", d.normal((4, 2, 8)))], {"isCausal": True},
        lambda m, t: weights_out(m(t["input"], t["input"], t["input"], attn_mask=causal(4, 4))),
    ))
    padding = torch.tensor([[False, False, True, False, True], [False, True, False, False, False]])
    cases.append(make(
        "key padding, shared key and value, batch first, weights per head", 6, 3, {"batchFirst": True},
        [float_input("query", d.normal((2, 3, 6))), float_input("key", d.normal((2, 5, 6))), bool_input("keyPaddingMask", padding)],
        {"averageAttnWeights": False},
        lambda m, t: weights_out(m(t["query"], t["key"], t["key"], key_padding_mask=t["keyPaddingMask"], average_attn_weights=False)),
    ))
    cases.append(make(
        "causal mask and key padding, separate inputs, no bias", 4, 2, {"batchFirst": True, "bias": False},
        [float_input("query", d.normal((2, 4, 4))), float_input("key", d.normal((2, 4, 4))), float_input("value", d.normal((2, 4, 4))),
         bool_input("keyPaddingMask", torch.tensor([[False, False, False, True], [False, False, False, False]]))],
        {"isCausal": True},
        lambda m, t: weights_out(m(t["query"], t["key"], t["value"], attn_mask=causal(4, 4), key_padding_mask=t["keyPaddingMask"])),
    ))
    cases.append(make(
        "float attnMask per head, unbatched", 4, 2, {},
        [float_input("query", d.normal((3, 4))), float_input("key", d.normal((5, 4))), float_input("value", d.normal((5, 4))),
         float_input("attnMask", d.normal((2, 3, 5)), grad=False)],
        {},
        lambda m, t: weights_out(m(t["query"], t["key"], t["value"], attn_mask=t["attnMask"])),
    ))
    return cases


def transformer_cases(d):
    module = TransformerBlock(8, 2)
    fill_parameters(module, d)
    with torch.no_grad():
        module.ln1.weight.add_(1)
        module.ln2.weight.add_(1)
    return [module_case("TransformerBlock: causal, batch first", d, module, "TransformerBlock", [8, 2], {},
                        [float_input("input", d.normal((2, 5, 8)))], lambda m, t: [("output", m(t["input"]))])]


def recurrent_cases(d):
    return [
        recurrent_case(d, "RNN: tanh, 2 layers, initial state", "RNN", 3, 5, {"numLayers": 2}, 4, 2, True),
        recurrent_case(d, "RNN: relu, batch first, zero state", "RNN", 4, 3, {"nonlinearity": "relu", "batchFirst": True}, 5, 3, False),
        recurrent_case(d, "RNN: unbatched", "RNN", 2, 3, {}, 3, None, True),
        recurrent_case(d, "LSTM: 2 layers, batch first, initial state", "LSTM", 3, 4, {"numLayers": 2, "batchFirst": True}, 4, 2, True),
        recurrent_case(d, "LSTM: no bias, zero state", "LSTM", 5, 3, {"bias": False}, 3, 3, False),
        recurrent_case(d, "LSTM: unbatched, initial state", "LSTM", 2, 3, {}, 4, None, True),
        recurrent_case(d, "GRU: 2 layers, initial state", "GRU", 3, 4, {"numLayers": 2}, 4, 2, True),
        recurrent_case(d, "GRU: batch first, no bias, zero state", "GRU", 4, 3, {"batchFirst": True, "bias": False}, 3, 2, False),
        recurrent_case(d, "GRU: unbatched, 2 layers", "GRU", 3, 2, {"numLayers": 2}, 5, None, True),
        recurrent_case(d, "LSTM: layerNorm, 2 layers, batch first, initial state", "LSTM", 3, 4,
                       {"numLayers": 2, "batchFirst": True, "layerNorm": True}, 3, 2, True, LayerNormLSTM(3, 4, 2, True)),
        recurrent_case(d, "LSTM: layerNorm, zero state", "LSTM", 4, 3, {"layerNorm": True}, 4, 2, False, LayerNormLSTM(4, 3)),
        recurrent_case(d, "GRU: layerNorm, initial state", "GRU", 3, 4, {"layerNorm": True}, 4, 2, True, LayerNormGRU(3, 4)),
        recurrent_case(d, "GRU: layerNorm, 2 layers, batch first, zero state", "GRU", 2, 3,
                       {"numLayers": 2, "batchFirst": True, "layerNorm": True}, 3, 2, False, LayerNormGRU(2, 3, 2, True)),
    ]


def group_nn():
    d = Data(2024)
    return linear_cases(d) + embedding_cases(d) + attention_cases(d) + transformer_cases(d) + recurrent_cases(d)
