"""The report's recall-by-distance keys (issue 23; docs/design.md section 5, "Recall by distance"), for the models
of a run and of its extra seed runs, per training seed and as the mean over seeds.

Keys written (gui/memory/recall_data.py reads them):
- `recall_by_distance.<model>` (distance in bars), `recall_by_distance_steps.<model>` (in steps): {buckets,
  edges, mean, lo, hi, n, n_tunes, control, distance_mean}, one value per bucket, null below min_n tunes;
- `memory_horizon_bars.<model>`, `memory_horizon_steps.<model>`, `half_recall_steps.<model>`;
- `length_generation.<model>` and `length_generation_worse` (the length check in the generation regime,
  engine/memory/recall_length.py);
- the same under `seeds.<seed>` for every training seed (a run's seed is its config's `training.seed`).
The top level is the mean over seeds: per tune, its value in a bucket averaged over the seeds, then the
bootstrap over tunes as for one seed; the length check's top level is the main run's.

One plan (engine/memory/recall_plan.py) serves every model and seed. With `processes` > 1 the (run, model)
pairs are measured in worker processes (engine/core/processes.run_jobs), each loading its model from the run
folder.
"""

from __future__ import annotations

import warnings
from functools import partial
from itertools import count
from pathlib import Path

import numpy as np

from engine.core.errors import UserError

KEYS = ("recall_by_distance", "recall_by_distance_steps", "memory_horizon_bars", "memory_horizon_steps",
        "half_recall_steps")


def run_seed(config: dict) -> int:
    return int((config.get("training") or {}).get("seed", 0))


def seed_runs(main_dir: Path, main_seed: int, extra: list, keys: list[str]) -> dict[int, Path]:
    """{seed: run folder}: the main run and each extra run (the models of `keys` it holds), one run per seed."""
    from engine.training.checkpoint import list_run_models, read_config, resolve_run_dir

    runs = {main_seed: Path(main_dir)}
    for given in extra or []:
        folder = resolve_run_dir(given)
        if not folder.is_dir():
            raise UserError(f"--seeds {given}: no such run directory")
        held = [k for k in keys if k in list_run_models(folder)]
        if not held:
            raise UserError(f"--seeds {given}: none of {', '.join(keys)} is trained in this run directory")
        seeds = {run_seed(read_config(folder / k)) for k in held}
        if len(seeds) != 1:
            raise UserError(f"--seeds {given}: its models were trained with different seeds ({sorted(seeds)})")
        seed = seeds.pop()
        if seed in runs:
            raise UserError(f"--seeds {given}: seed {seed} is already measured ({runs[seed]})")
        runs[seed] = folder
    return runs


def check_seed_runs(run_dir, keys: list[str], extra: list) -> None:
    """--seeds looked at before the evaluation computes (the recall section comes after the sampling, which
    took minutes before a mistyped folder was found)."""
    from engine.training.checkpoint import read_config

    seed_runs(Path(run_dir), run_seed(read_config(Path(run_dir) / keys[0])), list(extra), keys)


def _measure(model, plan, crop, settings, progress=None) -> dict:
    from engine.memory.recall import target_bits
    from engine.memory.recall_length import length_generation

    bits = target_bits(model, plan, progress)
    length = length_generation(model, plan.materials, crop, settings.bootstrap, settings.seed, settings.min_n,
                               2 * settings.nll_bars)
    return {"bits": bits, "length": length}


def _worker(run_dir: str, key: str, plan, settings, stop=None) -> dict:
    """One (run, model) in a worker process (engine/core/processes.run_jobs): the model loaded from its folder."""
    from engine.training.checkpoint import load_model

    return _measure_model(load_model(run_dir, key, "cpu"), plan, settings)


def _measure_model(loaded, plan, settings, progress=None) -> dict:
    from engine.memory.recall_length import training_crop

    return _measure(loaded.model, plan, training_crop(loaded.model, loaded.config), settings, progress)


def recall_section(run_dir, keys: list[str], loaded: dict, test, test_tokens, vocab_size: int, settings,
                   extra_runs=(), say=None, cancel=None) -> dict:
    """The report entries of this module's docstring; `loaded` holds the main run's models (LoadedModel).
    With settings.processes > 1 each (run, model) is measured in a worker process; setting `cancel` raises
    EvaluationCancelled."""
    from engine.core.processes import run_jobs
    from engine.evaluation.settings import EvaluationCancelled
    from engine.memory.recall_plan import make_plan
    from engine.training.checkpoint import load_model

    main_seed = run_seed(loaded[keys[0]].config)
    runs = seed_runs(Path(run_dir), main_seed, list(extra_runs), keys)
    if say:
        say("recall", "recall by distance: choosing target bars and foreign bars")
    plan = make_plan(test, test_tokens, vocab_size, settings.seed)
    pairs = [(seed, key) for seed, folder in runs.items() for key in keys
             if seed == main_seed or (folder / key).is_dir()]

    seed_of = {str(folder): seed for seed, folder in runs.items()}

    def here(folder: str, key: str, stop=None) -> dict:
        """The same measure in this process, on the main run's models as loaded."""
        seed = seed_of[folder]
        n = pairs.index((seed, key))

        def progress(step, total):
            if say:
                say("recall", f"recall by distance: {key} (seed {seed}), {step}/{total} sequences", n, len(pairs), key)
        return _measure_model(loaded[key] if seed == main_seed else load_model(folder, key, "cpu"), plan, settings,
                              progress)

    finished_jobs = count(1)

    def finished(n: int, _result) -> None:
        if say and settings.processes > 1:
            seed, key = pairs[n]
            say("recall", f"recall by distance: {key} (seed {seed}) done", next(finished_jobs), len(pairs), key)

    measured = run_jobs(partial(_worker, plan=plan, settings=settings), [(str(runs[s]), k) for s, k in pairs],
                        settings.processes, inline=here, cancel=cancel, cancelled=EvaluationCancelled,
                        on_result=finished)
    return assemble(plan, dict(zip(pairs, measured)), keys, main_seed, settings, runs)


def assemble(plan, results: dict, keys: list[str], main_seed: int, settings, runs: dict) -> dict:
    """The report entries from each (seed, model)'s per-target bits and length check."""
    seeds = sorted({seed for seed, _ in results})
    per_seed = {str(seed): figures(plan, {k: [results[(seed, k)]["bits"]] for k in keys if (seed, k) in results},
                                    settings) for seed in seeds}
    for seed in seeds:
        lengths = {k: results[(seed, k)]["length"] for k in keys if (seed, k) in results}
        per_seed[str(seed)]["length_generation"] = lengths
        per_seed[str(seed)]["length_generation_worse"] = [k for k, v in lengths.items() if v.get("worse_past_crop")]
    mean = figures(plan, {k: [results[(s, k)]["bits"] for s in seeds if (s, k) in results] for k in keys},
                    settings)
    main = per_seed[str(main_seed)]
    out = {**mean, "length_generation": main["length_generation"],
           "length_generation_worse": main["length_generation_worse"], "seeds": per_seed}
    out["recall_settings"] = {**plan.summary(), "seeds": seeds, "runs": {str(s): runs[s].name for s in seeds},
                              "main_seed": main_seed}
    return out


def figures(plan, bits_by_model: dict[str, list[dict]], settings) -> dict:
    """The KEYS for each model from its seeds' per-target bits (one seed: that seed's figures)."""
    from engine.memory.recall import curve, half_recall, horizon, per_tune_matrix, short_range

    out = {k: {} for k in KEYS}
    for key, runs in bits_by_model.items():
        if not runs:
            continue
        references = np.nanmean([short_range(plan, r["excess"]) for r in runs], axis=0) \
            if len(runs) > 1 else short_range(plan, runs[0]["excess"])
        finite = references[np.isfinite(references)]
        reference = float(finite.mean()) if len(finite) >= settings.min_n else None
        for unit, name in (("bars", "recall_by_distance"), ("steps", "recall_by_distance_steps")):
            excess, control = [], []
            for r in runs:
                e, n, distance = per_tune_matrix(plan, r["excess"], unit)
                c, _, _ = per_tune_matrix(plan, r["control_bits"], unit)
                excess.append(e)
                control.append(c)
            with warnings.catch_warnings():  # a tune without targets in a bucket is NaN in every seed
                warnings.simplefilter("ignore", RuntimeWarning)
                e_mean, c_mean = np.nanmean(excess, axis=0), np.nanmean(control, axis=0)
            st = curve(e_mean, c_mean, n, distance, unit, settings.bootstrap, settings.seed, settings.min_n)
            st["short_range_bits"] = None if reference is None else round(reference, 4)
            out[name][key] = st
            out["memory_horizon_" + unit][key] = horizon(st, reference)
            if unit == "steps":
                out["half_recall_steps"][key] = half_recall(st, reference)
    return out

