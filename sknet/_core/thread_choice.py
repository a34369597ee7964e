"""Whether a split step runs on its threads or on one, chosen by timing the steps.

A compiled dense step cut into parts (see
:meth:`sknet._core._dense_fast.DenseStep.run`) gives the same result on any
number of threads; only its time differs. On a quiet machine the threads make
a step faster. On a busy one a thread can wait a whole scheduler time slice
for another at the end of each part, and a step then takes up to a hundred
times longer. :class:`ThreadChoice` times the steps and keeps the faster
choice.
"""

import time

__all__ = ["ThreadChoice"]


class ThreadChoice:
    """Chooses, step by step, between all of a split step's threads and one.

    The steps of each choice are timed in seconds per row (full batches
    only). One thread runs first, then the threads are tried; from then on
    the faster choice runs, and the other is tried again after
    ``probe_every`` steps. A try of the threads is a run of up to
    ``PROBE_STEPS`` steps (threads woken from sleep need a few steps to get
    going), a try of one thread of ``ONE_THREAD_STEPS`` (it needs none);
    a try is scored by its fastest step, and cut short by a step ``ABORT``
    times slower than the current choice (threads that wait for a time
    slice). The current choice is dropped between tries when its average
    (which a pause of the whole process also lifts) is ``MARGIN`` times the
    other's; the other then runs, and the dropped one waits ``probe_every``
    steps for its next try. A try that
    loses doubles the wait before the next (up to ``max_probe_every``), so
    a machine that stays busy costs few slow steps, and one that quietens
    down is noticed.

    Parameters
    ----------
    parts : int
        The threads the step may use (its parts), at least 2.
    batch_size : int
        Rows of a full batch; shorter batches run the current choice untimed.
    probe_every, max_probe_every : int, default=128, 8192
    clock : callable, default=time.perf_counter
    """

    SMOOTHING = 0.1  # weight of the newest step in the current choice's average
    PROBE_STEPS = 8
    ONE_THREAD_STEPS = 2
    ABORT = 3.0
    MARGIN = 1.5  # the current choice's average must lose by this much to be dropped

    def __init__(self, parts, batch_size, probe_every=128, max_probe_every=8192,
                 clock=time.perf_counter):
        self.parts, self.batch_size = int(parts), int(batch_size)
        self.probe_every, self.max_probe_every = probe_every, max_probe_every
        self.clock = clock
        self.cost = {}  # threads -> seconds per row
        self.best = 1
        self.cap = self.parts  # at most this many threads now (overlapping fits: 1)
        self.wait = probe_every
        self.since_probe = 0
        self.warm = False  # the first step (cold caches) is not timed
        self._probe = None  # [steps left, fastest so far] during a try
        self._running = None  # (threads, start time) of a timed step

    def _other(self):
        return 1 if self.best == self.parts else self.parts

    def start(self, rows):
        """The threads for a step of ``rows`` rows; starts its clock."""
        self._running = None
        if self.cap < self.parts:
            return max(1, self.cap)
        if rows != self.batch_size or not self.warm:
            self.warm = self.warm or rows == self.batch_size
            return self.best
        if self._probe is None and self.best in self.cost and (
                self.since_probe >= self.wait or self._other() not in self.cost):
            steps = self.ONE_THREAD_STEPS if self._other() == 1 else self.PROBE_STEPS
            self._probe = [steps, float("inf")]
        threads = self.best if self._probe is None else self._other()
        self._running = (threads, self.clock())
        return threads

    def stop(self):
        """Record the step begun by :meth:`start`."""
        if self._running is None:
            return
        threads, began = self._running
        self._running = None
        per_row = (self.clock() - began) / self.batch_size
        if self._probe is not None:
            self._record_try(threads, per_row)
            return
        old = self.cost.get(threads)
        self.cost[threads] = per_row if old is None else old + self.SMOOTHING * (per_row - old)
        self.since_probe += 1
        other = self._other()
        if other in self.cost and self.cost[threads] > self.MARGIN * self.cost[other]:
            # the machine got busier: the other choice runs, and this one waits for a try
            self.best, self.wait, self.since_probe = other, self.probe_every, 0

    def _record_try(self, threads, per_row):
        probe = self._probe
        probe[0] -= 1
        probe[1] = min(probe[1], per_row)
        if probe[0] > 0 and per_row < self.ABORT * self.cost[self.best]:
            return
        self._probe, self.since_probe = None, 0
        self.cost[threads] = probe[1]
        if probe[1] < self.cost[self.best]:
            self.best, self.wait = threads, self.probe_every
        else:
            self.wait = min(2 * self.wait, self.max_probe_every)
