"""ThreadChoice: the threads of a split step, chosen by timing the steps (a fake clock here)."""

from sknet._core.thread_choice import ThreadChoice


class Clock:
    """A clock that each step moves on by the step's cost on its threads."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _run(choice, clock, n_steps, cost, rows=None):
    """Run ``n_steps`` steps; ``cost(threads, i)`` is step ``i``'s time. Returns the threads."""
    used = []
    for i in range(n_steps):
        threads = choice.start(choice.batch_size if rows is None else rows)
        clock.now += cost(threads, i)
        choice.stop()
        used.append(threads)
    return used


def test_a_quiet_machine_keeps_the_threads_and_tries_one_thread_ever_less_often():
    clock = Clock()
    choice = ThreadChoice(2, 100, probe_every=10, max_probe_every=40, clock=clock)
    used = _run(choice, clock, 200, lambda threads, i: 1.0 if threads == 1 else 0.6)
    # untimed warm-up, one timed step on one thread, then the threads' try wins
    assert used[:3] == [1, 1, 2]
    assert choice.best == 2
    tries = [i for i in range(3, 200) if used[i] == 1]
    # each later try of one thread is cut short by nothing (1/0.6 < ABORT): whole tries
    # of two steps (one thread needs no warm-up), after waits of 20, 40, 40, ... steps
    starts = [i for i in tries if used[i - 1] == 2]
    gaps = [b - a - 2 for a, b in zip(starts, starts[1:])]
    assert gaps[:3] == [20, 40, 40]
    assert all(used[i - 1:i + 3] == [2, 1, 1, 2] for i in starts)
    assert len(tries) == 2 * len(starts)


def test_a_busy_machine_runs_one_thread_and_cuts_every_try_after_one_step():
    clock = Clock()
    choice = ThreadChoice(2, 100, probe_every=10, max_probe_every=80, clock=clock)
    used = _run(choice, clock, 400, lambda threads, i: 1.0 if threads == 1 else 100.0)
    slow = [i for i, threads in enumerate(used) if threads == 2]
    assert slow[0] == 2 and choice.best == 1
    assert all(used[i + 1] == 1 for i in slow[:-1])  # each try ends after its first step
    # each lost try doubles the wait: 7 slow steps in 400
    assert [b - a - 1 for a, b in zip(slow, slow[1:])] == [20, 40, 80, 80, 80, 80]


def test_a_machine_that_gets_busy_switches_to_one_thread_and_back():
    clock = Clock()
    choice = ThreadChoice(2, 100, probe_every=10, clock=clock)

    def cost(threads, i):
        busy = 60 <= i < 150
        return 1.0 if threads == 1 else (100.0 if busy else 0.6)

    used = _run(choice, clock, 400, cost)
    assert used[56:61] == [2] * 5
    # one slow step and it turns to one thread; the dropped threads then wait
    # probe_every steps, counted from the switch, for a try
    assert used[61:72] == [1] * 10 + [2]
    assert used[-1] == 2 and choice.best == 2  # a try after the quiet returns wins
    assert sum(threads == 2 for threads in used[61:150]) <= 4  # a slow step a try


def test_short_batches_are_untimed_and_a_cap_of_one_holds():
    clock = Clock()
    choice = ThreadChoice(3, 100, probe_every=10, clock=clock)
    assert _run(choice, clock, 5, lambda threads, i: 1.0, rows=37) == [1] * 5
    assert choice.cost == {} and not choice.warm
    _run(choice, clock, 10, lambda threads, i: 1.0 if threads == 1 else 0.5)
    assert choice.best == 3
    costs = dict(choice.cost)
    # a short batch (the epoch's last) neither counts nor starts a try
    assert _run(choice, clock, 5, lambda threads, i: 9.0, rows=37) == [3] * 5
    assert choice.cost == costs and choice.best == 3
    choice.cap = 1  # another fit runs alongside
    assert _run(choice, clock, 20, lambda threads, i: 9.0) == [1] * 20
    assert choice.cost[3] == 0.5 / 100  # nothing was timed meanwhile
