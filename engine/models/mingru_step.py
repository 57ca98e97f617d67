"""minGRU's one-token step for generation: the arithmetic of MinGRULayer.forward for T = 1, on weights prepared
once (engine/models/step_weights.py says why).

The training path works in log space because its scan needs it; one step does not, and runs the recurrence
as it is written:

    z = sigmoid(k),   h = (1 - z) h + z g(v) = lerp(h, g(v), z)

with g(v) = v + 0.5 for v >= 0 and sigmoid(v) below, which is exactly max(v + 0.5, sigmoid(v)): both are 0.5
at v = 0; for v > 0 the sigmoid rises with slope below 1/4 and the line with slope 1; for v < 0 the sigmoid is
convex, so above its tangent 0.5 + v / 4, which is above 0.5 + v. One sigmoid over [k, v] then gives z and
sigmoid(v).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.models.step_weights import folded, norm_eps, rms_scale


@dataclass
class _Layer:
    gates_w: torch.Tensor  # [d_model, 2 hidden], the norm's gain folded in
    gates_b: torch.Tensor  # [2 hidden]
    eps: torch.Tensor  # the norm's eps, 0-d (addcmul's first operand)
    out_w: torch.Tensor  # [hidden, d_model]


@dataclass
class StepWeights:
    # [V, d_model + 2 hidden]: per token, its embedding and the first layer's gates of it (a function of the
    # token alone: one lookup instead of a norm and a matrix product each step)
    first: torch.Tensor
    layers: list[_Layer]
    head_w: torch.Tensor  # [d_model, V], the final norm's gain folded in
    eps: torch.Tensor  # the final norm's


def _eps(norm) -> torch.Tensor:
    return norm.weight.new_tensor(norm_eps(norm, norm.weight.dtype))


@torch.no_grad()
def prepare(model) -> StepWeights:
    """The weights of a MinGRULM as the step uses them."""
    layers = [_Layer(folded(layer.gates.weight, layer.norm), layer.gates.bias.clone(), _eps(layer.norm),
                     layer.out.weight.t().contiguous()) for layer in model.layers]
    embed = model.embed.weight
    first = torch.cat([embed, model.layers[0].gates(model.layers[0].norm(embed))], dim=1)
    return StepWeights(first, layers, folded(model.head.weight, model.norm_f), _eps(model.norm_f))


def step(w: StepWeights, tokens: torch.Tensor, h: torch.Tensor):
    """tokens [B] -> (logits [B, V], h [layers, B, hidden] after them)."""
    hidden = h.shape[-1]
    row = F.embedding(tokens, w.first)
    x, gates = row[:, : -2 * hidden], row[:, -2 * hidden :]  # the residual stream [B, d_model]; [k, v] [B, 2 hidden]
    h_out = torch.empty_like(h)
    for i, lw in enumerate(w.layers):
        if i:
            gates = torch.addmm(lw.gates_b, x * rms_scale(x, lw.eps), lw.gates_w)
        s = torch.sigmoid(gates)  # [z, sigmoid(v)]
        candidate = torch.maximum(gates[:, hidden:].add_(0.5), s[:, hidden:])  # g(v)
        torch.lerp(h[i], candidate, s[:, :hidden], out=h_out[i])
        x = torch.addmm(x, h_out[i], lw.out_w)  # the residual stream plus the layer's output
    return torch.mm(x * rms_scale(x, w.eps), w.head_w), h_out
