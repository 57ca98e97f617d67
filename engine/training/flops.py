"""FLOPs of a real training step, counted by torch itself (torch.utils.flop_counter.FlopCounterMode).

The counter knows the matmuls, but not two fused CPU kernels these models run on: the LSTM's oneDNN
layer (`mkldnn_rnn_layer`, forward and backward) and the CPU flash attention of
scaled_dot_product_attention. Without them the LSTM's core and the Transformer's attention would count
as zero. Their formulas, below, count the multiply-adds the kernels perform (2 FLOPs each), as torch's
own formulas do for the GPU kernels; a causal flash attention skips the blocks above the diagonal, so it
counts half of the full product. Elementwise work (activations, norms, the optimizer) is not counted, as
in every MFU figure (Kaplan et al. 2020, PaLM's appendix B), with one exception: the parallel scans of the
modern recurrent models (engine/models/ssm.py, mingru.py) are their recurrence, so those torch custom ops
register their own formulas with torch's counter (2 FLOPs per state element and step, forward, and again
for the reverse scan of backward) and are counted here without being listed.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


def _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape) -> int:
    """One oneDNN RNN layer forward: input and hidden projections of every gate at every step."""
    steps_x_batch = input_shape[0] * input_shape[1]
    gates_x_hidden, n_in = w_ih_shape
    return 2 * steps_x_batch * gates_x_hidden * (n_in + w_hh_shape[1])


def _mkldnn_rnn_layer(input, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    return _rnn_layer_flops(input, w_ih, w_hh)


def _mkldnn_rnn_layer_backward(input, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    # gradients of the inputs, of the previous hidden states and of both weight matrices: twice forward
    return 2 * _rnn_layer_flops(input, w_ih, w_hh)


def _flash_cpu(query, key, value, dropout_p=0.0, is_causal=False, *args, out_shape=None, **kwargs) -> int:
    full = sdpa_flop_count(query, key, value)
    return full // 2 if is_causal else full


def _flash_cpu_backward(grad_out, query, key, value, out, logsumexp, dropout_p=0.0, is_causal=False, *args,
                        out_shape=None, **kwargs) -> int:
    full = sdpa_backward_flop_count(grad_out, query, key, value)
    return full // 2 if is_causal else full


CPU_KERNELS = {
    aten.mkldnn_rnn_layer: _mkldnn_rnn_layer,
    aten.mkldnn_rnn_layer_backward: _mkldnn_rnn_layer_backward,
    aten._scaled_dot_product_flash_attention_for_cpu: _flash_cpu,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _flash_cpu_backward,
}


def train_step_flops(model, batch: torch.Tensor, precision: str = "fp32") -> tuple[int, int]:
    """(FLOPs of one forward and backward pass of `model` on `batch` [B, T+1], predicted tokens in it),
    counted on the very loss the engine trains with."""
    from engine.training.loop import next_token_nats

    with FlopCounterMode(display=False, custom_mapping=CPU_KERNELS) as counter:
        total, targets = next_token_nats(model, batch, precision)
        (total / targets.clamp(min=1)).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops(), int(targets)
