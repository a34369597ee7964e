"""The recurrent cells' time loops in numpy: the reference the compiled kernels are tested against.

:mod:`sknet._core.recurrent` runs the time loop of each direction in compiled
code (:mod:`sknet._core._recurrent_fast`). The cells here subclass the
production ones and replace only that loop, forward and backward, by numpy
operations over the whole batch, one step at a time, and the weight and
bias gradients (which the compiled backward loops sum step by step) as
sums over all steps at once; :func:`load_steps` loads a batch time-major.
Everything around them (dropout, the output layer, the input gradient)
stays the network's own, so that a network run with
:func:`reference_cells` differs from the production one in the time loops
and the load alone.

Padding: a padding step copies the state of the step before it (the zero
state when it is the direction's first), and in the backward pass its rows
get no gate gradient and pass the state gradients on unchanged.
"""

from contextlib import contextmanager
from functools import partial

import numpy as np
from scipy.special import expit

from sknet._core.recurrent import GRUCell, LSTMCell, RNNCell

__all__ = ["ReferenceRNNCell", "ReferenceLSTMCell", "ReferenceGRUCell", "load_steps",
           "reference_cells"]


def load_steps(X):
    """``X`` ``(n, T, F)`` time-major, padding zeroed: ``(x, pad, padded)``.

    A step whose first feature is NaN is padding: its ``pad`` is 1 and its
    row of ``x`` is 0.
    """
    x = np.ascontiguousarray(X.transpose(1, 0, 2))
    pad = np.isnan(x[:, :, 0])
    x[pad] = 0
    return x, pad.view(np.uint8), bool(pad.any())


def _load(network, X, tr, rows=None):
    """The network's ``_load`` (a batch, ``X[rows]`` with ``rows``, into its trace)
    on :func:`load_steps`."""
    X = np.asarray(X, dtype=network.dtype)
    x, pad, padded = load_steps(X if rows is None else X[rows])
    tr.x[...] = x
    tr.pad_steps[...] = pad
    tr.pad_mask = tr.pad_steps if padded else None


def _order(reverse, T):
    """The time steps in the order a direction visits them."""
    return range(T - 1, -1, -1) if reverse else range(T)


def _previous(reverse, t, T):
    """The step visited just before ``t``, or None for the first one."""
    p = t + 1 if reverse else t - 1
    return p if 0 <= p < T else None


class _Scratch:
    """Work arrays of one direction for a batch of ``n`` sequences."""

    def __init__(self, b):
        n, GH = b.A.shape[1:]
        H, dtype = b.H, b.A.dtype
        self.zeros = np.zeros((n, H), dtype)
        self.tmp = np.empty((n, GH), dtype)
        self.t1 = np.empty((n, H), dtype)
        self.dhm = np.empty((n, H), dtype)
        self.dh = [np.empty((n, H), dtype) for _ in range(3)]
        self.dc = [np.empty((n, H), dtype) for _ in range(2)]


class _ReferenceLoop:
    """The numpy time loop shared by the reference cells (before the cell class in the MRO)."""

    states = ("hs",)
    splits = False  # the whole batch at once
    step_gradients = False  # the weight gradients after the loop, from every step's dG

    def forward(self, b, x, W_ih, W_hh, bias, pad, reverse, split=None, last=None):
        T, n = x.shape[:2]
        np.matmul(x.reshape(T * n, -1), W_ih.T, out=b.A.reshape(T * n, -1))
        b.A += bias
        s, p = _Scratch(b), None
        for t in _order(reverse, T):
            self.forward_step(b, s, t, p, W_hh)
            if pad is not None and pad[t].any():
                rows = pad[t].astype(bool)[:, None]
                for name in self.states:
                    states = getattr(b, name)
                    np.copyto(states[t], s.zeros if p is None else states[p], where=rows)
            p = t
        if last is not None:  # the state after the direction's last step
            np.copyto(last, b.hs[p])

    def backward(self, b, x, W_hh, pad, reverse, work, dh_last, dout, record, grads,
                 split=None):
        T = b.A.shape[0]
        s = _Scratch(b)
        dh, dh_prev, spare = s.dh
        dc = s.dc[0] if self.name == "lstm" else None
        if dh_last is None:
            dh.fill(0)
        else:
            np.copyto(dh, dh_last)
        if dc is not None:
            dc.fill(0)
        for t in reversed(_order(reverse, T)):
            if dout is not None:
                dh += dout[t]
            if record is not None:
                np.copyto(record[t], dh)
            p = _previous(reverse, t, T)
            if pad is not None and pad[t].any():
                dc = self._masked_step(b, s, t, p, dh, dc, dh_prev, spare, pad[t], W_hh)
            else:
                self.backward_step(b, s, t, p, dh, dc, dh_prev, W_hh)
            dh, dh_prev = dh_prev, dh
        (grads_all,) = grads
        self._weight_gradients(b, x, reverse, *grads_all)

    def _weight_gradients(self, b, x, reverse, gW_ih, gW_hh, gb_ih, gb_hh):
        """``dG^T x`` and ``dGh^T h_prev`` over every step and row at once (a
        sequence's first step reads the zero state); the biases' sums."""
        T = x.shape[0]
        dGh = b.dGh if self.name == "gru" else b.dG
        gW_ih[...] = np.einsum("tng,tnf->gf", b.dG, x)
        previous = [_previous(reverse, t, T) for t in range(T)]
        later = [t for t in range(T) if previous[t] is not None]
        gW_hh[...] = np.einsum("tng,tnh->gh", dGh[later], b.hs[[previous[t] for t in later]])
        gb_ih[...] = b.dG.sum(axis=(0, 1))
        gb_hh[...] = dGh.sum(axis=(0, 1))

    def _masked_step(self, b, s, t, p, dh, dc, dh_prev, spare, pad_t, W_hh):
        """Padding rows pass ``dh`` (and ``dc``) on and get no gate gradient.

        Zeroing the incoming gradients of the padding rows zeroes their gate
        gradients (every step is linear in them); the carried gradients are
        then copied into those rows. Returns the array now holding ``dc``.
        """
        rows = pad_t.astype(bool)[:, None]
        keep = (~rows).astype(dh.dtype)
        np.multiply(dh, keep, out=spare)
        dc_work = None
        if dc is not None:
            dc_work = s.dc[1] if dc is s.dc[0] else s.dc[0]
            np.multiply(dc, keep, out=dc_work)
        self.backward_step(b, s, t, p, spare, dc_work, dh_prev, W_hh)
        np.copyto(dh_prev, dh, where=rows)
        if dc is not None:
            np.copyto(dc_work, dc, where=rows)
        return dc_work


class ReferenceRNNCell(_ReferenceLoop, RNNCell):
    """:class:`~sknet._core.recurrent.RNNCell` with the numpy time loop."""

    def forward_step(self, b, s, t, p, W_hh):
        z, h = b.A[t], b.hs[t]
        np.matmul(s.zeros if p is None else b.hs[p], W_hh.T, out=s.tmp)
        z += s.tmp
        np.copyto(h, z)
        self.activation.forward(h)

    def backward_step(self, b, s, t, p, dh, dc, dh_prev, W_hh):
        act, g = self.activation, b.dG[t]
        np.copyto(g, dh)
        d = act.backward(b.hs[t] if act.derivative_of == "output" else b.A[t], g)
        if d is not g:
            g[...] = d
        np.matmul(g, W_hh, out=dh_prev)


class ReferenceLSTMCell(_ReferenceLoop, LSTMCell):
    """:class:`~sknet._core.recurrent.LSTMCell` with the numpy time loop."""

    states = ("hs", "C")

    def forward_step(self, b, s, t, p, W_hh):
        H, a, t1 = b.H, b.A[t], s.t1
        c_prev = s.zeros if p is None else b.C[p]
        np.matmul(s.zeros if p is None else b.hs[p], W_hh.T, out=s.tmp)
        a += s.tmp
        expit(a[:, :2 * H], out=a[:, :2 * H])
        np.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])
        expit(a[:, 3 * H:], out=a[:, 3 * H:])
        c = b.C[t]
        np.multiply(a[:, H:2 * H], c_prev, out=c)
        np.multiply(a[:, :H], a[:, 2 * H:3 * H], out=t1)
        c += t1
        np.tanh(c, out=b.TC[t])
        np.multiply(a[:, 3 * H:], b.TC[t], out=b.hs[t])

    def backward_step(self, b, s, t, p, dh, dc, dh_prev, W_hh):
        H, a, d, tc, t1, tmp = b.H, b.A[t], b.dG[t], b.TC[t], s.t1, s.tmp
        np.multiply(dh, tc, out=d[:, 3 * H:])
        np.multiply(tc, tc, out=t1)
        np.subtract(1, t1, out=t1)
        t1 *= a[:, 3 * H:]
        t1 *= dh
        dc += t1
        np.multiply(dc, a[:, 2 * H:3 * H], out=d[:, :H])
        np.multiply(dc, s.zeros if p is None else b.C[p], out=d[:, H:2 * H])
        np.multiply(dc, a[:, :H], out=d[:, 2 * H:3 * H])
        # derivatives from the outputs: s (1 - s) for the sigmoids, 1 - g^2 for g
        np.subtract(1, a, out=tmp)
        tmp *= a
        tg = tmp[:, 2 * H:3 * H]
        np.multiply(a[:, 2 * H:3 * H], a[:, 2 * H:3 * H], out=tg)
        np.subtract(1, tg, out=tg)
        d *= tmp
        dc *= a[:, H:2 * H]
        np.matmul(d, W_hh, out=dh_prev)


class ReferenceGRUCell(_ReferenceLoop, GRUCell):
    """:class:`~sknet._core.recurrent.GRUCell` with the numpy time loop."""

    def forward_step(self, b, s, t, p, W_hh):
        H, a, t1, tmp = b.H, b.A[t], s.t1, s.tmp
        h_prev = s.zeros if p is None else b.hs[p]
        np.matmul(h_prev, W_hh.T, out=tmp)
        rz = a[:, :2 * H]
        rz += tmp[:, :2 * H]
        expit(rz, out=rz)
        ghn, n = b.GHn[t], a[:, 2 * H:]
        np.add(tmp[:, 2 * H:], b.b_hn, out=ghn)
        np.multiply(a[:, :H], ghn, out=t1)
        n += t1
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=t1)
        t1 *= a[:, H:2 * H]
        np.add(n, t1, out=b.hs[t])

    def backward_step(self, b, s, t, p, dh, dc, dh_prev, W_hh):
        H, a, d, dhh, t1, tmp = b.H, b.A[t], b.dG[t], b.dGh[t], s.t1, s.tmp
        z, n = a[:, H:2 * H], a[:, 2 * H:]
        dr, dz, dn = d[:, :H], d[:, H:2 * H], d[:, 2 * H:]
        np.subtract(s.zeros if p is None else b.hs[p], n, out=dz)
        dz *= dh
        np.multiply(dh, z, out=dh_prev)
        np.subtract(dh, dh_prev, out=dn)
        np.multiply(n, n, out=t1)
        np.subtract(1, t1, out=t1)
        dn *= t1
        np.multiply(dn, b.GHn[t], out=dr)
        rz, trz = a[:, :2 * H], tmp[:, :2 * H]
        np.subtract(1, rz, out=trz)
        trz *= rz
        d[:, :2 * H] *= trz
        np.copyto(dhh[:, :2 * H], d[:, :2 * H])
        np.multiply(dn, a[:, :H], out=dhh[:, 2 * H:])
        np.matmul(dhh, W_hh, out=s.dhm)
        dh_prev += s.dhm


REFERENCE_CELLS = {"rnn": ReferenceRNNCell, "lstm": ReferenceLSTMCell, "gru": ReferenceGRUCell}


@contextmanager
def reference_cells(network):
    """Run ``network``'s recurrent layers with the numpy time loops (and its batches
    loaded time-major by numpy) inside the block."""
    cells = [layer.cell for layer in network.recurrent]
    try:
        for layer, cell in zip(network.recurrent, cells):
            layer.cell = REFERENCE_CELLS[cell.name](getattr(cell, "activation", None))
        network._load = partial(_load, network)
        yield network
    finally:
        for layer, cell in zip(network.recurrent, cells):
            layer.cell = cell
        network.__dict__.pop("_load", None)
