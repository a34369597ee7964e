"""A stack of dense layers over one flat parameter vector.

Layer ``i`` is a :class:`~sknet._core.layers.Dense` whose weight matrix
``coefs[i]`` of shape ``(layer_units[i], layer_units[i + 1])`` and bias
``intercepts[i]`` are views into ``params``, laid out layer by layer (weights,
then bias). A hidden layer may be followed by a dropout layer
(:class:`~sknet._core.layers.Dropout` or
:class:`~sknet._core.layers.AlphaDropout`: the estimator picks which). The
first ``n_frozen`` layers are therefore a prefix of ``params``: an optimizer
steps ``params[trainable_offset:]`` and never touches a frozen layer. Since
frozen layers are always the bottom ones, no trainable layer lies below them
and the backward pass stops at the lowest trainable layer.

Two flags are kept apart: ``training`` (dropout active, passed per call) and
the frozen prefix (a property of the network). :class:`Network` implements
the protocol of :mod:`sknet._core.protocol`.

:meth:`Network.loss_and_gradient` runs the compiled step of
:mod:`sknet._core._dense_fast` where every activation and the output pair
have a compiled form (the built-in activations except ``exp``; the canonical
output pairs), and the numpy layers (:meth:`Network.forward`,
:meth:`Network.backward`) otherwise: registered activations, non-canonical
losses. The tied autoencoder (:class:`~sknet._core.tied.TiedNetwork`) runs the
same step on an untied copy of its weights.
"""

import numpy as np

from ._dense_fast import ACTIVATION_CODES, OUTPUT_CODES, DenseStep, openmp_threads
from .blas import add_rows_for, axpy_for
from .initializers import initialize_layer
from .layers import Dense, LayerStack, _dot, _dot_tn, make_dropout
from .losses import is_canonical, kernel_output, output_delta
from .optimizers import step_scale
from .regularization import add_penalty_gradient, penalty_value

__all__ = ["Network", "Workspace", "feed_forward"]


# Rows per block when predicting: each layer's block of activations stays
# within a few MB, so every pass over it runs from the cache, and the memory
# a prediction needs does not grow with the number of rows.
_BLOCK_BYTES = 4 * 2 ** 20

# Below this many floating-point operations per mini-batch product, the
# compiled step does the products itself through scipy's BLAS on one thread
# (the estimators then hold every BLAS to one thread: ``SMALL_PRODUCT_FLOPS``
# in ``sknet._base``); above it, numpy's threaded BLAS does them, unless the
# step is split between threads (see ``Network.split_parts``).
_SMALL_PRODUCT_FLOPS = 16e6

# A part of a step split between threads has at least this many rows and this
# much arithmetic, or handing it to another thread costs more than it saves.
_MIN_PART_ROWS = 16
_MIN_PART_FLOPS = 2.5e5


def feed_forward(X, coefs, intercepts, activations):
    """The output of dense layers for ``X``, dropout off, block of rows by block.

    Every intermediate array is allocated by this call, so concurrent calls
    on the same weights never share scratch memory.
    """
    n = X.shape[0]
    widest = max(W.shape[1] for W in coefs)
    itemsize = np.result_type(X.dtype, coefs[0].dtype).itemsize
    block = max(256, _BLOCK_BYTES // (widest * itemsize))
    if n <= block:
        return _feed_forward_block(X, coefs, intercepts, activations)
    first = _feed_forward_block(X[:block], coefs, intercepts, activations)
    out = np.empty((n, first.shape[1]), dtype=first.dtype)
    out[:block] = first
    for start in range(block, n, block):
        out[start:start + block] = _feed_forward_block(
            X[start:start + block], coefs, intercepts, activations)
    return out


def _feed_forward_block(X, coefs, intercepts, activations):
    a = X
    for W, b, act in zip(coefs, intercepts, activations):
        z = np.asarray(a @ W)
        z += b
        a = act.forward(z)
    return a


class Network(LayerStack):
    """Dense layers, their activations, dropout layers and a frozen prefix.

    Parameters
    ----------
    layer_units : list of int
        Widths from the input to the output, e.g. ``[64, 100, 10]``.
    activations : list of Activation
        One per layer after the input (the last one is the output activation).
    dtype : numpy dtype, default=np.float64
    dropout : list of float, default=None
        A rate per hidden layer (0 means no dropout).
    dropout_kind : str or list of str, default="dropout"
        ``"dropout"`` or ``"alpha_dropout"``, for all hidden layers or one per
        hidden layer (the estimators use alpha dropout after ``selu`` layers).
    """

    def __init__(self, layer_units, activations, dtype=np.float64, dropout=None,
                 dropout_kind="dropout"):
        if len(activations) != len(layer_units) - 1:
            raise ValueError("Need one activation per layer after the input.")
        self.layer_units = [int(u) for u in layer_units]
        self.activations = list(activations)
        self.dtype = np.dtype(dtype)
        n_hidden = len(layer_units) - 2
        self.dropout = [0.0] * n_hidden if dropout is None else [float(p) for p in dropout]
        kinds = [dropout_kind] * n_hidden if isinstance(dropout_kind, str) else dropout_kind
        self.layers = [Dense(fi, fo, act) for fi, fo, act in
                       zip(self.layer_units[:-1], self.layer_units[1:], self.activations)]
        self.dropouts = [make_dropout(p, k) for p, k in zip(self.dropout, kinds)] + [None]
        self.n_frozen = 0
        self._offsets = self._lay_out()
        self._bind(np.zeros(self._offsets[-1], dtype=self.dtype))

    def _step_offsets(self):
        """Where each layer's parameters start in the compiled step's flat vectors.

        The layout of ``params``: every layer owns its weight matrix.
        """
        return self._offsets

    def _step_arrays(self, ws, in_kernel):
        """The compiled step's flat parameters and gradient, and the views it uses.

        ``in_kernel`` says whether the kernel does the matrix products itself
        (and so reads every weight from the flat vector), rather than numpy
        with the returned weight views. Returns ``(params, grad, coefs,
        grad_coefs)``: here ``params``, the workspace's gradient, and their
        views.
        """
        return self.params, ws.grad, self.coefs, ws.grad_views[0]

    # Whether the compiled step may run whole epochs (:meth:`epoch_runner`): its
    # parameters and gradient are ``params`` and the workspace's ``grad``.
    _compiled_epoch = True

    def epoch_runner(self, loss, ws, alpha=0.0, l1=0.0, rng=None):
        """A whole training epoch in compiled code, for ``loss`` with the workspace ``ws``.

        Returns ``run(X, Y, sw, order, Xb, Yb, swb, optimizer, lr, scale,
        clip_norm, choice)``, which is
        :meth:`~sknet._core._dense_fast.DenseStep.run_epoch` with this
        network's step, penalties (``alpha``, ``l1``) and dropout draws
        (from ``rng``, in the order :meth:`loss_and_gradient` draws them);
        None where the step does not do the products itself
        (``ws.blas_in_kernel``) or ``loss`` has no compiled output delta. The
        epoch's steps are those of :meth:`loss_and_gradient` (with
        ``training=True``) followed by the optimizer's.
        """
        code = self._output_code(loss, None, ws)
        if not self._compiled_epoch or code is None or not ws.blas_in_kernel:
            return None
        dropping = [i for i, d in enumerate(self.dropouts) if d is not None]
        dt = self.dtype

        def draw(n):  # uniform draws, turned into the masks by the kernel
            masks = ws.rows(n).masks
            for i in dropping:
                rng.random(out=masks[i], dtype=dt)

        def run(X, Y, sw, order, Xb, Yb, swb, optimizer, lr, scale, clip_norm, choice):
            scale = step_scale(scale, self.params.size - self.trainable_offset, dt)
            return ws.step.run_epoch(
                X, Y, sw, order, Xb, Yb, swb, self.params, ws.grad, self.trainable_offset,
                code, alpha, l1, self.n_frozen, bool(dropping), optimizer, lr, scale,
                clip_norm, choice, draw if dropping else None, ws.parts, ws.threads,
                getattr(ws, "openmp", True), loss.data_scale)
        return run

    def split_parts(self, batch_size, threads=None):
        """How many parts the compiled step cuts a batch of ``batch_size`` rows into.

        One per thread (``threads``; by default the threads OpenMP may use
        now, 0 when sknet was built without it), each of at least
        ``_MIN_PART_ROWS`` rows and ``_MIN_PART_FLOPS`` floating-point
        operations; 1 where the step is not compiled. The workspace made
        with ``threads=split_parts(...)`` and ``fast_blas=True`` then runs
        the step's products on its threads, each calling BLAS on one thread.
        """
        if self._kernel_activations() is None:
            return 1
        threads = openmp_threads() if threads is None else threads
        units = self.layer_units
        flops = 6.0 * batch_size * sum(a * b for a, b in zip(units[:-1], units[1:]))
        return int(max(1, min(threads, batch_size // _MIN_PART_ROWS,
                              flops // _MIN_PART_FLOPS)))

    def _kernel_activations(self):
        """Per layer, ``(code, p1, p2)`` of the compiled activation, or None.

        None when some layer's activation has no compiled form (a registered
        one, ``exp``), or softmax is not only the output's.
        """
        if self.dtype.char not in "fd":
            return None
        kernels = []
        for i, act in enumerate(self.activations):
            if act.kernel is None or (act.kernel[0] == "softmax" and i < self.n_layers - 1):
                return None
            name, p1, p2 = act.kernel
            kernels.append((ACTIVATION_CODES[name], float(p1), float(p2)))
        return kernels

    def _bind(self, params):
        """Make ``params`` the network's vector, and every layer a view into it."""
        self.params = params
        self.coefs, self.intercepts = self.views(params)
        for layer, W, b in zip(self.layers, self.coefs, self.intercepts):
            layer.W, layer.b = W, b

    @property
    def n_layers(self):
        """Number of weight layers (hidden layers + the output layer)."""
        return len(self.layer_units) - 1

    def layer_arrays(self, i):
        """Layer ``i``'s parameter arrays (views into ``params``): weights, bias."""
        return self.coefs[i], self.intercepts[i]

    def views(self, flat):
        """Split a flat vector laid out like ``params`` into per-layer views."""
        pairs = [layer.views(flat[self.layer_slice(i)]) for i, layer in enumerate(self.layers)]
        return [W for W, _ in pairs], [b for _, b in pairs]

    def workspace(self, batch_size, fast_blas=False, threads=1):
        """Buffers for batches of up to ``batch_size`` rows (see :class:`Workspace`)."""
        return Workspace(self, batch_size, fast_blas=fast_blas, threads=threads)

    # ------------------------------------------------------------------ #
    # weights                                                              #
    # ------------------------------------------------------------------ #
    def initialize(self, scheme, rng, init_activations=None):
        """Draw every layer's weights with ``scheme`` (see initializers)."""
        names = init_activations or [a.name for a in self.activations]
        for i, (fi, fo) in enumerate(zip(self.layer_units[:-1], self.layer_units[1:])):
            W, b = initialize_layer(scheme, fi, fo, rng, self.dtype, names[i])
            self.coefs[i][...] = W
            self.intercepts[i][...] = b
        return self

    def set_weights(self, coefs, intercepts):
        """Copy per-layer arrays into ``params``, checking every shape."""
        if len(coefs) != self.n_layers or len(intercepts) != self.n_layers:
            raise ValueError(
                f"Expected {self.n_layers} weight matrices and bias vectors, got "
                f"{len(coefs)} and {len(intercepts)}."
            )
        for i in range(self.n_layers):
            for dst, src, what in ((self.coefs[i], coefs[i], "coefs_"),
                                   (self.intercepts[i], intercepts[i], "intercepts_")):
                src = np.asarray(src)
                if src.shape != dst.shape:
                    raise ValueError(
                        f"{what}[{i}] has shape {src.shape}, expected {dst.shape}."
                    )
                dst[...] = src
        return self

    # ------------------------------------------------------------------ #
    # forward                                                              #
    # ------------------------------------------------------------------ #
    def predict(self, X):
        """Forward pass with dropout off. Allocates per call: thread-safe."""
        return feed_forward(X, self.coefs, self.intercepts, self.activations)

    def forward(self, X, ws, training=False, rng=None):
        """Forward pass that records what backward needs in ``ws``.

        Returns the output, a view into the workspace.
        """
        rows = ws.rows(X.shape[0])
        add_rows, ones = ws.add_rows, rows.ones
        a = X
        for i, (layer, drop) in enumerate(zip(self.layers, self.dropouts)):
            a = layer.forward(a, rows.acts[i], add_rows, ones, rows.pre[i],
                              rows.act_masks[i])
            dropped = training and drop is not None
            if dropped:
                a = drop.forward(a, rows.masks[i], rows.dropped[i], rng)
            ws.dropped_now[i] = dropped
            ws.inputs[i + 1] = a
        ws.inputs[0] = X
        return a

    # ------------------------------------------------------------------ #
    # backward                                                             #
    # ------------------------------------------------------------------ #
    def backward(self, loss, Y, ws, grad_views, sample_weight=None, scale=1.0,
                 alpha=0.0, l1=0.0, fused=None):
        """Backpropagate the loss of the last ``forward``.

        Writes ``scale * (dL_sum/dW + penalty gradient)`` into ``grad_views``
        (per-layer views of a flat gradient, as returned by :meth:`views`)
        for the trainable layers; the frozen prefix is left untouched.
        ``scale`` is ``1 / sum(sample_weight)``: folding it into the output
        delta makes every later product come out already averaged.
        """
        ws.add_deltas()
        rows = ws.rows(Y.shape[0])
        last = self.n_layers - 1
        g_coefs, g_intercepts = grad_views
        delta = output_delta(loss, self.activations[last], Y, ws.inputs[last + 1],
                             Z=rows.pre[last], out=rows.deltas[last], fused=fused)
        if sample_weight is not None:
            delta *= sample_weight[:, None]
        if scale != 1.0:
            delta *= scale
        for i in range(last, self.n_frozen - 1, -1):
            self.layers[i].backward_params(ws.inputs[i], delta, g_coefs[i],
                                           g_intercepts[i], rows.ones)
            add_penalty_gradient(self.coefs[i], g_coefs[i], alpha * scale, l1 * scale,
                                 ws.axpy)
            if i > self.n_frozen:
                delta = self._backward_hidden(i - 1, delta, ws, rows)

    def _backward_hidden(self, j, delta_above, ws, rows):
        """Delta of hidden layer ``j`` from the delta of layer ``j + 1``."""
        out = rows.acts[j] if rows.deltas[j] is None else rows.deltas[j]
        d = self.layers[j + 1].backward_input(delta_above, out)
        if ws.dropped_now[j]:
            d = self.dropouts[j].backward(rows.masks[j], d)
        return self.layers[j].backward_activation(d, rows.acts[j], rows.pre[j],
                                                  rows.act_masks[j])

    # ------------------------------------------------------------------ #
    # the loss and its gradient                                            #
    # ------------------------------------------------------------------ #
    def loss_and_gradient(self, X, Y, loss, sample_weight=None, alpha=0.0, l1=0.0,
                          ws=None, grad=None, training=False, rng=None, fused=None):
        """Penalized mean loss and its gradient with respect to ``params``.

        The loss is the sample-weighted mean of the per-sample loss plus
        ``(0.5 * alpha * ||W||^2 + l1 * |W|_1) / sum(sample_weight)`` over the
        trainable weight matrices (biases are not penalized), exactly the
        scaling scikit-learn's MLP uses for its L2 term.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, n_features)
        Y : ndarray of shape (n_samples, n_outputs)
        loss : Loss
        sample_weight : ndarray of shape (n_samples,), default=None
        alpha, l1 : float, default=0.0
            L2 and L1 strengths.
        ws : Workspace, default=None
            Buffers to reuse; a new one is made when None.
        grad : ndarray laid out like ``params``, default=None
            Where to write the gradient; the workspace's own buffer when None.
        training : bool, default=False
            Apply dropout (needs ``rng``).
        rng : numpy.random.Generator, default=None
        fused : bool, default=None
            Force or forbid the fused canonical output delta.

        Returns
        -------
        loss : float
        grad : ndarray laid out like ``params`` (zero on the frozen prefix)
        sw_sum : float
            The weight sum the gradient was divided by (0 means no update).
        """
        n = X.shape[0]
        if ws is None:
            ws = self.workspace(n)
        sw_sum = float(n if sample_weight is None else np.sum(sample_weight))
        code = self._output_code(loss, fused, ws)
        if code is not None and sw_sum > 0:
            value = self._compiled_loss_and_gradient(X, Y, code, sample_weight, sw_sum,
                                                     alpha, l1, ws, training, rng,
                                                     loss.data_scale)
            if grad is None:
                return value, ws.grad, sw_sum
            grad[...] = ws.grad
            return value, grad, sw_sum
        P = self.forward(X, ws, training=training, rng=rng)
        if sw_sum <= 0:
            ws.grad[self.trainable_offset:] = 0
            value = 0.0
        else:
            value = loss.scaled_value(Y, P, sample_weight)
            value += penalty_value(self.coefs[self.n_frozen:], alpha, l1) / sw_sum
            self.backward(loss, Y, ws, ws.grad_views, sample_weight, 1.0 / sw_sum,
                          alpha, l1, fused=fused)
        if grad is None:
            return value, ws.grad, sw_sum
        grad[...] = ws.grad
        return value, grad, sw_sum

    # ------------------------------------------------------------------ #
    # the compiled step                                                    #
    # ------------------------------------------------------------------ #
    def _output_code(self, loss, fused, ws):
        """The compiled output kernel for ``loss``, or None for the numpy passes."""
        if ws.step is None or fused is False:
            return None
        name = kernel_output(loss, self.activations[-1], self.layer_units[-1])
        if name is None or (fused and not is_canonical(loss, self.activations[-1])):
            return None
        return OUTPUT_CODES[name]

    def _compiled_loss_and_gradient(self, X, Y, code, sample_weight, sw_sum, alpha, l1,
                                    ws, training, rng, data_scale=1.0):
        """The penalized mean loss (its data term times ``data_scale``); the gradient
        goes into ``ws.grad``.

        The same quantities as the numpy passes (:meth:`forward`,
        :meth:`backward`), computed by :class:`~sknet._core._dense_fast.DenseStep`.
        """
        dt, n = self.dtype, X.shape[0]
        dense = isinstance(X, np.ndarray) and X.dtype == dt and X.flags.c_contiguous
        in_kernel = ws.blas_in_kernel and dense
        if not in_kernel:
            ws.add_deltas()
        rows = ws.rows(n)
        params, grad, coefs, g_coefs = self._step_arrays(ws, in_kernel)
        dropping = [training and d is not None for d in self.dropouts]
        for i, drops in enumerate(dropping):
            if drops:  # uniform draws, turned into the mask by the kernel
                rng.random(out=rows.masks[i], dtype=dt)
        Y = np.ascontiguousarray(Y, dtype=dt)
        sw = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=dt)
        scale = 1.0 / sw_sum
        if in_kernel:
            total, squares, absolutes = ws.step.run(
                X, Y, sw, params, grad, code, scale, alpha * scale, l1 * scale,
                self.n_frozen, training and any(dropping), ws.parts, ws.threads)
        else:
            total, squares, absolutes = self._staged(
                X, Y, sw, code, scale, alpha, l1, ws, rows, dropping,
                (params, grad, coefs, g_coefs))
        return (data_scale * total + 0.5 * alpha * squares + l1 * absolutes) / sw_sum

    def _staged(self, X, Y, sw, code, scale, alpha, l1, ws, rows, dropping, arrays):
        """The compiled step's stages, with numpy doing the matrix products.

        ``arrays`` is :meth:`_step_arrays`'s ``(params, grad, coefs, grad_coefs)``.
        """
        step, n = ws.step, X.shape[0]
        params, grad, coefs, g_coefs = arrays
        inputs = [X]
        for i in range(self.n_layers):
            _dot(inputs[i], coefs[i], rows.acts[i])
            step.forward_layer(params, i, n, dropping[i])
            inputs.append(rows.dropped[i] if dropping[i] else rows.acts[i])
        total = step.output_delta(Y, sw, n, code, scale)
        squares = absolutes = 0.0
        for i in range(self.n_layers - 1, self.n_frozen - 1, -1):
            _dot_tn(inputs[i], rows.deltas[i], g_coefs[i])
            sq, ab = step.layer_gradient(params, grad, i, n, alpha * scale, l1 * scale)
            squares, absolutes = squares + sq, absolutes + ab
            if i > self.n_frozen:
                np.matmul(rows.deltas[i], coefs[i].T, out=rows.deltas[i - 1])
                step.hidden_delta(i - 1, n, dropping[i - 1])
        return total, squares, absolutes


class Workspace:
    """Buffers for one batch size, allocated once per fit and reused.

    Where every activation has a compiled form (see
    :meth:`Network._kernel_activations`), ``step`` is a
    :class:`~sknet._core._dense_fast.DenseStep` over these buffers, and
    ``blas_in_kernel`` says whether it does the matrix products itself: with
    ``fast_blas=True`` (BLAS held to one thread, see :mod:`sknet._core.blas`)
    and products small enough that one thread suits them; it then splits
    each batch between ``threads`` threads (see
    :meth:`~sknet._core._dense_fast.DenseStep.run`). The numpy passes
    (for the other activations and losses) do the bias additions and the L2
    gradient in BLAS with ``fast_blas=True``.
    """

    def __init__(self, network, batch_size, fast_blas=False, threads=1):
        dt, units = network.dtype, network.layer_units
        self.axpy = axpy_for(dt, fast_blas)
        self.add_rows = add_rows_for(dt, fast_blas)
        L = network.n_layers
        acts = network.activations
        kernels = network._kernel_activations()

        def per_layer(wanted):  # a (batch, width) buffer for each layer that wants one
            return [np.empty((batch_size, units[i + 1]), dtype=dt) if wanted(i) else None
                    for i in range(L)]

        hidden = range(L - 1)

        def drops(i):
            return network.dropouts[i] is not None

        self.acts = per_layer(lambda i: True)
        self.pre = per_layer(lambda i: acts[i].derivative_of == "input")
        self.masks, self.dropped = per_layer(drops), per_layer(drops)
        # The compiled step takes every derivative from the activations.
        self.act_masks = per_layer(lambda i: kernels is None and i in hidden
                                   and acts[i].masked is not None)
        # A layer whose derivative is in its mask gets its delta written over
        # its activations (no longer needed once the layer above has its
        # gradient), so it needs no delta buffer of its own; nor does a
        # hidden layer of a step by rows, which does the same.
        self._needs_delta = [self.act_masks[i] is None for i in range(L)]
        self.deltas = per_layer(lambda i: self._needs_delta[i] and (
            kernels is None or i == L - 1))
        self.step = None if kernels is None else DenseStep(
            units, network._step_offsets(), kernels, network.dropouts, self.acts, self.deltas,
            self.masks, self.dropped, dt)
        largest = max(2.0 * batch_size * a * b for a, b in zip(units[:-1], units[1:]))
        # the kernel does the products: small ones, or any split between threads
        self.blas_in_kernel = bool(fast_blas) and self.step is not None and (
            largest < _SMALL_PRODUCT_FLOPS or threads > 1)
        self.parts = max(1, int(threads)) if self.blas_in_kernel else 1
        self.threads = self.parts  # how many of them the step uses now
        self._per_layer = per_layer
        self._rows = {}
        if self.step is not None and not (self.blas_in_kernel
                                          and self.step.splits_by_rows(self.parts)):
            self.add_deltas()
        self.ones = np.ones(batch_size, dtype=dt)
        self.inputs = [None] * (L + 1)
        self.dropped_now = [False] * L
        self.grad = np.zeros_like(network.params)
        self.grad_views = network.views(self.grad)

    def add_deltas(self):
        """Give every layer that needs one its delta buffer (the numpy passes and the
        staged step write the deltas there, not over the activations)."""
        if all(d is not None or not needs for d, needs in zip(self.deltas, self._needs_delta)):
            return
        made = self._per_layer(lambda i: self._needs_delta[i] and self.deltas[i] is None)
        self.deltas = [d if new is None else new for d, new in zip(self.deltas, made)]
        if self.step is not None:
            self.step.set_deltas(self.deltas)
        self._rows = {}  # views of the old list

    def rows(self, n):
        """The buffers' first ``n`` rows (views, made once per ``n``)."""
        rows = self._rows.get(n)
        if rows is None:
            rows = self._rows[n] = _Rows(self, n)
        return rows


class _Rows:
    """Views of a workspace's per-row buffers cut to a batch of ``n`` rows."""

    def __init__(self, ws, n):
        def cut(buffers):
            return [None if b is None else b[:n] for b in buffers]

        self.acts, self.deltas, self.pre = cut(ws.acts), cut(ws.deltas), cut(ws.pre)
        self.masks, self.dropped = cut(ws.masks), cut(ws.dropped)
        self.act_masks = cut(ws.act_masks)
        self.ones = ws.ones[:n]
