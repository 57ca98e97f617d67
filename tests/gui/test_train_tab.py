"""The Train tab: live training of tiny models, Stop in the middle, errors, reopening a run, closing."""

from __future__ import annotations

from engine.checkpoint import list_run_models, read_history


def _tiny(tab, steps=400, models=None):
    tab.preset.setCurrentText("tiny")
    tab.steps.setValue(steps)
    for key, box in tab.model_boxes.items():
        box.setChecked(models is None or key in models)


def test_models_show_their_parameter_counts_per_preset(window):
    tab = window.train_tab
    tab.preset.setCurrentText("tiny")
    tiny = {k: label.text() for k, label in tab.param_labels.items()}
    assert all("k parameters" in t for t in tiny.values())
    tab.preset.setCurrentText("small")
    assert all(tab.param_labels[k].text() != tiny[k] for k in tiny)
    assert tab.window_len.value() == 256


def test_training_draws_curves_and_stop_keeps_a_checkpoint(window, qtbot, tmp_path):
    tab = window.train_tab
    _tiny(tab, steps=300)  # a validation point every 15 steps
    worker = tab.start(tmp_path / "run")
    assert worker is not None and not tab.start_button.isEnabled()

    validated = set()

    def every_model_validated(batch):
        validated.update(e.model for e in batch if e.kind == "eval")
        return validated == set(tab.model_boxes)

    # a validation point of every model arrives (they train in two processes); then Stop, long before the end
    with qtbot.waitSignal(worker.yielded, timeout=60000, check_params_cb=every_model_validated):
        pass
    with qtbot.waitSignal(worker.finished, timeout=10000):
        tab.stop()
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()
    assert "stopped" in tab.run_label.text()
    drawn = {k for k, c in tab.valid_curves.items() if len(c.getData()[0] or [])}
    assert drawn, "no validation curve was drawn"
    keys = list_run_models(tmp_path / "run")
    assert keys == list(tab.model_boxes)
    steps = [read_history(tmp_path / "run" / k)[-1]["step"] for k in keys]
    assert all(0 < s < 300 for s in steps)
    # the finished run is opened at once, so Listen can use it
    qtbot.waitUntil(lambda: set(window.state.models) == set(keys), timeout=10000)


def test_a_training_error_opens_a_dialog_and_the_app_stays_usable(window, qtbot, tmp_path, monkeypatch):

    def broken(job, stop=None):
        raise RuntimeError("simulated out-of-memory")
        yield

    monkeypatch.setattr("engine.training.train", broken)
    tab = window.train_tab
    _tiny(tab, steps=5)
    tab.start(tmp_path / "r")
    # the job fails at once, possibly before a signal could be waited on: wait for its visible outcome
    qtbot.waitUntil(lambda: not tab.running, timeout=10000)
    dialog = window.findChild(object, "errorDialog")
    assert dialog is not None and "simulated out-of-memory" in dialog.text()
    assert tab.start_button.isEnabled()
    dialog.close()


def test_open_run_draws_its_history(window, qtbot, tiny_run):
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    tab = window.train_tab
    assert set(window.state.models) == set(tab.model_boxes)
    for key, curve in tab.valid_curves.items():
        xs, _ys = curve.getData()
        assert xs is not None and len(xs) >= 1, key
    assert str(tiny_run) in tab.run_label.text()
    assert "models: 5" in window.models_label.text()


def test_closing_the_window_during_training_stops_it_and_keeps_the_checkpoint(window, qtbot, tmp_path):
    tab = window.train_tab
    _tiny(tab, steps=5000, models=["rnn", "lstm"])
    worker = tab.start(tmp_path / "run")
    stepped = set()

    def both_stepped(batch):
        stepped.update(e.model for e in batch if e.kind == "step")
        return stepped == {"rnn", "lstm"}

    with qtbot.waitSignal(worker.yielded, timeout=60000, check_params_cb=both_stepped):
        pass
    window.close()  # blocks until the worker has saved and returned
    assert not tab.running
    assert list_run_models(tmp_path / "run") == ["rnn", "lstm"]
