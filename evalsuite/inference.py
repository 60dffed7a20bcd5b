"""Faster inference graphs for feature networks, kept only where they agree with the network as written.

An eager module is traced with torch.fx, each Conv→BatchNorm pair folded into one convolution, each 1×1 convolution
that reads only a stride-1 average pool moved in front of it where that is exact (fewer channels pooled:
InceptionV3's TF-ported pool branches), and its weights put in channels_last (image networks); on a CPU with oneDNN
each 2-d convolution (and the ReLU after it) then runs as one oneDNN call on weights reordered once to oneDNN's
blocked layout (~6% faster for InceptionV3 here); a TorchScript module (or one that wraps TorchScript) is scripted
and frozen, which folds the same pairs, and its frozen graph is rebuilt node for node as an eager torch.fx module
(`evalsuite.jit_graph`) that then takes the eager path above (where the graph has control flow or an op the rebuild
does not translate, the frozen TorchScript runs). The first images of every input shape run through both graphs: if
the largest feature deviation, relative to the largest exact feature, exceeds `TOLERANCE` (or NaNs move, or anything
raises), the original network is used from then on.
What was applied and the measured deviation go into every result's provenance.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable, cast

import torch
from torch import nn

PROBE = 8  # images of the first batch of each shape that also run through the original network
TOLERANCE = 1e-4  # folded BatchNorm and channels_last change features at ~1e-6 relative (float32 reordering)


def _has_script(module: nn.Module) -> bool:
    return any(isinstance(m, torch.jit.ScriptModule) for m in module.modules())


class OneDNNConv(nn.Module):
    """A folded Conv2d, and the ReLU after it when `relu`, as one oneDNN call on CPU float32 inputs, with the weight
    reordered once (on the first call) to oneDNN's blocked layout; the plain convolution anywhere else (GPU,
    autocast, other dtypes, autograd), so the module is always safe to call."""

    def __init__(self, conv: nn.Conv2d, relu: bool):
        super().__init__()
        self.conv, self.relu = conv, relu
        self._geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        self._packed: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4 or _cpu_autocast()
                or (torch.is_grad_enabled() and (x.requires_grad or self.conv.weight.requires_grad))):
            y = self.conv(x)
            return torch.relu(y) if self.relu else y
        if self._packed is None:  # the reorder needs an input size; the packed weight then serves every batch size
            self._packed = torch.ops.mkldnn._reorder_convolution_weight(self.conv.weight.detach(), *self._geometry,
                                                                        list(x.shape))
        bias = None if self.conv.bias is None else self.conv.bias.detach()
        return torch.ops.mkldnn._convolution_pointwise(x, self._packed, bias, *self._geometry,
                                                        "relu" if self.relu else "none", [], "")


try:  # decided once here, not on every convolution
    torch.is_autocast_enabled("cpu")
    _cpu_autocast: Callable[[], bool] = functools.partial(torch.is_autocast_enabled, "cpu")
except TypeError:  # torch < 2.4 has no device argument
    _cpu_autocast = torch.is_autocast_cpu_enabled


def _onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise") and \
        hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")


def _on_cpu(module: nn.Module) -> bool:
    """The oneDNN calls serve a network whose weights live on the CPU; on a GPU each one would only fall back."""
    return all(t.device.type == "cpu" for t in (*module.parameters(), *module.buffers()))


def _is_relu(node: torch.fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_function":
        return node.target in (torch.relu, torch.relu_, torch.nn.functional.relu)
    if node.op == "call_method":
        return node.target in ("relu", "relu_")
    return node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.ReLU)


def _onednn_convs(gm: torch.fx.GraphModule) -> int:
    """Replace each plain 2-d convolution of a traced graph (zero padding given as numbers) by `OneDNNConv`, taking
    in the ReLU that is its only user; returns how many were replaced."""
    modules = dict(gm.named_modules())
    replaced = 0
    for node in list(gm.graph.nodes):
        conv = modules.get(str(node.target)) if node.op == "call_module" else None
        if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            continue
        user = next(iter(node.users)) if len(node.users) == 1 else None
        relu = user if user is not None and _is_relu(user, modules) else None  # the ReLU folded in, if any
        name = f"onednn_{replaced}"
        gm.add_submodule(name, OneDNNConv(conv, relu is not None))
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(name, node.args)
        (node if relu is None else relu).replace_all_uses_with(new)
        if relu is not None:
            gm.graph.erase_node(relu)
        gm.graph.erase_node(node)
        replaced += 1
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return replaced


_AVG_POOLS = (torch.ops.aten.avg_pool2d, torch.ops.aten.avg_pool2d.default, torch.nn.functional.avg_pool2d)
_AVG_POOL_ARGS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_AVG_POOL_DEFAULTS = {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
                      "divisor_override": None}


def _pair(v: object) -> tuple:
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def _avg_pool_call(node: torch.fx.Node, modules: dict[str, nn.Module]) -> tuple[torch.fx.Node, dict] | None:
    """(input node, arguments by name) of a 2-d average pool node (ATen op, functional or nn.AvgPool2d), else
    None."""
    if node.op == "call_module" and type(modules.get(str(node.target))) is nn.AvgPool2d and len(node.args) == 1:
        pool = cast(nn.AvgPool2d, modules[str(node.target)])
        return cast(torch.fx.Node, node.args[0]), {a: getattr(pool, a) for a in _AVG_POOL_ARGS}
    if node.op != "call_function" or node.target not in _AVG_POOLS or not node.args:
        return None
    given = dict(zip(("input", *_AVG_POOL_ARGS), node.args), **node.kwargs)
    if set(given) - {"input", *_AVG_POOL_ARGS} or "kernel_size" not in given:
        return None
    values = {**_AVG_POOL_DEFAULTS, **{k: v for k, v in given.items() if k != "input"}}
    if values["stride"] in (None, []):  # PyTorch: stride defaults to the kernel
        values["stride"] = values["kernel_size"]
    return cast(torch.fx.Node, given["input"]), values


def _pool_weights_sum_to_one(args: dict) -> bool:
    """Every output of the pool is a plain mean of the pixels it covers (weights summing to 1), so that a bias added
    before pooling passes through it unchanged: the padding is excluded from the count (or there is none)."""
    return args["divisor_override"] is None and (args["count_include_pad"] is False or _pair(args["padding"]) == (0, 0))


def _conv_before_avg_pool(gm: torch.fx.GraphModule) -> int:
    """Move each 1×1 convolution that reads only a stride-1 average pool in front of that pool, when it has fewer
    output than input channels; returns how many moved.

    A 1×1 convolution is a per-pixel affine map and such a pool a per-channel mean whose weights sum to 1, so
    conv(pool(x)) = pool(conv(x)) exactly in real arithmetic, bias included; the pool (the same pixels, stride 1)
    then averages the convolution's fewer channels instead of its many (InceptionV3's TF-ported pool branches:
    192–2048 channels pooled before, 32–192 after), at the same convolution cost. Float32 sums are reordered, so the
    features change in the last bits; the first-batch check against the network as written still decides."""
    modules = dict(gm.named_modules())
    moved = 0
    for node in list(gm.graph.nodes):
        call = _avg_pool_call(node, modules)
        if call is None or len(node.users) != 1:
            continue
        source, args = call
        conv_node = next(iter(node.users))
        conv = modules.get(str(conv_node.target)) if conv_node.op == "call_module" else None
        if (type(conv) is not nn.Conv2d or conv_node.args != (node,) or conv_node.kwargs
                or conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding != (0, 0)
                or conv.dilation != (1, 1) or conv.groups != 1 or conv.out_channels >= conv.in_channels
                or _pair(args["stride"]) != (1, 1) or not _pool_weights_sum_to_one(args)):
            continue
        with gm.graph.inserting_before(conv_node):
            early = gm.graph.call_module(str(conv_node.target), (source,))
            if node.op == "call_module":
                pooled = gm.graph.call_module(str(node.target), (early,))
            else:
                pooled = gm.graph.call_function(node.target, (early, *node.args[1:]), dict(node.kwargs))
        conv_node.replace_all_uses_with(pooled)
        gm.graph.erase_node(conv_node)
        gm.graph.erase_node(node)
        moved += 1
    if moved:
        gm.graph.lint()
        gm.recompile()
    return moved


def _fx_fold(module: nn.Module, channels_last: bool, own: bool = False) -> tuple[nn.Module, list[str]]:
    """Trace (unless already a GraphModule: it may not re-trace), fold, channels_last, oneDNN; `own`: the module
    is a private copy that may be changed in place."""
    from torch.fx.experimental.optimization import fuse

    # typed as a Module, returns its GraphModule
    fused = cast(torch.fx.GraphModule, fuse(module, inplace=own, no_trace=isinstance(module, torch.fx.GraphModule)))
    applied = ["conv-batchnorm folding (torch.fx)"]
    moved = _conv_before_avg_pool(fused)
    if moved:
        applied.append(f"1x1 convolution moved before its stride-1 average pool ({moved}; fewer channels pooled)")
    if channels_last:
        fused = fused.to(memory_format=torch.channels_last)
        applied.append("channels_last weights")
        if _onednn_available() and _on_cpu(fused) and _onednn_convs(fused):
            applied.append("conv(+ReLU) as one oneDNN call on prepacked weights (CPU float32)")
    return fused, applied


def _jit_freeze(module: nn.Module) -> tuple[torch.jit.ScriptModule, list[str]]:
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.compile, but still the way to
        warnings.simplefilter("ignore")  # freeze a TorchScript network without re-tracing its control flow
        scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
        return torch.jit.freeze(scripted.eval()), ["TorchScript freeze (constant folding, conv-batchnorm folding)"]


def _jit_optimize(module: nn.Module, channels_last: bool) -> tuple[nn.Module, list[str]]:
    """Freeze; then rebuild the frozen graph as an eager fx module (`evalsuite.jit_graph`) and give it the eager
    path (folding, channels_last, oneDNN). Where the graph cannot be rebuilt (control flow, an op it does not
    translate) the frozen TorchScript runs, and why is listed among the steps."""
    from evalsuite import jit_graph

    frozen, applied = _jit_freeze(module)
    try:
        rebuilt, counts = jit_graph.rebuild(frozen)
        eager, steps = _fx_fold(rebuilt, channels_last, own=True)
    except Exception as exc:  # noqa: BLE001 (jit_graph.Unsupported, or anything else: the frozen graph still runs)
        why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return frozen, [*applied, f"not rebuilt as an eager graph ({why}): the frozen TorchScript runs"]
    return eager, [*applied, f"frozen graph rebuilt as an eager torch.fx module ({counts['conv2d']} convolutions, "
                             f"{counts['batch_norm']} batch norms, {counts['aten_calls']} other ATen calls)", *steps]


def optimized_copy(module: nn.Module, channels_last: bool) -> tuple[nn.Module | None, list[str], str | None]:
    """An inference-optimised copy of `module` (the original is untouched), what was applied, or why nothing was."""
    if module.training:
        return None, [], "the network is in training mode"
    try:
        if _has_script(module):
            return (*_jit_optimize(module, channels_last), None)
        return (*_fx_fold(module, channels_last), None)
    except Exception as exc:  # noqa: BLE001 (any failure means: run the network as written)
        return None, [], f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def deviation(exact: torch.Tensor, candidate: torch.Tensor) -> float | None:
    """Largest |difference| relative to the largest finite |exact| value; None when shapes differ or NaN/inf
    values sit in different places (the candidate is then unusable)."""
    if exact.shape != candidate.shape:
        return None
    exact, candidate = exact.detach().double(), candidate.detach().double()
    finite = torch.isfinite(exact)
    same_nan = torch.equal(torch.isnan(exact), torch.isnan(candidate))
    infinite = torch.isinf(exact)
    if not same_nan or not torch.equal(finite, torch.isfinite(candidate)) or \
            not torch.equal(exact[infinite], candidate[infinite]):
        return None
    if not finite.any():
        return 0.0
    scale = float(exact[finite].abs().max()) or 1.0
    return float((exact[finite] - candidate[finite]).abs().max()) / scale


class InferenceGraph:
    """Callable in place of the network: the optimised graph once it has matched the original on a batch of each
    input shape, the original otherwise (or always, when `enabled` is False)."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], *, enabled: bool = True,
                 channels_last: bool = True, tolerance: float = TOLERANCE):
        self.forward = forward
        self.tolerance = tolerance
        self.candidate: nn.Module | None = None
        self.applied: list[str] = []
        self.reason: str | None = None if enabled else "disabled (--no-graph-opt)"
        self.verified: set[tuple] = set()
        self.max_deviation = 0.0
        if enabled and isinstance(forward, nn.Module):
            self.candidate, self.applied, self.reason = optimized_copy(forward, channels_last)
        elif enabled:
            self.reason = "the extractor is a function, not a module"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.candidate is None:
            return self.forward(x)
        key = (tuple(x.shape[1:]), x.dtype, x.device.type)
        if key in self.verified:
            return self.candidate(x)
        probe = x[:PROBE]
        exact = self.forward(probe)
        try:
            fast = self.candidate(x)
            dev = deviation(exact, fast[:PROBE])
            problem = None if dev is not None and dev <= self.tolerance else (
                f"deviated by {dev:.1e}" if dev is not None else "changed the shape or the NaN/inf positions")
        except Exception as exc:  # noqa: BLE001 (the network as written still runs)
            problem = f"raised {type(exc).__name__}: {str(exc)[:200]}"
        if problem or dev is None:  # (dev is None only with a problem)
            self.reason = (f"the optimised graph {problem} on input {tuple(x.shape)} (tolerance {self.tolerance:g}); "
                           "the network runs as written")
            self.candidate, self.applied = None, []
            return exact if len(x) <= PROBE else self.forward(x)
        self.verified.add(key)
        self.max_deviation = max(self.max_deviation, dev)
        return fast  # every feature of a run comes from one graph, whichever batch checked it

    def report(self) -> dict:
        """For provenance: what was applied, on how many input shapes it was checked, the largest deviation."""
        if self.candidate is None:
            return {"applied": [], "reason": self.reason}
        return {"applied": list(self.applied), "checked_input_shapes": len(self.verified),
                "max_feature_deviation_relative": self.max_deviation, "tolerance": self.tolerance}

