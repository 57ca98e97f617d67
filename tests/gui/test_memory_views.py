"""The sampled measures of the Memory tab and their controls (issue 24), on a report with seven models and
four temperatures opened with the Open report button: the floor choice, theme recall over its floor or
raw, the temperature switch over the whole sweep, the meter, the companions of theme recall, the
late-bar excess against temperature, the distinct-bar rate at matched length, paired differences,
influence with its references and the probe's seeds. What is checked is what is drawn and shown."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from gui import style
from tests.gui import fake_report
from tests.gui.memory_driving import assert_drawn, choose, choose_by_keyboard, drawn, hover, nan, open_report, visible_names


@pytest.fixture
def seven():
    with fake_report.stand_ins_registered() as keys:
        yield keys


@pytest.fixture
def fake(tmp_path, seven):
    return fake_report.write_report(tmp_path)


def test_theme_recall_shows_the_excess_over_the_rhythm_matched_floor_by_default(window, user, fake, seven):
    open_report(user, window, fake)
    tab = window.memory_tab
    report = json.loads(fake.read_text())
    plot = tab.per_bar_plots["TR"]
    bar = tab.view_bar
    assert bar.floor_buttons["rhythm_matched"].isChecked() and bar.excess_button.isChecked()
    assert "over the rhythm-matched floor" in plot.title.text() and "temperature 1.0, all meters" in plot.title.text()
    block = report["by_temperature"]["1.0"]
    assert visible_names(plot) == [*(style.model_label(k) for k in seven), "human reference"]
    assert_drawn(plot, "vanilla RNN", block["TR_excess"]["rnn"])
    assert_drawn(plot, "human reference", block["TR_excess"]["human"])
    _x, human = drawn(plot, "human reference")
    assert np.isnan(human[fake_report.HUMAN_REACHES:]).all()  # n < min_n: not drawn
    bottom, top = plot.plot.getPlotItem().vb.viewRange()[1]
    assert bottom < 0 < top  # the chance line is 0 and inside the axis
    # the band (the paired interval) stops where the human line stops: never drawn from too few primers
    assert plot.band_stretches("human reference") == [(1.0, float(fake_report.HUMAN_REACHES))]


def test_the_random_floor_is_a_second_line_with_its_own_paired_interval(window, user, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    block = json.loads(fake.read_text())["by_temperature"]["1.0"]
    plot = tab.per_bar_plots["TR"]
    user.click("random partner")
    assert "over the random-partner floor" in plot.title.text() and "no interval" not in plot.title.text()
    assert_drawn(plot, "LSTM", block["TR_excess_random"]["lstm"])
    assert plot.band_stretches("LSTM") == [(1.0, 12.0)]
    phase = tab.per_bar_plots["TR_phase"]  # no random floor for the phase-robust form: drawn raw, and said
    assert_drawn(phase, "LSTM", block["TR_phase"]["lstm"])
    assert "this report has no random-partner floor for it" in phase.title.text()
    user.click("raw TR, own floor")
    assert "random-partner floor dotted" in plot.title.text()
    assert_drawn(plot, "LSTM: own floor", block["TR_floor_random"]["lstm"])
    user.click("rhythm-matched")
    assert_drawn(plot, "LSTM: own floor", block["TR_floor"]["lstm"])
    assert_drawn(plot, "LSTM", block["TR"]["lstm"])
    user.click("TR over its floor")
    assert_drawn(plot, "LSTM", block["TR_excess"]["lstm"])


def test_without_a_paired_excess_the_random_floor_draws_no_made_up_interval(window, user, tmp_path, seven):
    report = fake_report.build_report()
    for block in report["by_temperature"].values():
        block.pop("TR_excess_random")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    open_report(user, window, path)
    plot = window.memory_tab.per_bar_plots["TR"]
    user.click("random partner")
    assert "a difference of means, so no interval" in plot.title.text()
    block = report["by_temperature"]["1.0"]
    tr, floor = nan(block["TR"]["lstm"]["mean"]), nan(block["TR_floor_random"]["lstm"]["mean"])
    _x, y = drawn(plot, "LSTM")
    np.testing.assert_allclose(y, tr - floor, atol=1e-6)
    assert plot.band_stretches("LSTM") == []  # a paired interval cannot come from two marginal ones


def test_the_temperature_switch_covers_the_sweep_and_redraws_in_place(window, user, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    report = json.loads(fake.read_text())
    assert list(tab.view_bar.temperature_buttons) == fake_report.TEMPERATURES  # 0.7, 0.8, 0.9, 1.0
    item = tab.per_bar_plots["TR"].lines["RNN + attention"].curve
    user.click("0.8")
    assert tab.view_bar.temperature_buttons["0.8"].isChecked() and not tab.view_bar.temperature_buttons["1.0"].isChecked()
    block = report["by_temperature"]["0.8"]
    assert_drawn(tab.per_bar_plots["TR"], "RNN + attention", block["TR_excess"]["attention"])
    assert tab.per_bar_plots["TR"].lines["RNN + attention"].curve is item  # setData on the same item
    assert_drawn(tab.per_bar_plots["RR"], "floor (another tune)", block["RR"]["floor"])
    assert_drawn(tab.per_bar_plots["IK"], "vanilla RNN", block["IK"]["rnn"])
    rates = report["distinct_bar_rate_by_temperature"]["0.8"]
    assert tab.controls.all_bars_plot.series["vanilla RNN"].y[0] == rates["rnn"]["mean"]
    rnn = rates["rnn"]
    assert tab.table.cell("rnn", "distinct_bar_rate") == f"{rnn['mean']:.3f} [{rnn['lo']:.3f}, {rnn['hi']:.3f}]\nn {rnn['n']}"
    assert "temperature 0.8" in tab.table_title.text() and "temperature 0.8" in tab.controls.all_bars_plot.title.text()
    # the view and the temperature stay as chosen when the same report is opened again
    user.click("raw TR, own floor")
    tab.open_report(fake)
    assert tab.view_bar.temperature_row.count() == 4
    QApplication.processEvents()
    assert tab.view_bar.raw_button.isChecked() and tab.view_bar.temperature_buttons["0.8"].isChecked()
    assert_drawn(tab.per_bar_plots["TR"], "vanilla RNN", block["TR"]["rnn"])


def test_late_bar_excess_against_temperature_per_model(window, user, fake, seven):
    open_report(user, window, fake)
    plot = window.memory_tab.controls.sweep_plot
    report = json.loads(fake.read_text())
    assert [n for n in visible_names(plot)] == [style.model_label(k) for k in seven]  # human: too few primers
    for key in seven:
        x, y = drawn(plot, style.model_label(key))
        rows = [next(r for r in report["summary_by_temperature"][t] if r["source"] == key)
                for t in fake_report.TEMPERATURES]
        np.testing.assert_allclose(x, [float(t) for t in fake_report.TEMPERATURES])
        np.testing.assert_allclose(y, [r["TR_excess_last"]["mean"] for r in rows])
    assert "bars 5-12" in plot.title.text() and "rhythm-matched floor" in plot.title.text()
    assert "change order here: LSTM and Transformer;" in plot.caption.text()  # its order depends on T


def test_pitch_only_and_phase_robust_recall_beside_tr_and_rr(window, user, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    block = json.loads(fake.read_text())["by_temperature"]["1.0"]
    assert list(tab.per_bar_plots)[:4] == ["TR", "TR_phase", "PTR", "RR"]
    assert_drawn(tab.per_bar_plots["TR_phase"], "GRU", block["TR_phase_excess"]["gru"])
    assert_drawn(tab.per_bar_plots["PTR"], "human reference", block["PTR_excess"]["human"])
    assert "Pitch-only recall over the rhythm-matched floor" in tab.per_bar_plots["PTR"].title.text()
    assert "Phase-robust theme recall over" in tab.per_bar_plots["TR_phase"].title.text()
    user.click("raw TR, own floor")  # raw, with each source's own floor dotted, for the companions too
    assert_drawn(tab.per_bar_plots["PTR"], "GRU", block["PTR"]["gru"])
    assert_drawn(tab.per_bar_plots["PTR"], "GRU: own floor", block["PTR_floor"]["gru"])
    assert_drawn(tab.per_bar_plots["TR_phase"], "GRU", block["TR_phase"]["gru"])
    # side by side: phase-robust beside the bar grid, pitch beside rhythm
    y = {m: tab.per_bar_plots[m].mapTo(tab.scroll.widget(), tab.per_bar_plots[m].rect().topLeft()).y()
         for m in ("TR", "TR_phase", "PTR", "RR")}
    assert y["TR"] == y["TR_phase"] and y["PTR"] == y["RR"] > y["TR"]


def test_paired_differences_list_every_pair_with_interval_and_n(window, user, fake, seven):
    open_report(user, window, fake)
    paired = window.memory_tab.paired
    report = json.loads(fake.read_text())
    n_pairs = len(seven) * (len(seven) - 1) // 2 + len(seven)
    assert paired.table.rowCount() == n_pairs and paired.table.isVisible()
    assert paired.table.item(0, 0).text() == "vanilla RNN - LSTM"
    assert paired.table.item(n_pairs - 1, 0).text() == "minGRU - human reference"  # the pairs with the human last
    figure = report["paired"]["lstm-gru"]["bars 5-12"]
    assert paired.cell("lstm", "gru", "bars 5-12") == (f"{figure['mean']:+.3f} [{figure['lo']:+.3f}, "
                                                       f"{figure['hi']:+.3f}], n {figure['n']}")
    row = next(r for r in range(n_pairs) if paired.table.item(r, 0).text() == "LSTM - GRU")
    assert "no difference shown" in paired.table.item(row, 1).toolTip()  # its interval holds 0
    row = next(r for r in range(n_pairs) if paired.table.item(r, 0).text() == "vanilla RNN - Transformer")
    assert paired.table.item(row, 1).font().bold() and "Transformer higher" in paired.table.item(row, 1).toolTip()
    # at the temperature shown, and for the other measures at the report's own temperature
    user.click("0.8")
    figure = report["paired_by_temperature"]["0.8"]["lstm-gru"]["bars 1-8"]
    assert paired.cell("lstm", "gru", "bars 1-8").startswith(f"{figure['mean']:+.3f} [")
    assert "temperature 0.8" in paired.title.text()
    choose(user, paired.series_box, "pitch-only recall over its floor")
    figure = report["paired_by_series"]["PTR_excess"]["lstm-gru"]["bars 1-8"]
    assert paired.cell("lstm", "gru", "bars 1-8").startswith(f"{figure['mean']:+.3f} [")
    assert "pitch-only recall" in paired.title.text() and "temperature 1.0 only" in paired.caption.text()


def test_the_distinct_bar_rate_at_matched_length_beside_the_full_length_figure(window, user, fake, seven):
    open_report(user, window, fake)
    tab = window.memory_tab
    report = json.loads(fake.read_text())
    matched, full = tab.controls.matched_plot, tab.controls.all_bars_plot
    assert "at matched length" in matched.title.text() and "over all 12 bars" in full.title.text()
    assert list(matched.series) == [*(style.model_label(k) for k in seven), "human reference"]
    for key in [*seven, "human"]:
        assert matched.series[style.model_label(key)].y[0] == report["distinct_bar_rate_matched"][key]["mean"]
    text = hover(user.qtbot, tab, matched, 0.5, 1.0)
    human = report["distinct_bar_rate_matched"]["human"]
    assert f"human reference: {human['mean']:.3f} [{human['lo']:.3f}, {human['hi']:.3f}], n 36" in text
    diff = report["distinct_bar_rate_matched_paired"]["transformer-human"]
    assert f"(minus human {diff['mean']:+.3f} [{diff['lo']:+.3f}, {diff['hi']:+.3f}], n 36)" in text
    user.click("0.7")
    rates = report["distinct_bar_rate_matched_by_temperature"]["0.7"]
    assert matched.series["LSTM"].y[0] == rates["lstm"]["mean"] and "temperature 0.7" in matched.title.text()
    assert tab.table.cell("lstm", "distinct_bar_rate_matched").startswith(f"{rates['lstm']['mean']:.3f} [")


def test_influence_is_drawn_between_its_two_references(window, user, qtbot, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    block = fake_report.INFLUENCE
    assert tab.influence.isVisible()
    assert "gradient, 16-bar continuations of 30 primers, temperature 1.0" in tab.influence.histogram_plot.title.text()
    counts = np.array(block["rnn"]["histogram"]["counts"], dtype=float)
    np.testing.assert_allclose(tab.influence.histogram_plot.series["vanilla RNN"].y, counts / counts.sum())
    text = hover(qtbot, tab, tab.influence.mean_plot, 1.0, 1.0)
    attention = block["attention"]
    assert (f"RNN + attention: {attention['mean']:.2f} [{attention['lo']:.2f}, {attention['hi']:.2f}], n 30 "
            f"(previous note 0.30, uniform {attention['chance']:.2f}, median") in text
    share = attention["share_on_primer"]
    assert f"on the primer {share['mean']:.0%}, n 30" in text
    assert "previous note" in tab.influence.mean_plot.caption.text()
    assert tab.table.cell("attention", "share_on_primer") == (
        f"{share['mean']:.1%} [{share['lo']:.1%}, {share['hi']:.1%}]\nn 30")


def test_the_probe_shows_its_three_seeds_and_bars_of_sixteen_steps(window, user, qtbot, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    probe = json.loads(fake.read_text())["probe"]
    plot = tab.probe.plot
    assert "gaps in bars of 16 steps, 3 seeds per model" in plot.title.text()
    per_seed = np.array([r["accuracy"] for r in probe["models"]["gru"]["by_seed"].values()])
    series = plot.series["GRU"]
    np.testing.assert_allclose(series.lo, per_seed.min(axis=0))
    np.testing.assert_allclose(series.hi, per_seed.max(axis=0))
    text = hover(qtbot, tab, plot, np.log10(4), 0.5)
    assert f"GRU: {probe['models']['gru']['accuracy'][2]:.2f} [" in text and ", n 3 (seeds' range" in text
    assert "platform" in plot.caption.text()


def test_the_meter_filter_draws_one_meter_and_says_when_it_has_too_few_primers(window, user, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    box = tab.view_bar.meter_box
    report = json.loads(fake.read_text())
    items = [box.itemText(i) for i in range(box.count())]
    assert items == ["all meters (36 primers)", "6/8 (30 primers)", "2/4 (6 primers: too few)"]
    assert sorted(x for x, _label, _tip in tab.per_bar_plots["TR"].marks) == [5.8333, 8.5]
    choose(user, box, "6/8 (30 primers)")
    block = report["by_temperature_and_meter"]["1.0"]["6/8"]
    assert_drawn(tab.per_bar_plots["TR"], "vanilla RNN", block["TR_excess"]["rnn"])
    assert_drawn(tab.per_bar_plots["RR"], "human reference", block["RR"]["human"])
    assert "6/8 (30 primers)" in tab.per_bar_plots["RR"].title.text()
    for plot in tab.per_bar_plots.values():  # the window and the training crop of 6/8, on every per-bar plot
        assert {label: x for x, label, _tip in plot.marks} == {"window": 5.8333, "crop": 1.8333}
        assert plot.notice_text == ""
    user.click("0.7")  # the meter stays chosen
    assert_drawn(tab.per_bar_plots["TR"], "vanilla RNN", report["by_temperature_and_meter"]["0.7"]["6/8"]["TR_excess"]["rnn"])
    choose(user, box, "2/4 (6 primers: too few)")
    for metric, plot in tab.per_bar_plots.items():
        assert not any(np.isfinite(y).any() for _x, y in plot.drawn.values()), metric  # nothing drawn ...
        assert "6 primers in 2/4" in plot.notice_text and "min_n = 10" in plot.notice_text  # ... and it says why
    choose(user, box, "all meters (36 primers)")
    assert all(plot.notice_text == "" for plot in tab.per_bar_plots.values())


def test_hovering_a_bar_shows_each_value_its_interval_and_n(window, user, qtbot, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    block = json.loads(fake.read_text())["by_temperature"]["1.0"]["TR_excess"]
    plot = tab.per_bar_plots["TR"]
    text = hover(qtbot, tab, plot, 2.0, 0.4)
    rnn = block["rnn"]
    assert text.splitlines()[0] == "bar 2"
    assert f"vanilla RNN: {rnn['mean'][1]:.3f} [{rnn['lo'][1]:.3f}, {rnn['hi'][1]:.3f}], n 36" in text
    text = hover(qtbot, tab, plot, 9.0, 0.4)  # the human reference rests on 8 primers there
    assert "bar 9" in text and "human reference: not drawn: n 8 < 10" in text and "vanilla RNN: " in text


def test_every_per_model_view_lists_the_seven_models(window, user, fake, seven):
    open_report(user, window, fake)
    tab = window.memory_tab
    labels = [style.model_label(k) for k in seven]
    for plot in [tab.recall.plot, *tab.per_bar_plots.values(), tab.controls.sweep_plot, tab.model_side.nll_bar_plot,
                 tab.model_side.context_plot, tab.model_side.gradient_plot, tab.probe.plot]:
        assert [n for n in visible_names(plot) if n in labels] == labels, plot.title.text()
    for plot in [tab.controls.matched_plot, tab.controls.all_bars_plot, tab.model_side.length_plot,
                 tab.model_side.repeat_plot, tab.influence.mean_plot]:
        assert [n for n in plot.series if n in labels] == labels, plot.title.text()
    assert [tab.table.item(r, 0).data(0x0100) for r in range(tab.table.rowCount())] == [*seven, "human", "floor"]


def test_an_older_report_opens_and_each_view_says_what_it_lacks(window, user, tmp_path, seven):
    old = fake_report.before_recall(fake_report.build_report())
    path = tmp_path / "report-2026.json"
    path.write_text(json.dumps(old))
    open_report(user, window, path)
    tab = window.memory_tab
    bar = tab.view_bar
    assert bar.floor_buttons["random"].isChecked() and not bar.floor_buttons["rhythm_matched"].isEnabled()
    assert "over the random-partner floor" in tab.per_bar_plots["TR"].title.text()
    assert_drawn(tab.per_bar_plots["TR"], "LSTM", old["by_temperature"]["1.0"]["TR_excess"]["lstm"])
    assert "no pitch-only recall" in tab.per_bar_plots["PTR"].notice_text
    assert "no paired differences" in tab.paired.caption.text() and not tab.paired.table.isVisible()
    assert "made before" in tab.controls.matched_plot.notice_text
    assert "no previous-note reference" in tab.influence.mean_plot.caption.text()
    # its influence entries sit under influence.models (the layout before influence.<model>): still drawn
    counts = np.array(old["influence"]["models"]["rnn"]["histogram"]["counts"], dtype=float)
    np.testing.assert_allclose(tab.influence.histogram_plot.series["vanilla RNN"].y, counts / counts.sum())
    labels = [style.model_label(k) for k in seven]
    assert [n for n in tab.influence.mean_plot.series if n in labels] == labels
    assert "one seed" in tab.probe.plot.title.text()


def test_a_report_of_the_first_format_shows_raw_theme_recall_with_the_shared_floor(window, user, tmp_path):
    old = fake_report.first_format(fake_report.build_report())
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    open_report(user, window, path)
    tab = window.memory_tab
    assert not tab.view_bar.excess_button.isEnabled() and tab.view_bar.raw_button.isChecked()
    assert "floor (another tune)" in visible_names(tab.per_bar_plots["TR"])
    assert not tab.view_bar.temperature_buttons and tab.view_bar.meter_box.count() == 1
    assert not tab.influence.isVisible()
    assert "one temperature" in tab.controls.sweep_plot.notice_text or "no temperatures" in tab.controls.sweep_plot.notice_text


def test_the_shipped_report_draws_its_numbers_in_every_view(window, user):
    """docs/report.json, the report the bundled models ship with (made before recall by distance and the
    rhythm-matched floor): every temperature and meter, and the views it lacks say so."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "docs" / "report.json"
    report = json.loads(path.read_text())
    open_report(user, window, path)
    tab = window.memory_tab
    least = report["settings"]["min_n"]
    for t in report["settings"]["temperatures"]:
        key = str(float(t))
        user.click(key)
        for meter, info in report["meters"].items():
            few = info["primers"] < least
            # the walk by keyboard (the mouse's choice is the one after it, and the other tests')
            choose_by_keyboard(tab.view_bar.meter_box, f"{meter} ({info['primers']} primers{': too few' if few else ''})")
            block = report["by_temperature_and_meter"][key][meter]
            for src in report["models"]:
                assert_drawn(tab.per_bar_plots["TR"], style.model_label(src), block["TR_excess"][src])
            assert bool(tab.per_bar_plots["TR"].notice_text) == few, (key, meter)
        choose(user, tab.view_bar.meter_box, f"all meters ({len(report['primers'])} primers)")
        assert_drawn(tab.per_bar_plots["TR"], "human reference", report["by_temperature"][key]["TR_excess"]["human"])
    if "recall_by_distance_steps" not in report:
        assert "no recall by distance" in tab.recall.plot.notice_text
