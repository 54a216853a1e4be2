"""Early stopping under decaying learning-rate schedules (HyperbandScheduler(schedule=...)):
synthetic learning curves whose early order a cosine, step or warm-up schedule inverts, the
rank guard that keeps the rungs from stopping the eventual best trial, the unchanged
constant-rate behaviour, validation of the schedule, and resume of a journal."""
import json
import math

import pytest

from repurpose.bo import Real, SearchSpace
from repurpose.bo.scheduler import HyperbandScheduler, minimize_with_early_stopping
from repurpose.exceptions import InvalidParameterError

FAST = dict(n_candidates=64, n_local=1, n_restarts=1)
SPACE = SearchSpace({"x": Real(0.0, 1.0)})
MAX = 9  # epochs; eta=3, min_budget=1: brackets with rungs at 1 and 3 epochs


def cosine(budget):
    """Learning rate of the epoch ending at ``budget`` (cosine over MAX epochs)."""
    return 0.5 * (1.0 + math.cos(math.pi * (math.ceil(budget) - 1) / MAX))


def step(budget):
    """x0.1 from epoch 6 on."""
    return 1.0 if budget < 6 else 0.1


def warmup_cosine(budget):
    """Two warm-up epochs, then cosine."""
    epoch = math.ceil(budget) - 1
    if epoch < 2:
        return (epoch + 1) / 3
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - 2) / (MAX - 2)))


def final(p):
    return (p["x"] - 0.8) ** 2


def inverted(schedule):
    """A training curve whose order the high rate inverts: while the rate is high, the
    configurations that end best are the worst (they take the largest steps), as at the
    peak of a cosine; once it has fallen, the final order shows."""
    peak, last = max(schedule(b) for b in range(1, MAX + 1)), schedule(MAX)

    def train(p, report):
        for epoch in range(1, MAX + 1):
            noise = 2.0 * (schedule(epoch) - last) / (peak - last)  # falls with the rate
            report(epoch, final(p) + noise * (1.0 - final(p)))
    return train


def in_order(p, report):
    """Early order = final order (the high rate only scales the values)."""
    for epoch in range(1, MAX + 1):
        report(epoch, final(p) * (1.0 + 3.0 * cosine(epoch)))


def eventual_best(res):
    return min(res.history, key=lambda t: final(t.params))


@pytest.mark.parametrize("schedule", [cosine, step, warmup_cosine],
                         ids=["cosine", "step", "warmup-cosine"])
def test_rank_guard_keeps_the_eventual_best_trial(schedule):
    kwargs = dict(max_budget=MAX, n_trials=14, seed=0, optimizer_options=FAST)
    old = minimize_with_early_stopping(inverted(schedule), SPACE, **kwargs)
    new = minimize_with_early_stopping(inverted(schedule), SPACE, schedule=schedule, **kwargs)
    # Without the schedule, the rungs keep the trials that look best early, the ones that
    # end worst, and stop the eventual best trial (seen: all three schedules).
    best_old = eventual_best(old)
    assert best_old.status == "stopped" and best_old.stop_reason == "rung"
    assert old.best_value > final(best_old.params) + 0.01
    # Told the schedule, the scheduler sees from its completed trials that the values at
    # these rungs do not rank the final ones, and does not stop there (under warm-up the
    # first epoch runs at a low rate and does rank them: its rung may stop, rightly).
    best_new = eventual_best(new)
    assert best_new.status == "completed"
    assert new.best_value == pytest.approx(final(best_new.params))
    assert new.best_value < old.best_value
    assert all(final(t.params) > new.best_value - 1e-4 for t in new.history
               if t.status == "stopped")  # no stopped trial would have done better
    if schedule is not warmup_cosine:
        assert not any(t.stop_reason == "rung" for t in new.history)


def test_rungs_still_stop_where_early_values_rank_the_final_ones():
    res = minimize_with_early_stopping(in_order, SPACE, MAX, n_trials=20, seed=0,
                                       optimizer_options=FAST, schedule=cosine)
    rung_stops = [t for t in res.history if t.stop_reason == "rung"]
    assert rung_stops and res.total_budget_used < 20 * MAX
    assert eventual_best(res).status == "completed"
    # A stopped trial is told the final value of the completed trials it matched at its
    # last budget: within their range, never better than the best of them.
    finals = [t.values[-1] for t in res.history if t.status == "completed"]
    for t in rung_stops:
        assert min(finals) <= t.told_value <= max(finals)
        assert t.predicted_final == pytest.approx(t.told_value) or t.told_value == min(finals)


def test_a_constant_schedule_changes_nothing():
    def train(p, report):  # the curve of test_scheduler.py: rung and curve stops
        for epoch in range(1, 28):
            report(epoch, final(p) + math.exp(-epoch / (3.0 + 3.0 * p["x"])))

    runs = [minimize_with_early_stopping(train, SPACE, 27, n_trials=10, seed=1,
                                         optimizer_options=FAST, schedule=schedule)
            for schedule in (None, lambda b: 0.01)]
    a, b = ([(t.params, t.budgets, t.status, t.stop_reason, t.told_value) for t in r.history]
            for r in runs)
    assert a == b
    assert {t.stop_reason for t in runs[0].history} >= {"rung"}


def test_high_rate_spikes_are_compared_by_the_best_value_so_far():
    """Under a decaying schedule a rung compares each trial's best value so far: a trial
    whose value jumps up just at the rung (a high-rate spike) is judged by what it had
    reached."""
    sched = HyperbandScheduler(SPACE, 9, eta=3, seed=0, optimizer_options=FAST,
                               schedule=cosine)
    plain = HyperbandScheduler(SPACE, 9, eta=3, seed=0, optimizer_options=FAST)

    def spiky(p, report):  # x < 0.5: a spike at epoch 3; the best values so far rank right
        for epoch in range(1, MAX + 1):
            value = final(p) + 1.0 / epoch
            report(epoch, value + (5.0 if epoch == 3 and p["x"] < 0.5 else 0.0))

    for s in (sched, plain):
        s.run(spiky, n_trials=12)
    entries = {id(s): sorted(v for (b, k), vals in s._rung_values.items() if k == 1
                             for v in vals) for s in (sched, plain)}
    assert max(entries[id(sched)]) < 5.0 <= max(entries[id(plain)])


@pytest.mark.parametrize("schedule, words", [
    ("cosine", "schedule must be None or a callable budget -> learning rate"),
    (lambda b: 1 / 0, "schedule(1) raised ZeroDivisionError"),
    (lambda b: -0.1, "schedule(1) returned -0.1"),
    (lambda b: float("nan"), "schedule(1) returned nan"),
    (lambda b: True, "schedule(1) returned True"),
    (lambda b: "0.1", "schedule(1) returned '0.1'"),
    (lambda b: 0.0, "schedule returned 0 at every budget"),
])
def test_bad_schedule(schedule, words):
    with pytest.raises(InvalidParameterError, match=words.replace("(", r"\(")
                       .replace(")", r"\)").replace("+", r"\+")):
        HyperbandScheduler(SPACE, MAX, schedule=schedule)


def test_schedule_sampled_at_fractional_budgets():
    seen = []
    HyperbandScheduler(SPACE, 4.5, schedule=lambda b: seen.append(b) or 1.0 / b)
    assert len(seen) == 100 and seen[-1] == 4.5 and seen[0] == pytest.approx(0.045)


def test_journal_resume_with_a_schedule(tmp_path):
    path = tmp_path / "hb.jsonl"
    train = inverted(cosine)
    first = minimize_with_early_stopping(train, SPACE, MAX, n_trials=5, seed=0,
                                         optimizer_options=FAST, schedule=cosine,
                                         state_path=path)
    header = json.loads(path.read_text().splitlines()[0])
    assert header["settings"]["schedule"]["budgets"] == list(map(float, range(1, MAX + 1)))
    assert len(first.history) == 5
    # Resumed with the same schedule, or with none (the stored one is taken), it ends as an
    # uninterrupted run.
    straight = minimize_with_early_stopping(train, SPACE, MAX, n_trials=9, seed=0,
                                            optimizer_options=FAST, schedule=cosine)
    resumed = minimize_with_early_stopping(train, SPACE, MAX, n_trials=9, schedule=cosine,
                                           state_path=path)
    outcome = [(t.params, t.budgets, t.status, t.told_value) for t in straight.history]
    assert [(t.params, t.budgets, t.status, t.told_value)
            for t in resumed.history] == outcome
    again = HyperbandScheduler(SPACE, MAX, state_path=path)
    assert again._profile.to_dict() == header["settings"]["schedule"]
    assert [(t.params, t.status) for t in again.history] == [(t.params, t.status)
                                                             for t in straight.history]
    # Another schedule, or one given to a journal written without, is refused.
    with pytest.raises(InvalidParameterError, match="holds a run with another schedule"):
        HyperbandScheduler(SPACE, MAX, state_path=path, schedule=step)
    plain = tmp_path / "plain.jsonl"
    minimize_with_early_stopping(train, SPACE, MAX, n_trials=2, seed=0,
                                 optimizer_options=FAST, state_path=plain)
    assert "schedule" not in json.loads(plain.read_text().splitlines()[0])["settings"]
    with pytest.raises(InvalidParameterError, match="holds a run without a schedule"):
        HyperbandScheduler(SPACE, MAX, state_path=plain, schedule=cosine)
    assert len(HyperbandScheduler(SPACE, MAX, state_path=plain).history) == 2


def test_malformed_stored_schedule(tmp_path):
    path = tmp_path / "hb.jsonl"
    minimize_with_early_stopping(inverted(cosine), SPACE, MAX, n_trials=1, seed=0,
                                 optimizer_options=FAST, schedule=cosine, state_path=path)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["settings"]["schedule"] = {"budgets": [1.0, 2.0], "rates": [1.0]}
    path.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    with pytest.raises(InvalidParameterError, match="stored schedule is malformed"):
        HyperbandScheduler(SPACE, MAX, state_path=path)
