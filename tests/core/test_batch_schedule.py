"""The batching policy on a fake clock: admission, chunked prefill, decode, flush order, steering."""

from __future__ import annotations

import pytest

from stream.core.batch_schedule import (
    BatchRequest,
    BatchScheduler,
    Cancel,
    Finished,
    FlushDone,
    Pause,
    RefusalReason,
    Resume,
    ScheduleConfig,
    SetDeadline,
    StepPlan,
    Tokens,
)


def request(id: int, *, rows: int = 2, prefill: int = 10, priority: int = 0, deadline: float | None = None,
            first: int = 4, max_chunk: int | None = None, lookahead: int = 0, cap: int | None = None) -> BatchRequest:
    return BatchRequest(id=id, rows=rows, prefill_tokens=prefill, priority=priority, deadline=deadline,
                        first_chunk_tokens=first, max_chunk_tokens=max_chunk, lookahead_tokens=lookahead,
                        max_new_tokens=cap)


def scheduler(rows: int = 8, **kw) -> BatchScheduler:
    return BatchScheduler(ScheduleConfig(row_budget=rows, **kw))


def step(s: BatchScheduler, now: float) -> StepPlan:
    """One step: plan, then report a token for every decoded request (as a readback would)."""
    plan = s.plan(now)
    s.apply_all([Tokens(i, 1) for i in plan.decode], now)
    return plan


def test_admits_within_the_row_budget_and_queues_the_rest():
    s = scheduler(rows=4)
    for i in range(3):
        assert s.submit(request(i, rows=2), 0.0) is None
    plan = s.plan(0.0)
    assert [c.id for c in plan.prefill] == [0, 1]
    assert s.free_rows == 0 and s.queued == 1 and s.active == 2


def test_a_cfg_request_takes_two_rows_and_one_without_takes_one():
    s = scheduler(rows=3)
    s.submit(request(0, rows=2), 0.0)
    s.submit(request(1, rows=1), 0.0)
    s.plan(0.0)
    assert s.free_rows == 0


def test_the_head_of_the_queue_is_not_overtaken_by_a_smaller_request():
    s = scheduler(rows=3)
    s.submit(request(0, rows=2), 0.0)
    s.submit(request(1, rows=2), 0.0)
    s.submit(request(2, rows=1), 0.0)
    plan = s.plan(0.0)
    assert [c.id for c in plan.prefill] == [0]
    assert s.free_rows == 1  # request 2 would fit, but 1 is ahead of it


def test_refuses_a_request_larger_than_the_budget():
    s = scheduler(rows=1)
    refused = s.submit(request(0, rows=2), 0.0)
    assert refused is not None and refused.reason is RefusalReason.TOO_LARGE
    assert "2 decoding rows" in refused.message and 0 not in s


def test_refuses_only_when_the_expected_wait_exceeds_the_bound():
    s = scheduler(rows=2, expected_service_s=2.0, max_queue_wait_s=5.0)
    results = [s.submit(request(i, rows=2), 0.0) for i in range(5)]
    # 1 runs at once; 2 more wait one and two service times (2 s, 4 s); the next would wait 6 s.
    assert results[:3] == [None, None, None]
    assert s.expected_wait_s(0.0, priority=0, rows=2) == pytest.approx(6.0)
    refused = results[3]
    assert refused is not None and refused.reason is RefusalReason.QUEUE_WAIT
    assert "expected wait 6.0 s exceeds 5 s" in refused.message
    assert 3 not in s and 4 not in s


def test_chunked_prefill_holds_decoding_rows_back_by_at_most_one_chunk_per_step():
    s = scheduler(rows=8, prefill_chunk_tokens=16)
    s.submit(request(0, prefill=4), 0.0)
    plan = step(s, 0.0)
    assert [(c.id, c.start, c.end, c.last) for c in plan.prefill] == [(0, 0, 4, True)]
    assert plan.decode == [0]                       # decodes in the step its prefill ends
    s.submit(request(1, prefill=40), 0.0)
    chunks = []
    for t in range(1, 5):
        plan = step(s, float(t))
        assert 0 in plan.decode                       # never stalled
        assert sum(c.end - c.start for c in plan.prefill) <= 16
        chunks += [(c.start, c.end, c.last) for c in plan.prefill]
        assert (1 in plan.decode) == chunks[-1][2]
    assert chunks == [(0, 16, False), (16, 32, False), (32, 40, True)]


def test_every_active_unpaused_request_decodes_every_step():
    s = scheduler(rows=8, prefill_chunk_tokens=1000)
    for i in range(4):
        s.submit(request(i, rows=2), 0.0)
    for t in range(10):
        assert sorted(step(s, float(t)).decode) == [0, 1, 2, 3]


def test_flushes_follow_the_requests_own_chunk_sizes():
    s = scheduler(rows=8, prefill_chunk_tokens=1000)
    s.submit(request(0, first=2, max_chunk=8, lookahead=3), 0.0)
    flushes = []
    for t in range(30):
        flushes += [(t, f.tokens, f.final) for f in step(s, float(t)).flush]
    # due at 2 + 3 tokens, then +4, +8, +8 ... (doubling up to the max); a token is read back per step.
    assert [tokens for _, tokens, _ in flushes] == [5, 9, 17, 25]
    assert all(not final for *_, final in flushes)


def test_a_finished_request_gets_its_final_flush_and_frees_its_rows():
    s = scheduler(rows=2, prefill_chunk_tokens=1000)
    s.submit(request(0, first=4), 0.0)
    s.submit(request(1), 0.0)
    for t in range(5):
        step(s, float(t))
    s.apply(Tokens(0, 1, done=True), 5.0)
    plan = s.plan(5.0)
    assert plan.release == [0] and 0 not in plan.decode
    assert [(f.id, f.tokens, f.final) for f in plan.flush] == [(0, 6, True)]
    assert 0 not in s
    assert [c.id for c in plan.prefill] == [1]    # its rows went to the queue in the same step


def test_the_token_cap_stops_decoding_without_waiting_for_eos():
    s = scheduler(rows=2, prefill_chunk_tokens=1000)
    s.submit(request(0, cap=3, first=100), 0.0)
    assert [bool(step(s, float(t)).decode) for t in range(4)] == [True, True, True, False]
    s.apply(Tokens(0, 0, done=True), 4.0)
    assert [f.final for f in s.plan(4.0).flush] == [True]


def test_flushes_go_to_a_listener_without_audio_first_then_earliest_deadline():
    s = scheduler(rows=8, prefill_chunk_tokens=1000, max_flush_batch=1)
    s.submit(request(0, priority=1, deadline=50.0), 0.0)   # listener playing, deadline far
    s.submit(request(1, priority=1, deadline=20.0), 0.0)   # listener playing, deadline near
    s.submit(request(2, priority=0), 0.0)                   # a first phrase: its listener has nothing yet
    order = []
    for t in range(8):
        plan = step(s, float(t))
        order += [f.id for f in plan.flush]
        s.apply_all([FlushDone(f.id) for f in plan.flush], float(t))
    assert order[:3] == [2, 1, 0]


def test_a_listener_whose_deadline_passed_ranks_with_those_that_have_no_audio_yet():
    s = scheduler(rows=8, prefill_chunk_tokens=1000, max_flush_batch=1)
    s.submit(request(0, priority=0), 0.0)                   # a first phrase, nothing played yet
    s.submit(request(1, priority=1, deadline=None), 0.0)    # a later phrase, its listener playing
    for t in range(4):
        step(s, float(t))
    s.apply(SetDeadline(1, 3.9), 4.0)                       # its buffer ran out at 3.9
    assert [f.id for f in step(s, 4.0).flush] == [1]


def test_the_flush_batch_is_bounded():
    s = scheduler(rows=16, prefill_chunk_tokens=1000, max_flush_batch=3)
    for i in range(8):
        s.submit(request(i), 0.0)
    sizes = [len(step(s, float(t)).flush) for t in range(12)]
    assert max(sizes) == 3 and sum(sizes) > 3


def test_pause_stops_decode_and_flush_and_resume_continues_without_loss():
    s = scheduler(rows=4, prefill_chunk_tokens=1000)
    s.submit(request(0, first=4), 0.0)
    for t in range(3):
        step(s, float(t))
    s.apply(Pause(0), 3.0)
    for t in range(3, 8):
        plan = step(s, float(t))
        assert plan.decode == [] and plan.flush == []
    assert s.free_rows == 2                         # it keeps its rows
    s.apply(Resume(0), 8.0)
    flushes = []
    for t in range(8, 16):
        flushes += [f.tokens for f in step(s, float(t)).flush]
    assert flushes == [4, 8]                        # no chunk boundary skipped


def test_cancel_frees_rows_within_one_step():
    s = scheduler(rows=2, prefill_chunk_tokens=1000)
    s.submit(request(0), 0.0)
    s.submit(request(1), 0.0)
    step(s, 0.0)
    s.apply(Cancel(0), 1.0)
    assert s.free_rows == 2 and 0 not in s
    plan = s.plan(1.0)
    assert plan.release == [0] and [c.id for c in plan.prefill] == [1] and 0 not in plan.decode


def test_cancel_of_a_queued_request_frees_nothing_and_plans_nothing():
    s = scheduler(rows=2)
    s.submit(request(0), 0.0)
    s.submit(request(1), 0.0)
    s.plan(0.0)
    s.apply(Cancel(1), 1.0)
    plan = s.plan(1.0)
    assert plan.release == [] and 1 not in s and s.free_rows == 0


def test_finished_frees_the_rows_and_events_for_unknown_ids_are_ignored():
    s = scheduler(rows=2)
    s.submit(request(0), 0.0)
    s.plan(0.0)
    s.apply(Finished(0), 1.0)
    s.apply_all([Tokens(0, 3), Pause(0), Resume(0), SetDeadline(0, 1.0), FlushDone(0), Cancel(7)], 1.0)
    assert s.free_rows == 2 and s.plan(1.0).release == [0]


def test_a_low_priority_request_is_served_under_a_constant_stream_of_high_priority_ones():
    s = scheduler(rows=2, prefill_chunk_tokens=1000, aging_s=1.0, max_queue_wait_s=1e9)
    s.submit(request(0, priority=1), 0.0)            # arrives first into a full engine
    s.submit(request(100, priority=0), 0.0)
    next_id, served, now = 1, set(), 0.0
    for _ in range(400):
        now += 0.1
        s.submit(request(next_id, priority=0), now)  # a new first phrase every step, forever
        next_id += 1
        plan = s.plan(now)
        served |= {c.id for c in plan.prefill}
        for i in plan.decode:                         # each request speaks 5 tokens, then ends
            s.apply(Tokens(i, 1, done=s._live[i].steps >= 5), now)
        if 0 in served:
            break
    assert 0 in served


def test_a_due_flush_without_a_deadline_is_not_starved_by_dated_ones():
    s = scheduler(rows=64, prefill_chunk_tokens=10_000, max_flush_batch=1, undated_slack_s=1.0)
    s.submit(request(0, priority=1, first=1), 0.0)
    flushed, now, next_id = [], 0.0, 1
    for t in range(60):
        now = t * 0.1
        s.submit(request(next_id, priority=1, first=1, deadline=now + 0.5), now)
        next_id += 1
        plan = step(s, now)
        flushed += [f.id for f in plan.flush]
        # each delivered chunk moves its listener's deadline on by the chunk's audio
        s.apply_all([SetDeadline(f.id, now + 0.5) for f in plan.flush], now)
        if 0 in flushed:
            break
    assert 0 in flushed


def test_plans_are_deterministic_given_the_clock():
    def run() -> list[StepPlan]:
        s = scheduler(rows=6, prefill_chunk_tokens=8, max_flush_batch=2)
        plans = []
        for t in range(40):
            if t % 3 == 0:
                s.submit(request(t, rows=1 + t % 2, prefill=5 + t, priority=t % 2, deadline=t + 2.0), t * 0.05)
            plans.append(step(s, t * 0.05))
        return plans

    assert run() == run()


def test_config_and_request_errors_name_the_field():
    with pytest.raises(ValueError, match="row_budget"):
        ScheduleConfig(row_budget=0)
    with pytest.raises(ValueError, match="max_queue_wait_s"):
        ScheduleConfig(row_budget=1, max_queue_wait_s=0)
    with pytest.raises(ValueError, match="prefill_tokens"):
        request(0, prefill=0)
    s = scheduler()
    s.submit(request(0), 0.0)
    with pytest.raises(ValueError, match="already scheduled"):
        s.submit(request(0), 0.0)


# ----- holding flushes for a batch ------------------------------------------------------------------

def flush_times(s: BatchScheduler, times: list[float]) -> dict[int, list[float]]:
    """Step at each time; when each request's flushes were planned."""
    out: dict[int, list[float]] = {}
    for t in times:
        for f in step(s, t).flush:
            out.setdefault(f.id, []).append(t)
    return out


def ticks(n: int, dt: float = 0.01) -> list[float]:
    return [round(i * dt, 6) for i in range(n)]


def test_a_flush_with_slack_is_held_and_released_before_its_deadline():
    s = scheduler(rows=8, prefill_chunk_tokens=1000)     # horizon: one 0.1 s flush step + 0.05 s
    s.submit(request(0, priority=1, deadline=1.0, first=4), 0.0)
    times = flush_times(s, ticks(100))
    # due at 0.04 (its fourth token), held while the deadline is more than the horizon away
    assert times[0][0] > 0.8
    assert 1.0 - times[0][0] >= s.hold_horizon_s - 0.01


def test_held_flushes_go_together_in_one_step():
    s = scheduler(rows=16, prefill_chunk_tokens=1000)
    for i, first in enumerate((2, 4, 6, 8)):             # due at different steps, deadlines alike
        s.submit(request(i, priority=1, deadline=1.0 + i * 0.01, first=first), 0.0)
    times = flush_times(s, ticks(100))
    assert len({t[0] for t in times.values()}) == 1 and len(times) == 4


def test_without_holding_each_flush_goes_when_due():
    s = scheduler(rows=16, prefill_chunk_tokens=1000, hold_flushes=False)
    for i, first in enumerate((2, 4)):
        s.submit(request(i, priority=1, deadline=1.0, first=first), 0.0)
    times = flush_times(s, ticks(10))
    assert times[0][0] == 0.02 and times[1][0] == 0.04


def test_a_first_chunk_is_never_held_beyond_its_budget():
    for budget in (0.0, 0.2):
        s = scheduler(rows=8, prefill_chunk_tokens=1000, first_chunk_budget_s=budget)
        s.submit(request(0, priority=0, first=4), 0.0)                # a first phrase: nothing played yet
        s.submit(request(1, priority=1, deadline=5.0, first=100), 0.0)
        first_flush = flush_times(s, ticks(40))[0][0]
        if budget == 0.0:
            assert first_flush == 0.04                             # the step it became due
        else:
            # it may wait, but its flush step (0.1 s expected) ends within the budget
            assert 0.04 <= first_flush and first_flush + 0.1 <= budget


def test_a_flush_without_a_deadline_or_whose_listener_ran_dry_is_not_held():
    s = scheduler(rows=8, prefill_chunk_tokens=1000)
    s.submit(request(0, priority=1, deadline=None, first=4), 0.0)   # slack unknown
    s.submit(request(1, priority=1, deadline=0.03, first=6), 0.0)   # ran dry at 0.03
    s.submit(request(2, priority=1, deadline=9.0, first=100), 0.0)  # keeps the steps busy
    times = flush_times(s, ticks(10))
    assert times[0][0] == 0.04 and times[1][0] == 0.06


def test_a_step_with_nothing_else_to_run_does_not_hold():
    s = scheduler(rows=8, prefill_chunk_tokens=1000)
    s.submit(request(0, priority=1, deadline=9.0, first=4, cap=4), 0.0)
    plans = [step(s, t) for t in ticks(5)]
    assert plans[4].decode == [] and [f.tokens for f in plans[4].flush] == [4]


def test_a_final_flush_is_held_only_with_the_lead_for_the_next_phrase():
    def final_flush_at(deadline: float) -> float:
        s = scheduler(rows=8, prefill_chunk_tokens=1000, final_flush_lead_s=0.5)
        s.submit(request(0, priority=1, deadline=deadline, first=100), 0.0)
        s.submit(request(1, priority=1, deadline=9.0, first=100), 0.0)   # keeps the steps busy
        for t in ticks(3):
            step(s, t)
        s.apply(Tokens(0, 0, done=True), 0.03)
        return flush_times(s, [0.03 + t for t in ticks(300)])[0][0]

    # horizon 0.15 s + lead 0.5 s: a deadline 0.6 s away flushes at once, one 2 s away waits
    assert final_flush_at(0.6) == 0.03
    late = final_flush_at(2.0)
    assert 0.03 < late and 2.0 - late >= 0.65 - 0.01

