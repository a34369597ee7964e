"""Recurrent layers (simple RNN, LSTM, GRU) and the network that stacks them.

The cells follow PyTorch's formulation, gate order and parameter shapes, so
the weights of a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` can be copied in
array by array. Each layer and direction owns

* ``weight_ih`` of shape ``(G * H, n_in)`` and ``weight_hh`` of shape ``(G * H, H)``,
* ``bias_ih`` and ``bias_hh`` of shape ``(G * H,)``,

with ``G`` gates (1 for the RNN, 4 for the LSTM, 3 for the GRU) stacked in
PyTorch's order, and the same four arrays with the suffix ``_reverse`` for
the reverse direction. All of them are views into the network's flat
``params``, laid out layer by layer from the input up and, inside a layer,
direction by direction in the order just given; the output :class:`Dense`
layer comes last.

Sequences are batch-major ``(N, T, F)`` at the interface and ``(T, N, F)``
inside: time-major, or, where the time loops run on several blocks of rows,
*blocked* (each block's rows time-major among themselves and apart from the
other blocks', see :mod:`sknet._core._recurrent_fast`), so that each thread
streams through memory of its own. A batch is loaded so by compiled code,
each block of rows by the thread that runs its time loops. The loops, forward and
back through time, are compiled (:mod:`sknet._core._recurrent_fast`): per
step the products with the weights (one of ``[x_t, h_{t-1}]``, two for the
GRU) and the gate arithmetic in C, without the GIL. The LSTM's and GRU's backward loops add
each step's terms of the weight and bias gradients as they go; the RNN's are
products over all steps after its loop, as is the gradient of a layer's
input where a layer below needs it. The output layer trains on the dense
networks' compiled step (:class:`~sknet._core._dense_fast.DenseStep`) where
its activation and loss have a compiled form, on numpy's layers otherwise.

Sequences of unequal lengths are padded at their end with NaN (the first
feature of a padding step is NaN). A padding step changes no state and
carries no gradient, so the last state of the forward direction is each
sequence's state at its last real step, and the reverse direction starts
from a zero state at each sequence's last real step. Padding is copied, never
computed with: NaN reaches no arithmetic.
"""

from functools import partial

import numpy as np
from scipy.sparse import issparse

from . import _recurrent_fast as _fast
from . import activations as _activations
from ._dense_fast import ACTIVATION_CODES, OUTPUT_CODES, DenseStep, openmp_threads
from .activations import get_activation
from .blas import add_rows_for, axpy_for
from .buffers import empty_aligned
from .initializers import initialize_layer, resolve_initializer
from .layers import Dense, LayerStack, make_dropout
from .losses import kernel_output, output_delta
from .network import _MIN_PART_ROWS
from .regularization import add_penalty_gradient, penalty_value

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "CELLS", "make_cell", "RecurrentLayer",
           "RecurrentNetwork", "RecurrentWorkspace"]

_PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

# Sequences per block when predicting: each block's per-step arrays stay
# within a few tens of MB, whatever the number of sequences.
_BLOCK_BYTES = 32 * 2 ** 20

# At most this many (batch size, steps) shapes keep their views in a workspace.
_MAX_TRACES = 4


def _compiled_activation(activation):
    """``(code, p1, p2)`` of a built-in activation for the kernel; CALLBACK otherwise.

    A registered activation (its forward function wraps the user's) is
    called back from the time loop, once per step.
    """
    code = _fast.ACTIVATION_CODES.get(activation.name)
    forward = activation.forward
    if (code is None or getattr(forward, "__wrapped__", None) is not None
            or getattr(forward, "__module__", None) != _activations.__name__):
        return _fast.CALLBACK, 0.0, 1.0
    if activation.name == "leaky_relu":
        return code, float(activation.params.get("negative_slope", 0.01)), 1.0
    if activation.name == "elu":
        return code, float(activation.params.get("alpha", 1.0)), 1.0
    if activation.name == "selu":
        return code, _activations.SELU_ALPHA, _activations.SELU_SCALE
    return code, 0.0, 1.0


# --------------------------------------------------------------------------- #
# cells: the time loop of one direction, forward and backward (compiled)       #
# --------------------------------------------------------------------------- #
class RNNCell:
    """Elman cell: ``h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    Parameters
    ----------
    activation : Activation, default=None
        Any elementwise activation; tanh when None. The built-in ones run in
        compiled code; one registered with
        :func:`~sknet._core.activations.register_activation` is called once
        per step from the compiled loop.

    Notes
    -----
    Backward, with ``dh`` all that reads ``h_t``:
    ``dZ = dh f'(Z)`` and ``dh_{t-1} = dZ W_hh``.
    """

    name = "rnn"
    n_gates = 1

    def __init__(self, activation=None):
        activation = get_activation("tanh") if activation is None else activation
        if not activation.elementwise:
            raise ValueError(
                f"A recurrent cell needs an elementwise activation, got {activation.name!r}.")
        self.activation = activation
        self.gate_activations = (activation.name,)
        self._code, self._p1, self._p2 = _compiled_activation(activation)

    def prepare(self, b, W_ih, W_hh, b_ih, b_hh):
        """The weights the step loop uses: ``(W_ih, W_hh, folded bias)``."""
        np.add(b_ih, b_hh, out=b.bias)
        return W_ih, W_hh, b.bias

    def add_buffers(self, b, key, T, n, layer, alloc, backward):
        """No per-step arrays beyond the pre-activations ``A``."""

    @property
    def splits(self):
        """Whether the time loops may run on blocks of rows (not with a callback)."""
        return self._code != _fast.CALLBACK

    def forward(self, b, x, W_ih, W_hh, bias, pad, reverse, split=None, last=None):
        """The pre-activations into ``A``, the states into ``hs``, every step; each
        sequence's final state into ``last`` (unless None)."""
        upper = float(np.log(np.finfo(b.A.dtype).max) - 1.0)  # exp's clip
        step = partial(self._forward_step, b) if self._code == _fast.CALLBACK else None
        _fast.rnn_forward(x, W_ih, b.A, b.hs, W_hh, bias, pad, reverse, self._code, self._p1,
                          self._p2, upper, step, *_blocks_and_threads(split), last=last)

    # Its gradients' per-step products (H rows, not 3 H or 4 H) are too small
    # to pay for their packing: one product for all steps after the loop.
    step_gradients = False

    def backward(self, b, x, W_hh, pad, reverse, work, dh_last, dout, record, grads,
                 split=None):
        """The pre-activation gradients into ``dG``, the weight gradients into ``grads``."""
        step = partial(self._backward_step, b) if self._code == _fast.CALLBACK else None
        _fast.rnn_backward(b.hs, W_hh, pad, reverse, b.dG, work.dh[0], work.dh[1], dh_last,
                           dout, record, self._code, self._p1, self._p2, step, *_blocks_and_threads(split))
        gW_ih, gW_hh, gb_ih, _ = grads[0]  # the layer copies b_ih's into b_hh's
        _fast.rnn_weight_gradients(b.dG, x, b.hs, reverse, gW_ih, gW_hh, gb_ih,
                                   *_blocks_and_threads(split))

    def _forward_step(self, b, t):
        h = b.hs[t]
        np.copyto(h, b.A[t])
        self.activation.forward(h)

    def _backward_step(self, b, t):
        act, g = self.activation, b.dG[t]
        d = act.backward(b.hs[t] if act.derivative_of == "output" else b.A[t], g)
        if d is not g:
            g[...] = d


class LSTMCell:
    """Long short-term memory cell, gates ``i, f, g, o`` stacked in that order.

    Notes
    -----
    With ``Z = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh`` split into four
    blocks,

    .. math::

        i = \\sigma(Z_i),\\; f = \\sigma(Z_f),\\; g = \\tanh(Z_g),\\; o = \\sigma(Z_o),
        \\quad c_t = f c_{t-1} + i g, \\quad h_t = o \\tanh(c_t).

    Backward, from ``dh`` (all that reads ``h_t``) and ``dc`` (from ``c_{t+1}``):

    .. math::

        dc \\mathrel{+}= dh\\, o\\, (1 - \\tanh^2 c_t), \\quad
        do = dh \\tanh c_t,\\; di = dc\\, g,\\; df = dc\\, c_{t-1},\\; dg = dc\\, i,

    each times its gate's derivative (``s (1 - s)`` or ``1 - g^2``) to give
    ``dZ``; then ``dc_{t-1} = dc f`` and ``dh_{t-1} = dZ W_hh``.
    """

    name = "lstm"
    n_gates = 4

    def __init__(self, activation=None):
        self.gate_activations = ("logistic", "logistic", "tanh", "logistic")

    def prepare(self, b, W_ih, W_hh, b_ih, b_hh):
        """The weights and the summed bias."""
        np.add(b_ih, b_hh, out=b.bias)
        return W_ih, W_hh, b.bias

    def add_buffers(self, b, key, T, n, layer, alloc, backward):
        """Cell states ``C`` and their tanh ``TC`` per step."""
        H = layer.hidden
        b.C = alloc(key + "C", (T, n, H))
        b.TC = alloc(key + "TC", (T, n, H))

    splits = True
    step_gradients = True  # the backward loop adds each step's terms

    def forward(self, b, x, W_ih, W_hh, bias, pad, reverse, split=None, last=None):
        """Activated gates in ``A``, ``c_t`` in ``C``, ``h_t`` in ``hs``, every step;
        each sequence's final state into ``last`` (unless None)."""
        _fast.lstm_forward(x, W_ih, b.A, b.hs, b.C, b.TC, W_hh, bias, pad, reverse,
                           *_blocks_and_threads(split), last=last)

    def backward(self, b, x, W_hh, pad, reverse, work, dh_last, dout, record, grads,
                 split=None):
        """The gate gradients into ``dG``, the weight gradients into ``grads``."""
        _fast.lstm_backward(b.A, b.C, b.TC, W_hh, pad, reverse, b.dG, work.dh[0], work.dh[1],
                            work.dc, dh_last, dout, record, b.hs, x, grads, *_blocks_and_threads(split))

    @staticmethod
    def set_forget_bias(b_ih, b_hh, value):
        """``bias_ih``'s forget block to ``value``, ``bias_hh``'s to 0."""
        H = b_ih.shape[0] // 4
        b_ih[H:2 * H] = value
        b_hh[H:2 * H] = 0


class GRUCell:
    """Gated recurrent unit, gates ``r, z, n`` stacked in that order (PyTorch's).

    Notes
    -----
    With ``gi = x_t W_ih^T + b_ih`` and ``gh = h_{t-1} W_hh^T + b_hh``,

    .. math::

        r = \\sigma(gi_r + gh_r),\\; z = \\sigma(gi_z + gh_z),\\;
        n = \\tanh(gi_n + r\\, gh_n), \\quad h_t = (1 - z)\\, n + z\\, h_{t-1}.

    ``b_hh``'s ``r`` and ``z`` blocks are folded into the input projection;
    its ``n`` block is multiplied by ``r`` and stays in ``gh_n``. Because of
    that product, the gradient of the ``n`` pre-activation on the ``hh``
    side (times ``r``) differs from the ``ih`` side: it is kept apart in ``dGh``.
    Backward, from ``dh``:

    .. math::

        dz = dh\\, (h_{t-1} - n), \\quad dn = dh\\, (1 - z)(1 - n^2), \\quad
        dr = dn\\, gh_n, \\quad dh_{t-1} = dh\\, z + [dr, dz, r\\, dn]\\, W_{hh},

    with ``dr`` and ``dz`` times ``s (1 - s)``.
    """

    name = "gru"
    n_gates = 3

    def __init__(self, activation=None):
        self.gate_activations = ("logistic", "logistic", "tanh")

    def prepare(self, b, W_ih, W_hh, b_ih, b_hh):
        """``b_ih`` plus ``b_hh``'s ``r`` and ``z`` blocks; keeps ``b_hh``'s ``n`` block."""
        H = b.H
        np.copyto(b.bias, b_ih)
        b.bias[:2 * H] += b_hh[:2 * H]
        b.b_hn = b_hh[2 * H:]
        return W_ih, W_hh, b.bias

    def add_buffers(self, b, key, T, n, layer, alloc, backward):
        """``gh_n`` per step, one step's ``gh``; the hh-side gate gradients ``dGh``."""
        H = layer.hidden
        b.GHn = alloc(key + "GHn", (T, n, H))
        b.gh = alloc(key + "gh", (n, 3 * H))
        b.dGh = _steps(alloc, key + "dGh", (T, n, 3 * H),
                       not self.step_gradients) if backward else None

    splits = True
    step_gradients = True  # the backward loop adds each step's terms

    def forward(self, b, x, W_ih, W_hh, bias, pad, reverse, split=None, last=None):
        """``r, z, n`` in ``A``, ``gh_n`` in ``GHn``, ``h_t`` in ``hs``, every step;
        each sequence's final state into ``last`` (unless None)."""
        _fast.gru_forward(x, W_ih, b.A, b.hs, b.GHn, b.gh, W_hh, bias, b.b_hn, pad, reverse,
                          *_blocks_and_threads(split), last=last)

    def backward(self, b, x, W_hh, pad, reverse, work, dh_last, dout, record, grads,
                 split=None):
        """ih-side gate gradients into ``dG``, hh-side into ``dGh``, the weight
        gradients into ``grads``."""
        _fast.gru_backward(b.A, b.GHn, b.hs, W_hh, pad, reverse, b.dG, b.dGh, work.dh[0],
                           work.dh[1], dh_last, dout, record, x, grads, *_blocks_and_threads(split))


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


# --------------------------------------------------------------------------- #
# time loops on blocks of rows                                                 #
# --------------------------------------------------------------------------- #
class RowSplit:
    """How the time loops cut a batch's rows into blocks, and how many run at once.

    Each sequence's loop is independent of the others', so a compiled loop
    runs ``parts`` blocks of the batch's rows on OpenMP's threads, ``threads``
    of them at once, inside one call (1: one after the other, as in a forked
    child, where OpenMP's workers do not exist). The blocks do not depend on
    ``threads``, so neither does the result.
    """

    def __init__(self, parts):
        self.parts = self.threads = int(parts)

    def blocks(self, n):
        """How many blocks a batch of ``n`` rows runs in."""
        return max(1, min(self.parts, n))


def _blocks_and_threads(split):
    """``(parts, threads)`` for a compiled loop: ``split``'s, or one block."""
    return (1, 1) if split is None else (split.parts, split.threads)


def make_cell(name, activation=None):
    """The cell called ``name``; ``activation`` is the RNN cell's (tanh by default)."""
    if name not in CELLS:
        raise ValueError(f"Unknown cell {name!r}; choose one of {sorted(CELLS)}.")
    return CELLS[name](activation)


# --------------------------------------------------------------------------- #
# buffers                                                                      #
# --------------------------------------------------------------------------- #
class _Arena:
    """Named flat buffers; a request gets a view of the first elements of its own.

    With ``reuse=False`` every request is a new array (prediction: nothing is
    shared between calls, so threads may predict at once).
    """

    def __init__(self, dtype, reuse=True):
        self.dtype, self.reuse = np.dtype(dtype), reuse
        self._flat = {}

    def __call__(self, key, shape, dtype=None, fill=None):
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        # on a cache line: the time loops' row blocks then write lines of their own
        if not self.reuse:
            view = empty_aligned(shape, dtype)
        else:
            size = int(np.prod(shape))
            flat = self._flat.get(key)
            if flat is None or flat.size < size:
                flat = self._flat[key] = empty_aligned(size, dtype)
            view = flat[:size].reshape(shape)
        if fill is not None:
            view.fill(fill)
        return view


def _steps(alloc, key, shape, every):
    """A ``(T, n, W)`` array of per-step rows: ``every`` step's, or one step's
    rows seen at every step (a zero stride along time) for a loop that reads a
    step's rows only while at that step."""
    if every:
        return alloc(key, shape)
    step = alloc(key, shape[1:])
    return np.lib.stride_tricks.as_strided(step, shape, (0,) + step.strides)


class _Direction:
    """Per-step arrays of one direction of one layer, for a batch of ``(T, n)``."""

    def __init__(self, layer, lt, d, key, T, n, alloc, backward):
        H, GH = layer.hidden, layer.n_gates * layer.hidden
        self.H = H
        self.hs = lt.out[:, :, d * H:(d + 1) * H]
        self.A = alloc(key + "A", (T, n, GH))
        # every step's gate gradients only where something reads them after the
        # loop: the input gradient (a layer below), the RNN's weight gradients
        self.dG = _steps(alloc, key + "dG", (T, n, GH),
                         lt.below or not layer.cell.step_gradients) if backward else None
        self.bias = alloc(key + "bias", (GH,))
        layer.cell.add_buffers(self, key, T, n, layer, alloc, backward)


class _LayerTrace:
    """What one recurrent layer records for a batch of ``(T, n)``.

    ``below``: a recurrent layer feeds this one (its input gradient is
    needed); ``above``: one reads this layer's output sequence. ``dh`` (two)
    and ``dc`` are the backward loop's ``(n, H)`` work arrays.
    """

    def __init__(self, layer, key, T, n, alloc, backward, below, above):
        H, D = layer.hidden, layer.n_out
        self.below = below
        self.out = alloc(key + "out", (T, n, D))
        self.dout = alloc(key + "dout", (T, n, D)) if backward and above else None
        if backward:
            self.dh = [alloc(key + f"dh{i}", (n, H)) for i in range(2)]
            self.dc = alloc(key + "dc", (n, H)) if layer.cell.name == "lstm" else None
            if below and layer.n_directions == 2:  # the reverse direction's part of dX
                self.dx = alloc(key + "dx", (T * n, layer.n_in))
        self.dirs = [_Direction(layer, self, d, f"{key}d{d}", T, n, alloc, backward)
                     for d in range(layer.n_directions)]
        self._parts = {}

    def gradient_parts(self, d, grads, P):
        """Where each of ``P`` blocks of rows writes direction ``d``'s gradients:
        the first in ``grads`` itself, the others in arrays of their own."""
        extra = self._parts.get((d, P))
        if extra is None:
            extra = self._parts[(d, P)] = [tuple(np.empty_like(g) for g in grads)
                                           for _ in range(P - 1)]
        return [tuple(grads)] + extra


class _Trace:
    """Everything a forward pass records for a batch of ``n`` sequences of ``T`` steps.

    Its per-step arrays ``(T, n, W)`` are in the time loops' layout (blocked
    by :attr:`parts`, see :mod:`sknet._core._recurrent_fast`).
    """

    def __init__(self, net, n, T, alloc, backward, add_rows, axpy):
        L, D, k = len(net.recurrent), net.recurrent[-1].n_out, net.n_outputs
        self.n, self.T, self.add_rows, self.axpy = n, T, add_rows, axpy
        self.alloc = alloc  # for buffers made on first use
        self.x = alloc("x", (T, n, net.n_features))
        self.pad = alloc("pad", (T, n, 1), dtype=bool)
        self.pad_steps = self.pad.reshape(T, n).view(np.uint8)  # pad as 0/1, (T, n)
        self.pad_mask = None  # pad_steps when a step pads, for the kernels
        self.split = None  # a RowSplit for the time loops, or None
        self.layers = [_LayerTrace(layer, f"L{i}", T, n, alloc, backward, i > 0, i < L - 1)
                       for i, layer in enumerate(net.recurrent)]
        self.masks = [None] * L
        self.dropped = [None] * L
        for i, drop in enumerate(net.dropouts):
            if drop is not None:
                shape = (T, n, net.recurrent[i].n_out) if i < L - 1 else (n, D)
                self.masks[i] = alloc(f"mask{i}", shape)
                self.dropped[i] = alloc(f"dropped{i}", shape)
        self.dropped_now = [False] * L
        self.inputs = [None] * L
        self.feat = self.feat_in = alloc("feat", (n, D))  # the final states
        self.P = alloc("P", (n, k))
        act = net.output.activation
        self.Z = alloc("Z", (n, k)) if act.derivative_of == "input" else None
        self.ones_n = alloc("ones_n", (n,), fill=1)
        if backward:
            self.delta = alloc("delta", (n, k))
            self.dfeat = alloc("dfeat", (n, D))

    @property
    def parts(self):
        """The blocks of rows the per-step arrays are laid out in (``split``'s)."""
        return 1 if self.split is None else self.split.parts


def _head_step(output, batch_size, dtype):
    """The compiled step of the output layer, a one-layer
    :class:`~sknet._core._dense_fast.DenseStep` over the sequence-level
    features, and its delta buffer; ``(None, None)`` where the layer's
    activation has no compiled form."""
    kernel = output.activation.kernel
    if kernel is None or kernel[0] not in ACTIVATION_CODES or dtype.char not in "fd":
        return None, None
    name, p1, p2 = kernel
    acts = np.empty((batch_size, output.fan_out), dtype=dtype)
    delta = np.empty_like(acts)
    step = DenseStep([output.fan_in, output.fan_out], [0, output.n_params],
                     [(ACTIVATION_CODES[name], float(p1), float(p2))], [None], [acts],
                     [delta], [None], [None], dtype)
    return step, delta


class RecurrentWorkspace:
    """Buffers for mini-batches of up to ``batch_size`` sequences, reused batch to batch.

    The buffers are flat and cut to each batch's ``(T, n)`` shape on first
    use of that shape; the views for a few shapes are kept (a fit sees two:
    the batch size and the last, smaller batch).

    Attributes
    ----------
    grad : ndarray laid out like the network's ``params``
    head : DenseStep or None
        The output layer's compiled step (forward, loss, delta and gradient
        in one call, see :func:`_head_step`); None where its activation has
        no compiled form.
    head_delta : ndarray of shape (batch_size, n_outputs) or None
        Where ``head`` writes the output layer's delta.
    """

    # The optimizer keeps to one thread: its pass over a recurrent network's
    # parameters is short beside the time loops (an LSTM fit at H=64 spent
    # 4.3 ms in it on one thread, 3.7 ms on two).
    openmp = False

    def __init__(self, network, batch_size, fast_blas=False, threads=1):
        self.network, self.batch_size = network, int(batch_size)
        self.parts = max(1, int(threads))
        self.split = RowSplit(self.parts) if self.parts > 1 else None
        self.axpy = axpy_for(network.dtype, fast_blas)
        self.add_rows = add_rows_for(network.dtype, fast_blas)
        self.grad = np.zeros_like(network.params)
        self.grad_views = network._grad_views(self.grad)
        self.head, self.head_delta = _head_step(network.output, self.batch_size,
                                                network.dtype)
        self._arena = _Arena(network.dtype)
        self._traces = {}

    @property
    def threads(self):
        """How many blocks of rows run at once (the trainer sets it per step)."""
        return 1 if self.split is None else self.split.threads

    @threads.setter
    def threads(self, value):
        if self.split is not None:
            self.split.threads = max(1, int(value))

    def trace(self, n, T):
        """The views for a batch of ``n`` sequences of ``T`` steps."""
        tr = self._traces.get((n, T))
        if tr is None:
            if len(self._traces) >= _MAX_TRACES:
                self._traces.clear()
            tr = self._traces[(n, T)] = _Trace(self.network, n, T, self._arena, True,
                                               self.add_rows, self.axpy)
        return tr


# --------------------------------------------------------------------------- #
# the recurrent layer                                                          #
# --------------------------------------------------------------------------- #
class RecurrentLayer:
    """One recurrent layer, one or two directions, over views of a flat vector.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    n_in : int
        Width of each step of the input sequence.
    hidden : int
        Width ``H`` of the state of each direction.
    bidirectional : bool, default=False
        Also run a reverse direction; the output is then ``2 * H`` wide, the
        forward direction's state first (as PyTorch's).
    activation : Activation, default=None
        The RNN cell's activation (tanh when None); the gated cells ignore it.

    Attributes
    ----------
    directions : list of tuple of ndarray
        ``(weight_ih, weight_hh, bias_ih, bias_hh)`` per direction, views into
        the flat vector given to :meth:`bind`.
    """

    def __init__(self, cell, n_in, hidden, bidirectional=False, activation=None):
        self.cell = make_cell(cell, activation)
        self.n_in, self.hidden = int(n_in), int(hidden)
        self.n_directions = 2 if bidirectional else 1
        self.n_gates = self.cell.n_gates
        self.directions = None

    @property
    def n_out(self):
        """Width of the output sequence, ``H * n_directions``."""
        return self.hidden * self.n_directions

    @property
    def shapes(self):
        """The shapes of ``weight_ih, weight_hh, bias_ih, bias_hh``."""
        GH = self.n_gates * self.hidden
        return (GH, self.n_in), (GH, self.hidden), (GH,), (GH,)

    @property
    def names(self):
        """Parameter names in their order in the flat vector (PyTorch's, without ``_l{k}``)."""
        return [name + ("_reverse" if d else "") for d in range(self.n_directions)
                for name in _PARAM_NAMES]

    @property
    def n_params(self):
        return self.n_directions * sum(int(np.prod(s)) for s in self.shapes)

    def views(self, flat):
        """Per direction, ``(weight_ih, weight_hh, bias_ih, bias_hh)`` views of ``flat``."""
        out, start = [], 0
        for _ in range(self.n_directions):
            arrays = []
            for shape in self.shapes:
                size = int(np.prod(shape))
                arrays.append(flat[start:start + size].reshape(shape))
                start += size
            out.append(tuple(arrays))
        return out

    def bind(self, flat):
        """Make :attr:`directions` views of ``flat`` (this layer's slice)."""
        self.directions = self.views(flat)
        return self

    def named(self):
        """The parameter views by name (``weight_ih``, ..., ``bias_hh_reverse``)."""
        return dict(zip(self.names, (a for d in self.directions for a in d)))

    def initialize(self, scheme, rng, forget_bias=1.0):
        """Draw the weights, direction by direction (see :meth:`RecurrentNetwork.initialize`)."""
        H = self.hidden
        for W_ih, W_hh, b_ih, b_hh in self.directions:
            if scheme == "sklearn":
                bound = 1.0 / np.sqrt(H)
                for a in (W_ih, W_hh, b_ih, b_hh):
                    a[...] = rng.uniform(-bound, bound, a.shape)
            else:
                for gate, act_name in enumerate(self.cell.gate_activations):
                    rows = slice(gate * H, (gate + 1) * H)
                    for W, fan_in in ((W_ih, self.n_in), (W_hh, H)):
                        W[rows] = initialize_layer(scheme, fan_in, H, rng, W.dtype,
                                                   act_name)[0].T
                b_ih[...] = 0
                b_hh[...] = 0
            if forget_bias is not None and self.cell.name == "lstm":
                self.cell.set_forget_bias(b_ih, b_hh, forget_bias)
        return self

    # ------------------------------------------------------------------ #
    def forward(self, x, lt, tr, final=None):
        """Run every direction over ``x`` of shape ``(T, n, n_in)``; fills ``lt.out``.

        With ``final`` ``(n, n_out)``, each direction's state after its last
        step goes there too, side by side (the time loops copy each block's
        rows on the thread that computed them).
        """
        cell, H = self.cell, self.hidden
        for d, weights in enumerate(self.directions):
            b = lt.dirs[d]
            W_ih, W_hh, bias = cell.prepare(b, *weights)
            last = None if final is None else final[:, d * H:(d + 1) * H]
            cell.forward(b, x, W_ih, W_hh, bias, tr.pad_mask, d == 1, tr.split, last)
        return lt.out

    # ------------------------------------------------------------------ #
    def backward(self, x, lt, tr, grads, dtop=None, dx=None, record=None):
        """Backpropagate through time; write the parameter gradients into ``grads``.

        Parameters
        ----------
        x : ndarray of shape (T, n, n_in)
            The input of the last :meth:`forward`.
        lt : _LayerTrace
            Its records; ``lt.dout`` is the gradient with respect to the
            output sequence unless ``dtop`` is given.
        tr : _Trace
        grads : list of tuple of ndarray
            Per direction, the gradient views of the four parameter arrays.
        dtop : ndarray of shape (n, n_out), default=None
            The gradient with respect to the final states (top layer).
        dx : ndarray of shape (T, n, n_in), default=None
            Where to write the gradient with respect to ``x``.
        record : ndarray of shape (T, n, H), default=None
            Receives ``dL/dh_t`` of the forward direction at every step.
        """
        T, n = x.shape[:2]
        dx2d = None if dx is None else dx.reshape(T * n, self.n_in)
        H = self.hidden
        split = tr.split if self.cell.splits else None
        for d, (W_ih, W_hh, _, _) in enumerate(self.directions):
            cols = slice(d * H, (d + 1) * H)
            dh_last = None if dtop is None else dtop[:, cols]
            dout = lt.dout[:, :, cols] if dtop is None else None
            blocks = split.blocks(n) if split is not None and self.cell.step_gradients else 1
            parts = lt.gradient_parts(d, grads[d], blocks)
            # the loops sum the blocks' gradients into the first's, grads[d] itself
            self.cell.backward(lt.dirs[d], x, W_hh, tr.pad_mask, d == 1, lt, dh_last, dout,
                               record, parts, split)
            record = None
            if self.cell.name != "gru":  # b_hh's gradient is b_ih's
                np.copyto(parts[0][3], parts[0][2])
            if dx2d is not None:
                dG = lt.dirs[d].dG.reshape(T * n, -1)
                if d == 0:
                    np.matmul(dG, W_ih, out=dx2d)
                else:
                    dx2d += np.matmul(dG, W_ih, out=lt.dx)


# --------------------------------------------------------------------------- #
# the network                                                                  #
# --------------------------------------------------------------------------- #
def _per_layer(value, n, what):
    """``value`` for each of ``n`` layers: one for all, or a list of ``n``."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{what} needs one entry per recurrent layer ({n}), "
                             f"got {len(value)}.")
        return list(value)
    return [value] * n


class RecurrentNetwork(LayerStack):
    """Stacked recurrent layers and one dense output layer over one flat vector.

    Layer ``k + 1`` reads the whole output sequence of layer ``k``; the
    output layer reads the last layer's sequence-level features: each
    direction's final state (``H * n_directions`` values per sequence).

    Parameters
    ----------
    n_features : int
        Width ``F`` of each time step.
    hidden_sizes : int or list of int
        The state width ``H`` of each recurrent layer.
    n_outputs : int
    cell : {"lstm", "gru", "rnn"}, default="lstm"
    output_activation : Activation, default=None
        Identity when None.
    bidirectional : bool, default=False
    activation : Activation or list of Activation, default=None
        The RNN cell's activation (tanh when None), for all layers or one per
        layer.
    dropout : list of float, default=None
        A rate per recurrent layer, applied to its output: the whole output
        sequence between recurrent layers, the sequence-level features
        before the output layer for the last one.
    dropout_kind : {"dropout", "alpha_dropout"} or list of them, default="dropout"
        For all layers or one per layer (the estimator picks).
    dtype : numpy dtype, default=np.float64

    Attributes
    ----------
    params : ndarray of shape (n_params,)
    recurrent : list of RecurrentLayer
    output : Dense
    n_frozen : int
        The first ``n_frozen`` layers (recurrent layers, then the output
        layer) are frozen.

    Notes
    -----
    The input of :meth:`loss_and_gradient` and :meth:`predict` is ``(N, T, F)``;
    a step whose first feature is NaN is padding. Padding is only at the end
    of a sequence, and every sequence has at least one real step.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet._core.recurrent import RecurrentNetwork
    >>> net = RecurrentNetwork(3, [8], 2, cell="gru", bidirectional=True)
    >>> net = net.initialize("sklearn", np.random.RandomState(0))
    >>> X = np.random.RandomState(1).normal(size=(4, 5, 3))
    >>> X[1, 3:] = np.nan  # the second sequence has 3 steps
    >>> net.predict(X).shape
    (4, 2)
    >>> sorted(net.weights()[0][0])[:3]
    ['bias_hh', 'bias_hh_reverse', 'bias_ih']
    """

    #: :meth:`loss_and_gradient` takes ``rows``: the training loop hands it the
    #: whole ``X`` and a batch's indices, and the rows are gathered as they are
    #: loaded (one pass over them instead of two).
    takes_rows = True

    def __init__(self, n_features, hidden_sizes, n_outputs, cell="lstm",
                 output_activation=None, bidirectional=False, activation=None,
                 dropout=None, dropout_kind="dropout", dtype=np.float64):
        hidden = [int(h) for h in np.atleast_1d(hidden_sizes)]
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden_sizes must be positive integers, got {hidden_sizes!r}.")
        self.n_features, self.n_outputs = int(n_features), int(n_outputs)
        self.dtype = np.dtype(dtype)
        widths = [self.n_features] + [h * (2 if bidirectional else 1) for h in hidden]
        acts = _per_layer(activation, len(hidden), "activation")
        self.recurrent = [RecurrentLayer(cell, widths[i], h, bidirectional, acts[i])
                          for i, h in enumerate(hidden)]
        act = get_activation("identity") if output_activation is None else output_activation
        self.output = Dense(widths[-1], self.n_outputs, act)
        rates = [0.0] * len(hidden) if dropout is None else [float(r) for r in dropout]
        if len(rates) != len(hidden):
            raise ValueError(
                f"dropout needs one rate per recurrent layer ({len(hidden)}), got {len(rates)}.")
        self.dropout = rates
        kinds = _per_layer(dropout_kind, len(hidden), "dropout_kind")
        self.dropouts = [make_dropout(r, k) for r, k in zip(rates, kinds)]
        self._offsets = self._lay_out()
        self.params = np.zeros(self._offsets[-1], dtype=self.dtype)
        for i, layer in enumerate(self.layers):
            layer.bind(self.params[self.layer_slice(i)])
        self._n_frozen = 0

    # ------------------------------------------------------------------ #
    # layout                                                               #
    # ------------------------------------------------------------------ #
    @property
    def layers(self):
        """The recurrent layers, then the output layer."""
        return self.recurrent + [self.output]

    @property
    def n_layers(self):
        """Number of layers with parameters (recurrent layers + the output layer)."""
        return len(self.recurrent) + 1

    @property
    def n_frozen(self):
        """The number of bottom layers that are frozen."""
        return self._n_frozen

    @n_frozen.setter
    def n_frozen(self, value):
        value = int(value)
        if not 0 <= value <= self.n_layers:
            raise ValueError(f"n_frozen must be in [0, {self.n_layers}], got {value}.")
        self._n_frozen = value

    def layer_arrays(self, i):
        """Layer ``i``'s parameter arrays (views into ``params``), in their layout order."""
        layer = self.layers[i]
        if isinstance(layer, Dense):
            return layer.W, layer.b
        return tuple(layer.named().values())

    def _grad_views(self, flat):
        """Per-layer views of a flat vector laid out like ``params``."""
        views = [layer.views(flat[self.layer_slice(i)])
                 for i, layer in enumerate(self.recurrent)]
        views.append(self.output.views(flat[self.layer_slice(len(self.recurrent))]))
        return views

    def workspace(self, batch_size, fast_blas=False, threads=1):
        """Buffers for mini-batches of up to ``batch_size`` sequences.

        With ``fast_blas`` (BLAS on one thread) and ``threads > 1``, the time
        loops run on ``threads`` blocks of rows, on OpenMP's threads (see
        :class:`RowSplit`).
        """
        return RecurrentWorkspace(self, batch_size, fast_blas,
                                  threads if fast_blas else 1)

    def split_parts(self, batch_size, threads=None):
        """Blocks of rows the time loops split a batch into: one per thread,
        each of at least ``_MIN_PART_ROWS`` (16) sequences, as the dense step's
        parts; 1 where a cell calls an activation back."""
        if not all(layer.cell.splits for layer in self.recurrent):
            return 1
        threads = openmp_threads() if threads is None else threads
        return int(max(1, min(threads, batch_size // _MIN_PART_ROWS)))

    # ------------------------------------------------------------------ #
    # weights                                                              #
    # ------------------------------------------------------------------ #
    def initialize(self, scheme, rng, forget_bias=1.0):
        """Draw every layer's weights from ``rng``.

        Parameters
        ----------
        scheme : str
            One of :data:`~sknet._core.initializers.INITIALIZERS`.
        rng : numpy.random.RandomState or numpy.random.Generator
        forget_bias : float or None, default=1.0
            The LSTM forget gate's starting bias (put in ``bias_ih``, with
            ``bias_hh``'s forget block set to 0); None keeps the drawn values.

        Notes
        -----
        The draws follow the layout of ``params``: layer by layer, direction
        by direction. With ``"sklearn"`` (the estimators' default) each
        recurrent array is uniform in ``±1 / sqrt(H)``, as PyTorch's,
        drawn in the order ``weight_ih, weight_hh, bias_ih, bias_hh``. Any
        other scheme draws gate block by gate block, ``weight_ih``'s block
        then ``weight_hh``'s, each as a ``(fan_in, H)`` layer of the gate's
        activation (transposed), and starts the biases at zero. The output
        layer is drawn last with :func:`~sknet._core.initializers.initialize_layer`.
        """
        resolve_initializer(scheme, "tanh")  # rejects unknown names early
        for layer in self.recurrent:
            layer.initialize(scheme, rng, forget_bias)
        W, b = initialize_layer(scheme, self.output.fan_in, self.output.fan_out, rng,
                                self.dtype, self.output.activation.name)
        self.output.W[...] = W
        self.output.b[...] = b
        return self

    def weights(self):
        """``(recurrent, coefs, intercepts)``: per-layer dicts of views, the output layer.

        ``recurrent[k]`` maps ``weight_ih``, ``weight_hh``, ``bias_ih``,
        ``bias_hh`` (and their ``_reverse``) to views of ``params``;
        ``coefs = [W_out]`` of shape ``(H * n_directions, n_outputs)`` and
        ``intercepts = [b_out]``.
        """
        return [layer.named() for layer in self.recurrent], [self.output.W], [self.output.b]

    def set_weights(self, recurrent, coefs, intercepts):
        """Copy arrays laid out as :meth:`weights` returns them into ``params``."""
        if len(recurrent) != len(self.recurrent) or len(coefs) != 1 or len(intercepts) != 1:
            raise ValueError(
                f"Expected {len(self.recurrent)} recurrent layers, one output weight "
                f"matrix and one bias, got {len(recurrent)}, {len(coefs)} and "
                f"{len(intercepts)}.")
        pairs = []
        for k, (layer, given) in enumerate(zip(self.recurrent, recurrent)):
            named = layer.named()
            if set(given) != set(named):
                raise ValueError(
                    f"recurrent[{k}] has the arrays {sorted(given)}, expected {sorted(named)}.")
            pairs += [(named[key], given[key], f"recurrent[{k}][{key!r}]") for key in named]
        pairs += [(self.output.W, coefs[0], "coefs[0]"),
                  (self.output.b, intercepts[0], "intercepts[0]")]
        for dst, src, what in pairs:
            if np.shape(src) != dst.shape:
                raise ValueError(f"{what} has shape {np.shape(src)}, expected {dst.shape}.")
        for dst, src, _ in pairs:
            dst[...] = src
        return self

    # ------------------------------------------------------------------ #
    # forward                                                              #
    # ------------------------------------------------------------------ #
    def _check(self, X):
        if issparse(X):
            raise TypeError("A recurrent network does not take sparse input.")
        X = np.asarray(X)
        if X.ndim != 3 or X.shape[2] != self.n_features:
            raise ValueError(
                f"Expected sequences of shape (n_samples, n_steps, {self.n_features}), "
                f"got {X.shape}.")
        return X

    def _load(self, X, tr, rows=None):
        """``X`` (or its sequences ``rows``) into ``tr.x`` in the time loops' layout,
        padding found and zeroed there (each block of rows on the thread that runs
        its time loops)."""
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if rows is not None:
            rows = np.ascontiguousarray(rows, dtype=np.intp)
        padded = _fast.load_steps(X, tr.x, tr.pad_steps, *_blocks_and_threads(tr.split),
                                  rows=rows)
        tr.pad_mask = tr.pad_steps if padded else None

    def _forward(self, X, tr, training=False, rng=None):
        """Forward pass recording in ``tr``; returns the output (a view into ``tr``)."""
        feat = self._features(X, tr, training, rng)
        return self.output.forward(feat, tr.P, tr.add_rows, tr.ones_n, pre=tr.Z)

    def _features(self, X, tr, training=False, rng=None, rows=None):
        """The recurrent layers' pass recording in ``tr`` (over ``X[rows]`` with
        ``rows``); returns what the output layer reads (``tr.feat_in``: the
        features, after dropout when training)."""
        self._load(X, tr, rows)
        x, last = tr.x, len(self.recurrent) - 1
        for k, layer in enumerate(self.recurrent):
            tr.inputs[k] = x
            out = layer.forward(x, tr.layers[k], tr, tr.feat if k == last else None)
            if k < last:
                x = self._drop(k, out, tr, training, rng)
        tr.feat_in = self._drop(last, tr.feat, tr, training, rng)
        return tr.feat_in

    def _drop(self, k, a, tr, training, rng):
        drop = self.dropouts[k]
        tr.dropped_now[k] = dropped = training and drop is not None
        if not dropped:
            return a
        if a.ndim == 2 or min(tr.parts, tr.n) == 1:
            return drop.forward(a, tr.masks[k], tr.dropped[k], rng)
        # An output sequence in blocks: its units are drawn time-major, as on one
        # block, so that what is dropped does not depend on the number of threads.
        seq, mask = (tr.alloc(f"drop{k}{name}", a.shape) for name in ("seq", "mask"))
        drop.forward(_fast.time_major(a, tr.parts, out=seq), mask, seq, rng)
        _fast.blocked(mask, tr.parts, out=tr.masks[k])
        return _fast.blocked(seq, tr.parts, out=tr.dropped[k])

    def _fresh_trace(self, n, T, backward=False):
        """A trace of its own (nothing shared with any other call)."""
        return _Trace(self, n, T, _Arena(self.dtype, reuse=False), backward,
                      add_rows_for(self.dtype, False), axpy_for(self.dtype, False))

    def predict(self, X):
        """The output for ``X`` with dropout off. Allocates per call: thread-safe."""
        X = self._check(X)
        n, T = X.shape[:2]
        widest = max(layer.n_gates * layer.hidden + layer.n_out for layer in self.recurrent)
        block = max(1, _BLOCK_BYTES // (T * widest * self.dtype.itemsize))
        if n <= block:
            return self._forward(X, self._fresh_trace(n, T))
        out = np.empty((n, self.n_outputs), dtype=self.dtype)
        for start in range(0, n, block):
            stop = min(start + block, n)
            out[start:stop] = self._forward(X[start:stop], self._fresh_trace(stop - start, T))
        return out

    def features(self, X):
        """The sequence-level features the output layer reads, ``(N, H * n_directions)``."""
        X = self._check(X)
        tr = self._fresh_trace(X.shape[0], X.shape[1])
        self._forward(X, tr)
        return tr.feat

    def sequence_output(self, X, layer=-1):
        """The output sequence of recurrent ``layer``, ``(N, T, H * n_directions)``.

        Padding steps are 0 there, as in PyTorch's ``pad_packed_sequence``.
        """
        X = self._check(X)
        tr = self._fresh_trace(X.shape[0], X.shape[1])
        self._forward(X, tr)
        out = _fast.time_major(tr.layers[layer].out, tr.parts).transpose(1, 0, 2).copy()
        np.copyto(out, 0, where=tr.pad.transpose(1, 0, 2))
        return out

    # ------------------------------------------------------------------ #
    # backward                                                             #
    # ------------------------------------------------------------------ #
    def _backward(self, tr, loss, Y, sample_weight, scale, alpha, l1, grads, lowest,
                  record=None):
        """Backpropagate the last forward pass down to layer ``lowest``."""
        L = len(self.recurrent)
        if lowest > L:
            return
        delta = output_delta(loss, self.output.activation, Y, tr.P, Z=tr.Z, out=tr.delta)
        if sample_weight is not None:
            delta *= sample_weight[:, None]
        if scale != 1.0:
            delta *= scale
        gW, gb = grads[L]
        self.output.backward_params(tr.feat_in, delta, gW, gb, tr.ones_n)
        add_penalty_gradient(self.output.W, gW, alpha * scale, l1 * scale, tr.axpy)
        if lowest == L:
            return
        dtop = self.output.backward_input(delta, tr.dfeat)
        self._backward_layers(tr, dtop, scale, alpha, l1, grads, lowest, record)

    def _backward_layers(self, tr, dtop, scale, alpha, l1, grads, lowest, record=None):
        """Backpropagate ``dtop``, the gradient with respect to the features
        (before dropout), through the recurrent layers down to ``lowest``."""
        L = len(self.recurrent)
        if tr.dropped_now[L - 1]:
            self.dropouts[L - 1].backward(tr.masks[L - 1], dtop)
        for k in range(L - 1, lowest - 1, -1):
            dx = tr.layers[k - 1].dout if k > lowest else None
            layer = self.recurrent[k]
            layer.backward(tr.inputs[k], tr.layers[k], tr, grads[k],
                           dtop if k == L - 1 else None, dx, record if k == 0 else None)
            for (W_ih, W_hh, _, _), (gW_ih, gW_hh, _, _) in zip(layer.directions, grads[k]):
                add_penalty_gradient(W_ih, gW_ih, alpha * scale, l1 * scale, tr.axpy)
                add_penalty_gradient(W_hh, gW_hh, alpha * scale, l1 * scale, tr.axpy)
            if dx is not None and tr.dropped_now[k - 1]:
                self.dropouts[k - 1].backward(tr.masks[k - 1], dx)

    def _penalized(self, output=True):
        """The trainable weight matrices (biases are not penalized); ``output``:
        the output layer's among them."""
        mats = [W for layer in self.recurrent[self._n_frozen:]
                for W_ih, W_hh, _, _ in layer.directions for W in (W_ih, W_hh)]
        if output and self._n_frozen < self.n_layers:
            mats.append(self.output.W)
        return mats

    def _head_code(self, loss, ws, n):
        """The compiled output code for ``loss`` (see :func:`_head_step`), or None
        where the output layer runs in numpy."""
        if ws.head is None or n > ws.batch_size:
            return None
        name = kernel_output(loss, self.output.activation, self.n_outputs)
        return None if name is None else OUTPUT_CODES[name]

    def _compiled_head(self, tr, ws, feat, Y, sample_weight, sw_sum, code, alpha, l1,
                       data_scale=1.0):
        """The output layer's loss, delta and gradients in its compiled step
        (``ws.head``), then the recurrent layers' backward pass; returns the
        penalized mean loss (its data term times ``data_scale``)."""
        L, dt, n = len(self.recurrent), self.dtype, feat.shape[0]
        Y = np.ascontiguousarray(Y, dtype=dt)
        sw = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=dt)
        scale = 1.0 / sw_sum
        rows = self.layer_slice(L)
        total, squares, absolutes = ws.head.run(
            feat, Y, sw, self.params[rows], ws.grad[rows], code, scale, alpha * scale,
            l1 * scale, int(self._n_frozen > L), False)
        penalty = 0.5 * alpha * squares + l1 * absolutes
        penalty += penalty_value(self._penalized(output=False), alpha, l1)
        if self._n_frozen < L:
            dtop = np.matmul(ws.head_delta[:n], self.output.W.T, out=tr.dfeat)
            self._backward_layers(tr, dtop, scale, alpha, l1, ws.grad_views, self._n_frozen)
        return (data_scale * total + penalty) / sw_sum

    def loss_and_gradient(self, X, Y, loss, sample_weight=None, alpha=0.0, l1=0.0,
                          ws=None, grad=None, training=False, rng=None, rows=None):
        """Penalized mean loss and its gradient with respect to ``params``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_steps, n_features)
            NaN-padded at the end of shorter sequences; never modified. With
            ``rows``, the sequences the batch is taken from.
        Y : ndarray of shape (n_samples, n_outputs)
            The batch's targets (``len(rows)`` of them with ``rows``).
        loss : Loss
        sample_weight : ndarray of shape (n_samples,), default=None
            Scales each sequence's loss.
        alpha, l1 : float, default=0.0
            L2 and L1 strengths, on ``weight_ih``, ``weight_hh`` and the output
            weights of the trainable layers, divided by the weight sum.
        ws : RecurrentWorkspace, default=None
        grad : ndarray laid out like ``params``, default=None
            Where to write the gradient; the workspace's own buffer when None.
        training : bool, default=False
            Apply dropout (needs ``rng``, a numpy Generator).
        rng : numpy.random.Generator, default=None
        rows : ndarray of shape (n_samples,) of intp, default=None
            The batch is ``X[rows]``, gathered as it is loaded (see
            :attr:`takes_rows`).

        Returns
        -------
        loss : float
        grad : ndarray laid out like ``params`` (zero on the frozen prefix)
        sw_sum : float
            The weight sum the gradient was divided by (0 means no update).
        """
        X = self._check(X)
        n, T = X.shape[:2] if rows is None else (len(rows), X.shape[1])
        ws = self.workspace(n) if ws is None else ws
        tr = ws.trace(n, T)
        tr.split = getattr(ws, "split", None)
        sw_sum = float(n if sample_weight is None else np.sum(sample_weight))
        feat = self._features(X, tr, training, rng, rows)
        code = self._head_code(loss, ws, n)
        off = self.trainable_offset
        ws.grad[:off] = 0
        if sw_sum <= 0:
            ws.grad[off:] = 0
            value = 0.0
        elif code is not None:
            value = self._compiled_head(tr, ws, feat, Y, sample_weight, sw_sum, code, alpha,
                                        l1, loss.data_scale)
        else:
            P = self.output.forward(feat, tr.P, tr.add_rows, tr.ones_n, pre=tr.Z)
            value = loss.scaled_value(Y, P, sample_weight)
            value += penalty_value(self._penalized(), alpha, l1) / sw_sum
            self._backward(tr, loss, Y, sample_weight, 1.0 / sw_sum, alpha, l1,
                           ws.grad_views, self._n_frozen)
        if grad is None:
            return value, ws.grad, sw_sum
        grad[...] = ws.grad
        return value, grad, sw_sum

    def state_gradient_norms(self, X, Y, loss):
        """Mean norm of ``dL_i/dh_t`` of the first layer's forward direction, per step.

        ``L_i`` is sequence ``i``'s own loss (no penalty, no dropout) and
        ``h_t`` the state at step ``t`` (for the LSTM, ``h_t``, not ``c_t``):
        the picture of vanishing and exploding gradients.

        Returns
        -------
        norms : ndarray of shape (n_steps,)
        """
        X = self._check(X)
        n, T = X.shape[:2]
        tr = self._fresh_trace(n, T, backward=True)
        self._forward(X, tr)
        record = np.empty((T, n, self.recurrent[0].hidden), dtype=self.dtype)
        grads = self._grad_views(np.zeros_like(self.params))
        self._backward(tr, loss, Y, None, 1.0, 0.0, 0.0, grads, 0, record)
        return np.sqrt(np.einsum("tnh,tnh->tn", record, record)).mean(axis=1)
