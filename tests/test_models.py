"""The registered models: one interface, causal, stepping equals the full forward, parameter-matched presets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.core.errors import UserError
from engine.models import (
    BASELINE,
    GROUPS,
    MODEL_COLOURS,
    MODEL_KEYS,
    MODEL_LABELS,
    PRESETS,
    build_model,
    default_selection,
    model_from_config,
    models_in_group,
    models_with_attention,
    spec,
)
from engine.music.tokens import PAD, TokenConfig

VOCAB = TokenConfig().vocab_size


def _tokens(batch, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=g)


def test_registry_invariants_keys_colours_labels_groups():
    """Every model has a unique key, label and colour, a known group, and the seed's five (design.md s.3,
    with their fixed colours) are the default selection; the baseline is one of them."""
    assert len(set(MODEL_KEYS)) == len(MODEL_KEYS)
    assert set(MODEL_COLOURS) == set(MODEL_LABELS) == set(MODEL_KEYS)
    assert len(set(MODEL_COLOURS.values())) == len(MODEL_KEYS) and len(set(MODEL_LABELS.values())) == len(MODEL_KEYS)
    assert all(spec(k).group in GROUPS for k in MODEL_KEYS)
    assert sum(len(models_in_group(g)) for g in GROUPS) == len(MODEL_KEYS)
    seed_five = {"rnn": "#d62728", "lstm": "#1f77b4", "gru": "#2ca02c", "attention": "#9467bd", "transformer": "#ff7f0e"}
    assert default_selection() == list(seed_five) and BASELINE in default_selection()
    assert {k: MODEL_COLOURS[k] for k in seed_five} == seed_five


def test_no_model_key_is_a_name_the_report_gives_beside_the_models():
    """A report keys each model's influence entry as influence.<model> beside the block's own keys, and sets the
    models beside "human" and "floor": register() refuses those names, so a model can never overwrite them."""
    from dataclasses import replace

    from engine.evaluation.report_file import INFLUENCE_KEYS
    from engine.models.registry import RESERVED_KEYS, register

    assert set(INFLUENCE_KEYS) | {"human", "floor"} <= RESERVED_KEYS
    assert not RESERVED_KEYS & set(MODEL_KEYS)
    for key in ("repeats", "human", "temperature"):
        with pytest.raises(ValueError, match="a name the report gives"):
            register(replace(spec("rnn"), key=key))
    assert key not in MODEL_KEYS


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_every_model_declares_its_interface(key):
    """What the engine asks of a model is declared (engine/models/base.py), never guessed: a per-step input
    embedding, reach, attention span and capability, weight-decay groups covering every parameter once."""
    model = build_model(key, "tiny", VOCAB)
    tokens = _tokens(2, 30)
    e = model.embed_tokens(tokens)
    assert e.shape[:2] == tokens.shape
    torch.testing.assert_close(model.forward_embedded(e), model(tokens))
    assert model.reach is None or model.reach > 0
    assert (model.attention_span is not None) == model.has_attention == (key in models_with_attention())
    decay, no_decay = model.parameter_groups()
    assert sorted(map(id, decay + no_decay)) == sorted(map(id, model.parameters()))
    assert all(p.dim() >= 2 for p in decay)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_models_in_a_preset_are_parameter_matched_within_ten_percent(preset):
    counts = {key: build_model(key, preset, VOCAB).num_params() for key in MODEL_KEYS}
    assert max(counts.values()) <= 1.10 * min(counts.values()), counts


def test_preset_sizes_are_as_documented():
    tiny = [build_model(k, "tiny", VOCAB).num_params() for k in MODEL_KEYS]
    small = [build_model(k, "small", VOCAB).num_params() for k in MODEL_KEYS]
    medium = [build_model(k, "medium", VOCAB).num_params() for k in MODEL_KEYS]
    assert max(tiny) < 30_000
    assert all(150_000 < n < 250_000 for n in small)
    assert all(800_000 < n < 1_200_000 for n in medium)


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_forward_gives_logits_for_every_position(key):
    model = build_model(key, "tiny", VOCAB)
    logits = model(_tokens(2, 20))
    assert logits.shape == (2, 20, VOCAB)


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_changing_a_later_token_never_changes_earlier_logits(key):
    torch.manual_seed(0)
    model = build_model(key, "tiny", VOCAB).eval()
    x = _tokens(2, 40)
    y = x.clone()
    y[:, 25] = (y[:, 25] % (VOCAB - 1)) + 1  # a different token at position 25
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[:, :25], b[:, :25])
    assert not torch.allclose(a[:, 25:], b[:, 25:])  # the change is seen from position 25 on


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_stepping_with_state_reproduces_the_full_forward(key):
    torch.manual_seed(1)
    model = build_model(key, "tiny", VOCAB).eval()
    # Longer than the tiny window (64): stepping must also agree once the window slides.
    x = _tokens(3, model.window + 30, seed=2)
    with torch.no_grad():
        full = model(x)
        state = model.init_state(3)
        stepped = []
        for t in range(x.shape[1]):
            logits, state = model.step(x[:, t], state)
            stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, dim=1), full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_priming_in_one_pass_then_stepping_continues_the_full_forward(key):
    torch.manual_seed(4)
    model = build_model(key, "tiny", VOCAB).eval()
    x = _tokens(2, model.window + 20, seed=5)
    split = model.window - 10
    with torch.no_grad():
        full = model(x)
        logits, state = model.prime(x[:, :split])
        torch.testing.assert_close(logits, full[:, split - 1], atol=1e-4, rtol=0)
        logits, state = model.prime(x[:, split : split + 5], state)  # a second chunk, across the window edge
        torch.testing.assert_close(logits, full[:, split + 4], atol=1e-4, rtol=0)
        for t in range(split + 5, x.shape[1]):
            logits, state = model.step(x[:, t], state)
            torch.testing.assert_close(logits, full[:, t], atol=1e-4, rtol=0)


@pytest.mark.parametrize("key", ["attention", "transformer"])
def test_what_leaves_the_window_is_forgotten_by_the_transformer_but_not_the_rnn_core(key):
    """Each transformer layer looks back window - 1 tokens, so n_layers stacked layers reach
    n_layers * (window - 1) back and no further; the attention model's RNN state reaches further."""
    torch.manual_seed(2)
    model = build_model(key, "tiny", VOCAB).eval()
    w = model.window
    x = _tokens(1, 3 * w, seed=3)
    y = x.clone()
    y[:, 0] = (y[:, 0] % (VOCAB - 1)) + 1
    with torch.no_grad():
        changed = (model(x) - model(y)).abs().amax(dim=(0, 2))
    if key == "transformer":
        reach = model.config.n_layers * (w - 1)
        assert changed[reach + 1 :].max() == 0
        assert changed[reach] > 0
    else:
        assert changed[w:].max() > 0


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_a_tiny_model_overfits_a_tiny_batch(key):
    torch.manual_seed(3)
    model = build_model(key, "tiny", VOCAB)
    # Two fixed sequences with a repeating pattern; padded tails must be ignored by the loss.
    pattern = torch.tensor([5, 1, 1, 9, 2, 7, 1, 12, 1, 1, 30, 2] * 3)
    batch = torch.stack([pattern, pattern.roll(3)])
    batch[1, -6:] = PAD
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.15, f"{key} did not fit a tiny batch: loss {loss.item():.3f} nats"


def test_model_rebuilds_from_its_config_dict():
    model = build_model("transformer", "tiny", VOCAB)
    again = model_from_config(model.config.to_dict())
    assert again.config == model.config
    assert again.num_params() == model.num_params()


def test_unknown_model_or_preset_is_a_user_error():
    with pytest.raises(UserError, match="unknown model 'cnn'"):
        build_model("cnn", "tiny", VOCAB)
    with pytest.raises(UserError, match="unknown preset 'huge'"):
        build_model("rnn", "huge", VOCAB)


@pytest.mark.parametrize("length", [1, 63, 64, 65, 200, 256, 257, 300, 700])
def test_blocked_sliding_attention_equals_the_masked_full_attention(length):
    from engine.models.attention_rnn import sliding_causal_mask, sliding_window_attention

    g = torch.Generator().manual_seed(length)
    q, k, v = (torch.randn(2, 3, length, 8, generator=g, dtype=torch.float64) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=sliding_causal_mask(length, length, 64))
    assert torch.allclose(sliding_window_attention(q, k, v, 64), expected, atol=1e-12)
