"""The modern parallel RNNs (ssm, mingru): the parallel scan of training and the step-by-step generation
give the same predictions, the generation state does not grow, gradients through the scans are right,
degenerate inputs work, and the bench's FLOP counter sees the scans."""

from __future__ import annotations

import pytest
import torch

from engine.models import build_model, models_in_group
from engine.models.mingru import CHUNK, log_space_scan
from engine.models.scans import linear_scan
from engine.models.ssm_passes import CHUNK_STEPS
from engine.models.ssm_scan import selective_scan
from engine.music.tokens import HOLD, TokenConfig
from engine.training.flops import train_step_flops

VOCAB = TokenConfig().vocab_size
MODERN = models_in_group("modern")


def _model(key):
    torch.manual_seed(0)
    return build_model(key, "tiny", VOCAB).double().eval()


def _stepped_log_probs(model, tokens):
    state = model.init_state(tokens.shape[0])
    out = []
    for t in range(tokens.shape[1]):
        logits, state = model.step(tokens[:, t], state)
        out.append(torch.log_softmax(logits, dim=-1))
    return torch.stack(out, dim=1), state


def test_the_modern_group_holds_both_models_and_is_not_ticked_by_default():
    from engine.models import default_selection

    assert MODERN == ["ssm", "mingru"]
    assert not set(MODERN) & set(default_selection())


@pytest.mark.parametrize("key", MODERN)
@pytest.mark.parametrize("length", [1, 2, 7, CHUNK + 1, 2 * CHUNK + 37])
def test_parallel_scan_and_step_by_step_give_the_same_log_probs(key, length):
    """Lengths include non-powers of two and more than one chunk of the log-space scan."""
    model = _model(key)
    tokens = torch.randint(1, VOCAB, (2, length), generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        parallel = torch.log_softmax(model(tokens), dim=-1)  # the scoring form (minGRU: linear space)
        stepped, _ = _stepped_log_probs(model, tokens)
        primed, _ = model.prime(tokens)
    model.train()  # the training form (minGRU: the log-space scan); nothing here depends on the mode otherwise
    trained = torch.log_softmax(model(tokens), dim=-1).detach()
    model.eval()
    attributed = torch.log_softmax(model(tokens), dim=-1).detach()  # eval mode with gradients: influence's form
    torch.testing.assert_close(stepped, parallel, atol=1e-5, rtol=0)
    torch.testing.assert_close(trained, parallel, atol=1e-5, rtol=0)
    torch.testing.assert_close(attributed, parallel, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.log_softmax(primed, dim=-1), parallel[:, -1], atol=1e-5, rtol=0)


def test_mingru_scores_in_float32_as_float64_does_with_sharp_gates():
    """A trained minGRU's gates are sharp (z near 0 or 1): the log-space scan's running sum A_t then grows
    large and float32 resolves log h only to about 1e-7 |A_t| (the bundled model's log-probabilities moved by up
    to 1e-3). Scoring (eval mode) runs the recurrence in linear space, which keeps float32's precision."""
    torch.manual_seed(0)
    model = build_model("mingru", "tiny", VOCAB).eval()
    with torch.no_grad():
        for layer in model.layers:
            layer.gates.weight.mul_(30)  # sharp gates, as training makes them
    exact = build_model("mingru", "tiny", VOCAB).double().eval()
    exact.load_state_dict(model.state_dict())
    tokens = torch.randint(1, VOCAB, (2, 3 * CHUNK + 5), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        scored = torch.log_softmax(model(tokens), dim=-1).double()
        reference = torch.log_softmax(exact(tokens), dim=-1)
    model.train()
    log_space = torch.log_softmax(model(tokens), dim=-1).detach().double()  # the training form
    torch.testing.assert_close(scored, reference, atol=1e-5, rtol=0)
    # the training form's float32 error here is over ten times larger (why scoring does not use it)
    assert (log_space - reference).abs().max() > 10 * (scored - reference).abs().max()


@pytest.mark.parametrize("key", MODERN)
def test_generation_state_does_not_grow_with_length(key):
    model = _model(key)
    tokens = torch.randint(1, VOCAB, (1, 300), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, short = model.prime(tokens[:, :3])
        _, long = model.prime(tokens)
        _, stepped = _stepped_log_probs(model, tokens[:, :40])
    assert _shapes(model.init_state(1)) == _shapes(short) == _shapes(long) == _shapes(stepped)


def _shapes(state):
    return [tuple(t.shape) for t in (state if isinstance(state, tuple) else (state,))]


@pytest.mark.parametrize("scan", [linear_scan, log_space_scan])
@pytest.mark.parametrize("length", [1, 5, CHUNK + 3])
def test_gradients_through_the_scans_match_finite_differences(scan, length):
    g = torch.Generator().manual_seed(length)
    a = torch.rand(2, length, 3, dtype=torch.float64, generator=g)
    if scan is log_space_scan:
        a = -3 * a  # log of the decay
    b = torch.randn(2, length, 3, dtype=torch.float64, generator=g)
    h0 = torch.rand(2, 3, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(scan, tuple(x.requires_grad_() for x in (a, b, h0)))


@pytest.mark.parametrize("length", [1, 5, CHUNK_STEPS + 3, 2 * CHUNK_STEPS + 5])
def test_gradients_through_the_selective_scan_match_finite_differences(length):
    """The fused op's hand-written backward, for y and for the state it returns, within and across chunks."""
    g = torch.Generator().manual_seed(length)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, dtype=torch.float64, generator=g) * scale).requires_grad_()

    delta = (torch.rand(2, length, 3, dtype=torch.float64, generator=g) * 0.5).requires_grad_()
    a = (-torch.rand(3, 4, dtype=torch.float64, generator=g) * 3).requires_grad_()
    args = (delta, a, rand(2, length, 4), rand(2, length, 4), rand(2, length, 3), rand(2, 3, 4))
    # past a chunk, torch's fast mode: the Jacobian against random directions, not column by column (the same
    # finite differences, a few thousand fewer forward passes; the short lengths check every column)
    fast = length > CHUNK_STEPS
    assert torch.autograd.gradcheck(lambda *x: selective_scan(*x)[0], args, fast_mode=fast)
    assert torch.autograd.gradcheck(lambda *x: selective_scan(*x)[1], args, fast_mode=fast)


@pytest.mark.parametrize("key", MODERN)
def test_gradient_flows_from_the_last_prediction_to_the_first_token(key):
    """A tiny model end to end, float64: the finite-difference check through embeddings, scans and head."""
    torch.manual_seed(0)
    model = build_model(key, "tiny", VOCAB, d_model=4, n_layers=1).double()
    e = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model.forward_embedded(x)[:, -1, :3], (e,))
    model.forward_embedded(e)[:, -1].logsumexp(-1).sum().backward()
    assert e.grad[0, 0].abs().sum() > 0


@pytest.mark.parametrize("key", MODERN)
@pytest.mark.parametrize("tokens", [[[HOLD] * 50], [[HOLD]], [[5]]], ids=["all HOLD", "one HOLD", "one note"])
def test_degenerate_inputs_give_finite_matching_predictions(key, tokens):
    model = _model(key)
    tokens = torch.tensor(tokens)
    with torch.no_grad():
        parallel = torch.log_softmax(model(tokens), dim=-1)
        stepped, _ = _stepped_log_probs(model, tokens)
    assert torch.isfinite(parallel).all()
    torch.testing.assert_close(stepped, parallel, atol=1e-5, rtol=0)


@pytest.mark.parametrize("key", MODERN)
def test_the_flop_counter_counts_the_scans(key):
    """bench's mfu rests on counted FLOPs: the scans (forward and the reverse scan of backward) are in them."""
    torch.manual_seed(0)
    model = build_model(key, "tiny", VOCAB)
    batch = torch.randint(1, VOCAB, (2, 33))
    with_scan, targets = train_step_flops(model, batch)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(batch[:, :-1]).sum().backward()
    scans = sum(n for op, n in counter.get_flop_counts()["Global"].items() if "scan" in str(op))
    assert targets == 64 and scans > 0 and with_scan > scans


@pytest.mark.parametrize("key", MODERN)
def test_a_training_step_runs_under_bf16_autocast(key):
    """The Train tab's bf16 option (docs/training.md): the projections run in bf16, the scans in float32 (their
    inputs arrive mixed); the step ends with finite gradients for every parameter."""
    from engine.training.loop import autocast

    torch.manual_seed(0)
    model = build_model(key, "tiny", VOCAB)  # float32, as training has it (autocast leaves float64 alone)
    tokens = torch.randint(0, VOCAB, (2, 3 * CHUNK_STEPS + 5))  # several chunks
    with autocast(torch.device("cpu"), "bf16"):
        logits = model(tokens)
    loss = torch.nn.functional.cross_entropy(logits.float()[:, :-1].reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("key", MODERN)
def test_validation_under_bf16_autocast_scans_in_float32(key):
    """Validation with the bf16 option scores in eval mode without gradients: the scans there (minGRU's linear
    one, the SSM's in-place one) run in float32 like training's, so the state they leave is float32."""
    from engine.training.loop import autocast

    torch.manual_seed(0)
    model = build_model(key, "tiny", VOCAB).eval()
    tokens = torch.randint(0, VOCAB, (2, 3 * CHUNK_STEPS + 5))
    with torch.no_grad(), autocast(torch.device("cpu"), "bf16"):
        _, state = model.prime(tokens)
    assert all(s.dtype == torch.float32 for s in _tensors(state))


@pytest.mark.parametrize("key", MODERN)
def test_the_fast_step_reads_the_weights_anew_at_each_init_state_and_leaves_its_inputs_alone(key):
    """The generation step works on weights prepared once per init_state (engine/models/step_weights.py): weights
    changed before the next init_state are the ones it steps with; a batch of another size gets its own
    intermediates; the state it was given is not changed, so stepping from it again gives the same logits."""
    model = _model(key)
    tokens = torch.randint(1, VOCAB, (3, 20), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _stepped_log_probs(model, tokens[:2])  # prepared at batch 2
        for p in model.parameters():
            p.mul_(1.1)
        parallel = torch.log_softmax(model(tokens), dim=-1)
        stepped, state = _stepped_log_probs(model, tokens)  # init_state again, batch 3
        torch.testing.assert_close(stepped, parallel, atol=1e-5, rtol=0)
        first, _ = model.step(tokens[:, 0], state)
        again, _ = model.step(tokens[:, 0], state)
    assert torch.equal(first, again)


@pytest.mark.parametrize("key", MODERN)
def test_stepping_with_gradients_on_differentiates_through_the_parameters(key):
    """With autograd recording, step takes the general path (the training code for one step): the logits match
    the fast step's and carry gradients back to the parameters."""
    model = _model(key)
    tokens = torch.randint(1, VOCAB, (2, 3), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        fast, _ = _stepped_log_probs(model, tokens)
    slow, _ = _stepped_log_probs(model, tokens)
    torch.testing.assert_close(slow, fast, atol=1e-10, rtol=0)
    slow.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("key", MODERN)
def test_two_threads_stepping_one_model_each_get_their_own_result(key):
    """The fast step's intermediates are per thread: two generations at once on one model do not mix."""
    import threading

    model = _model(key)
    batches = [torch.randint(1, VOCAB, (b, 40), generator=torch.Generator().manual_seed(b)) for b in (2, 3)]
    with torch.no_grad():
        alone = [_stepped_log_probs(model, x)[0] for x in batches]
    together = [None, None]

    def run(i):
        with torch.no_grad():
            state = model.init_state(batches[i].shape[0])
            out = []
            for t in range(batches[i].shape[1]):
                logits, state = model.step(batches[i][:, t], state)
                out.append(torch.log_softmax(logits, dim=-1))
            together[i] = torch.stack(out, dim=1)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=0)


@pytest.mark.parametrize("key", MODERN)
def test_states_the_caller_keeps_stay_as_they_were_while_it_steps_on(key):
    """The fast steps reuse buffers for their intermediates, never for the state they return: a state kept whole,
    or only a view of one, keeps its values however many steps follow."""
    model = _model(key)
    tokens = torch.randint(1, VOCAB, (2, 12), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        state = model.init_state(2)
        for t in range(tokens.shape[1]):
            _, state = model.step(tokens[:, t], state)
            if t == 3:
                kept = state
                kept_values = [x.clone() for x in _tensors(state)]
            if t == 5:
                view = _tensors(state)[-1][0]
                view_values = view.clone()
    assert all(torch.equal(x, y) for x, y in zip(_tensors(kept), kept_values))
    assert torch.equal(view, view_values)


def _tensors(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("length", [1, 5, CHUNK_STEPS, CHUNK_STEPS + 1, 3 * CHUNK_STEPS + 7])
def test_the_ssm_scores_without_gradients_with_the_same_floats(length):
    """Without gradients the scan updates h in place and keeps only the last state: y and the state are those
    of the training form (the op that keeps every state for backward) bit for bit, the padded steps after the
    last leaving h as it was; and h0 is never written."""
    from engine.models import ssm_scan

    g = torch.Generator().manual_seed(length)
    delta = torch.rand(2, length, 6, generator=g) * 0.5
    a = -torch.rand(6, 4, generator=g) * 3
    b_sel, c_sel = torch.randn(2, length, 4, generator=g), torch.randn(2, length, 4, generator=g)
    xs, h0 = torch.randn(2, length, 6, generator=g), torch.randn(2, 6, 4, generator=g)
    kept = h0.clone()
    with torch.no_grad():
        scored = ssm_scan.selective_scan(delta, a, b_sel, c_sel, xs, h0)
    trained = ssm_scan.selective_scan(delta, a.requires_grad_(), b_sel, c_sel, xs, h0)
    assert scored[0].grad_fn is None and trained[0].grad_fn is not None  # the two forms did run
    assert torch.equal(scored[0], trained[0].detach()) and torch.equal(scored[1], trained[1].detach())
    assert torch.equal(h0, kept)
    # and the whole model: its predictions with and without gradients
    torch.manual_seed(0)
    model = build_model("ssm", "tiny", VOCAB).eval()
    tokens = torch.randint(1, VOCAB, (2, length), generator=g)
    with torch.no_grad():
        plain = model(tokens)
    assert torch.equal(plain, model(tokens).detach())
