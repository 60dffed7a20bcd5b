"""A frozen TorchScript graph rebuilt as an eager torch.fx module, node for node, so that the eager optimisations
(Conv→BatchNorm folding, channels_last, one oneDNN call per convolution and its ReLU) apply to a TorchScript file.

Everything comes from the loaded module's own graph: each `aten::conv2d` / `aten::_convolution` whose weight,
bias and geometry are constants becomes an `nn.Conv2d` holding those tensors, each `aten::batch_norm` on constant
statistics an `nn.BatchNorm2d`, each ReLU `torch.relu`; any other ATen op is called as the same `torch.ops.aten`
op with the same arguments, in the same order. No parameter name is assumed. A graph with control flow (`prim::If`,
`prim::Loop`), attribute reads left after freezing, or an op outside ATen and the few list/scalar primitives below
is refused with `Unsupported` (the caller then keeps the frozen TorchScript).
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
from torch import fx, nn


class Unsupported(Exception):
    """The graph holds something this rebuild does not translate."""


def _size(x: torch.Tensor, dim: int | None = None) -> Any:
    return list(x.shape) if dim is None else x.size(dim)


#: non-ATen and list/scalar nodes: their Python meaning
_PRIMS: dict[str, Callable] = {
    "aten::__getitem__": operator.getitem, "aten::len": len, "aten::size": _size, "aten::dim": torch.Tensor.dim,
    "aten::Int": int, "aten::Float": float, "aten::Bool": bool, "aten::__not__": operator.not_,
    "prim::dtype": lambda x: x.dtype, "prim::device": lambda x: x.device, "prim::NumToTensor": torch.scalar_tensor,
}
_RELU = ("aten::relu", "aten::relu_")


def _const(node: torch._C.Node) -> Any:
    return node.output().toIValue()


def _conv_module(args: list, kind: str) -> nn.Conv2d | None:
    """nn.Conv2d for a 2-d, non-transposed convolution whose weight, bias and geometry are constants, else None."""
    if kind == "aten::conv2d":
        if len(args) != 7:
            return None
        _, weight, bias, stride, padding, dilation, groups = args
    else:  # aten::_convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups, ...)
        if len(args) < 9 or args[6] is not False:
            return None
        _, weight, bias, stride, padding, dilation, _, _, groups = args[:9]
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        return None
    if not (bias is None or isinstance(bias, torch.Tensor)):
        return None
    if any(isinstance(v, fx.Node) for v in (stride, padding, dilation, groups)):
        return None
    out_ch, in_per_group, kh, kw = weight.shape
    conv = nn.Conv2d(in_per_group * groups, out_ch, (kh, kw), stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=bias is not None)
    with torch.no_grad():
        conv.weight = nn.Parameter(weight.detach(), requires_grad=False)  # the frozen copy's own tensors
        if bias is not None:
            conv.bias = nn.Parameter(bias.detach(), requires_grad=False)
    return conv


def _bn_module(args: list) -> nn.BatchNorm2d | None:
    """nn.BatchNorm2d for an inference batch_norm on constant statistics (a missing scale/shift is 1/0)."""
    if len(args) != 9:
        return None
    _, weight, bias, mean, var, training, _momentum, eps, _cudnn = args
    if training is not False or not isinstance(mean, torch.Tensor) or not isinstance(var, torch.Tensor) \
            or isinstance(eps, fx.Node) or any(isinstance(t, fx.Node) for t in (weight, bias)):
        return None
    bn = nn.BatchNorm2d(mean.numel(), eps=float(eps))
    with torch.no_grad():
        bn.running_mean = mean.detach().clone()
        bn.running_var = var.detach().clone()
        bn.weight.copy_(weight if weight is not None else torch.ones_like(mean))
        bn.bias.copy_(bias if bias is not None else torch.zeros_like(mean))
    return bn.requires_grad_(False).eval()


def rebuild(frozen: torch.jit.ScriptModule) -> tuple[fx.GraphModule, dict[str, int]]:
    """An fx GraphModule computing what the frozen module's `forward` computes; also counts of what was rebuilt
    (convolutions, batch norms, other ATen calls)."""
    root = nn.Module()
    graph = fx.Graph()
    env: dict[Any, Any] = {}  # TorchScript value (by unique id) -> fx Node or Python constant
    counts = {"conv2d": 0, "batch_norm": 0, "aten_calls": 0}
    inputs = list(frozen.graph.inputs())
    if not inputs or inputs[0].type().kind() != "ClassType":
        raise Unsupported("the graph's first input is not the module")
    if any(u.user.kind() != "prim::Constant" for u in inputs[0].uses()):
        raise Unsupported("the frozen graph still reads module attributes")
    for value in inputs[1:]:
        env[value.unique()] = graph.placeholder(f"x{len(env)}")

    def arg(value: torch._C.Value) -> Any:
        return env[value.unique()]

    def add_module(prefix: str, module: nn.Module) -> str:
        name = f"{prefix}_{sum(1 for _ in root.children())}"
        root.add_module(name, module)
        return name

    def fx_arg(value: torch._C.Value) -> Any:
        """A value as an fx argument: a tensor constant becomes a buffer of the module, read with get_attr (once)."""
        key = value.unique()
        if key in tensor_consts:
            if key not in attr_nodes:
                name = f"const_{len(attr_nodes)}"
                root.register_buffer(name, tensor_consts[key])
                attr_nodes[key] = graph.get_attr(name)
            return attr_nodes[key]
        return env[key]

    tensor_consts: dict[int, torch.Tensor] = {}  # frozen constants, handed to the module builders as they are
    attr_nodes: dict[int, fx.Node] = {}
    for node in frozen.graph.nodes():
        kind = node.kind()
        if list(node.blocks()):
            raise Unsupported(f"control flow ({kind})")
        outs = list(node.outputs())
        if kind == "prim::Constant":
            value = _const(node)
            if isinstance(value, torch.Tensor):
                tensor_consts[outs[0].unique()] = value.detach()
            env[outs[0].unique()] = value
            continue
        args = [arg(v) for v in node.inputs()]
        if kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            env[outs[0].unique()] = ([fx_arg(v) for v in node.inputs()] if kind == "prim::ListConstruct"
                                     else tuple(fx_arg(v) for v in node.inputs()))
            continue
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            for i, out in enumerate(outs):
                env[out.unique()] = graph.call_function(operator.getitem, (fx_arg(node.input()), i))
            continue
        if kind in ("aten::conv2d", "aten::_convolution"):
            conv = _conv_module(args, kind)
            if conv is not None:
                env[outs[0].unique()] = graph.call_module(add_module("conv", conv), (fx_arg(node.inputsAt(0)),))
                counts["conv2d"] += 1
                continue
        if kind == "aten::batch_norm":
            bn = _bn_module(args)
            if bn is not None:
                env[outs[0].unique()] = graph.call_module(add_module("bn", bn), (fx_arg(node.inputsAt(0)),))
                counts["batch_norm"] += 1
                continue
        fx_args = tuple(fx_arg(v) for v in node.inputs())
        if kind in _RELU:
            target: Callable = torch.relu if kind == "aten::relu" else torch.relu_
        elif kind in _PRIMS:
            target = _PRIMS[kind]
        elif kind.startswith("aten::") and hasattr(torch.ops.aten, kind[len("aten::"):]):
            target = getattr(torch.ops.aten, kind[len("aten::"):])
            counts["aten_calls"] += 1
        else:
            raise Unsupported(f"no translation for {kind}")
        if len(outs) != 1:
            raise Unsupported(f"{kind} has {len(outs)} outputs")
        env[outs[0].unique()] = graph.call_function(target, fx_args)
    results = [fx_arg(v) for v in frozen.graph.outputs()]
    graph.output(results[0] if len(results) == 1 else tuple(results))
    gm = fx.GraphModule(root, graph)
    gm.graph.lint()
    return gm.eval(), counts

