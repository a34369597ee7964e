"""An autoencoder network whose decoder reuses the encoder's weight matrices.

The network is mirrored: ``layer_units`` reads ``[n, h1, ..., hk, c, hk, ...,
h1, n]``, so it has ``2 * (k + 1)`` weight layers. The first ``k + 1`` (the
encoder) own their weight matrices ``W_0 ... W_k``; decoder layer ``k + 1 + j``
uses ``W_{k - j}.T``, a transposed *view* of the encoder's matrix, and owns
only its bias. ``params`` therefore holds, in order, every encoder layer's
weights and bias, then the decoder biases: the encoder layers stay a prefix,
so freezing the bottom ``n_frozen`` encoder layers freezes their matrices in
the decoder too.

The loss depends on a shared matrix through two layers, so its gradient is
the sum of both contributions:

.. math::

    \\frac{\\partial L}{\\partial W_i} = a_i^\\top \\delta_i
        + \\left(a_{2k+1-i}^\\top \\delta_{2k+1-i}\\right)^\\top

where ``a_j`` is the input and ``delta_j`` the pre-activation gradient of
layer ``j``. The L1/L2 penalty counts each shared matrix once.

Where every activation and the output pair have a compiled form, the
gradient's untied parts come from the compiled step of a plain stack
(:mod:`sknet._core._dense_fast`), over an untied copy of the parameters
(refreshed before every step; where the kernel does the matrix products
itself, each decoder matrix is written out there as the encoder's
transpose); the numpy layers compute them otherwise. Either way the shared
matrices' parts are then summed as above.
"""

import numpy as np

from .initializers import initialize_layer
from .network import Network
from .regularization import add_penalty_gradient, penalty_value

__all__ = ["TiedNetwork"]


class TiedNetwork(Network):
    """A mirrored autoencoder whose decoder uses the encoder's transposes.

    Parameters
    ----------
    layer_units : list of int
        Widths from the input to the output; must be a palindrome with an odd
        number of hidden layers, e.g. ``[64, 32, 8, 32, 64]``.
    activations : list of Activation
        One per layer after the input.
    dtype : numpy dtype, default=np.float64
    dropout : list of float, default=None
        A rate per hidden layer.
    dropout_kind : str or list of str, default="dropout"
        As for :class:`~sknet._core.network.Network`.
    """

    def __init__(self, layer_units, activations, dtype=np.float64, dropout=None,
                 dropout_kind="dropout"):
        units = [int(u) for u in layer_units]
        if len(units) < 3 or len(units) % 2 == 0 or units != units[::-1]:
            raise ValueError(
                "A tied network needs mirrored layer units with a single "
                f"bottleneck, e.g. [64, 32, 8, 32, 64]; got {units}."
            )
        super().__init__(units, activations, dtype=dtype, dropout=dropout,
                         dropout_kind=dropout_kind)
        self._offsets = self._layout()
        self._bind(np.zeros(self._offsets[-1], dtype=self.dtype))
        self._scratch = None  # untied per-layer gradients, made on first use

    @property
    def n_encoder_layers(self):
        """Number of weight layers in the encoder (input to bottleneck)."""
        return self.n_layers // 2

    def _layout(self):
        """Offsets of each layer's first parameter, and the total size."""
        units, k1 = self.layer_units, self.n_layers // 2
        offsets = [0]
        for fan_in, fan_out in zip(units[:k1], units[1:k1 + 1], strict=True):
            offsets.append(offsets[-1] + fan_in * fan_out + fan_out)
        for fan_out in units[k1 + 1:]:
            offsets.append(offsets[-1] + fan_out)
        return offsets

    def views(self, flat):
        """Per-layer views of a flat vector laid out like ``params``.

        Decoder weight "views" are transposes of the encoder's.
        """
        coefs, intercepts = [], []
        units, k1 = self.layer_units, self.n_encoder_layers
        for i in range(self.n_layers):
            start, stop = self._offsets[i], self._offsets[i + 1]
            fan_out = units[i + 1]
            if i < k1:
                fan_in = units[i]
                coefs.append(flat[start:start + fan_in * fan_out].reshape(fan_in, fan_out))
            else:
                coefs.append(coefs[2 * k1 - 1 - i].T)
            intercepts.append(flat[stop - fan_out:stop])
        return coefs, intercepts

    def initialize(self, scheme, rng, init_activations=None):
        """Draw the encoder's weights and biases; decoder biases start at 0."""
        names = init_activations or [a.name for a in self.activations]
        for i in range(self.n_encoder_layers):
            fan_in, fan_out = self.layer_units[i], self.layer_units[i + 1]
            W, b = initialize_layer(scheme, fan_in, fan_out, rng, self.dtype, names[i])
            self.coefs[i][...] = W
            self.intercepts[i][...] = b
        for b in self.intercepts[self.n_encoder_layers:]:
            b[...] = 0
        return self

    def set_weights(self, coefs, intercepts):
        """Copy the encoder's matrices and every layer's bias into ``params``.

        ``coefs`` holds the ``n_encoder_layers`` encoder matrices only.
        """
        k1 = self.n_encoder_layers
        if len(coefs) != k1 or len(intercepts) != self.n_layers:
            raise ValueError(
                f"A tied network expects {k1} weight matrices (the encoder's) and "
                f"{self.n_layers} bias vectors, got {len(coefs)} and "
                f"{len(intercepts)}."
            )
        pairs = [(self.coefs[i], coefs[i], f"coefs_[{i}]") for i in range(k1)]
        pairs += [(self.intercepts[i], intercepts[i], f"intercepts_[{i}]")
                  for i in range(self.n_layers)]
        for dst, src, what in pairs:
            src = np.asarray(src)
            if src.shape != dst.shape:
                raise ValueError(f"{what} has shape {src.shape}, expected {dst.shape}.")
            dst[...] = src
        return self

    def untied_views(self, flat):
        """Per-layer views of a flat vector with one matrix per layer.

        The layout of an ordinary :class:`Network` with the same units: the
        scratch space where :meth:`backward` lets each layer write its own
        gradient before the shared matrices' parts are summed.
        """
        coefs, intercepts, start = [], [], 0
        for fan_in, fan_out in zip(self.layer_units[:-1], self.layer_units[1:],
                                   strict=False):
            coefs.append(flat[start:start + fan_in * fan_out].reshape(fan_in, fan_out))
            start += fan_in * fan_out
            intercepts.append(flat[start:start + fan_out])
            start += fan_out
        return coefs, intercepts

    def workspace(self, batch_size, fast_blas=False, threads=1):
        """Buffers for batches of up to ``batch_size`` rows.

        As :meth:`Network.workspace`; where the compiled step applies, the
        workspace also holds, as ``untied``, the untied copy of the weights
        and the untied gradient (flat vectors laid out as by
        :meth:`untied_views`, and those views).
        """
        ws = super().workspace(batch_size, fast_blas=fast_blas, threads=threads)
        if ws.step is not None:
            size = self._step_offsets()[-1]
            params = np.zeros(size, dtype=self.dtype)
            grad = np.zeros(size, dtype=self.dtype)
            ws.untied = (params, grad, self.untied_views(params), self.untied_views(grad))
        return ws

    _compiled_epoch = False  # the step runs on an untied copy, tied after each step

    def _step_offsets(self):
        """The compiled step's layout: the untied one, one matrix per layer."""
        return self._lay_out()

    def _step_arrays(self, ws, in_kernel):
        """The untied copy of the parameters, refreshed from ``params``, and gradient.

        The biases are always copied. The weights are copied only when the
        kernel does the matrix products (``in_kernel``); otherwise numpy does
        them with the tied views (the decoder's are transposes), and the step
        reads no weight from the flat vector, its penalty being 0 (the shared
        matrices' penalty is added once, after the parts are summed).
        """
        params, grad, (u_coefs, u_intercepts), (g_coefs, _) = ws.untied
        for u, b in zip(u_intercepts, self.intercepts, strict=True):
            u[...] = b
        if not in_kernel:
            return params, grad, self.coefs, g_coefs
        last = self.n_layers - 1
        for i in range(self.n_encoder_layers):
            u_coefs[i][...] = self.coefs[i]
            u_coefs[last - i][...] = self.coefs[i].T
        return params, grad, u_coefs, g_coefs

    def _compiled_loss_and_gradient(self, X, Y, code, sample_weight, sw_sum, alpha, l1,
                                    ws, training, rng, data_scale=1.0):
        """The compiled step on the untied copy, its gradient tied into ``ws.grad``."""
        value = super()._compiled_loss_and_gradient(X, Y, code, sample_weight, sw_sum,
                                                    0.0, 0.0, ws, training, rng, data_scale)
        self._tie(ws.untied[3], ws.grad_views, 1.0 / sw_sum, alpha, l1, ws.axpy)
        if alpha or l1:
            trainable = self.coefs[self.n_frozen:self.n_encoder_layers]
            value += penalty_value(trainable, alpha, l1) / sw_sum
        return value

    def _tie(self, untied_grad_views, grad_views, scale, alpha, l1, axpy=None):
        """Sum each shared matrix's two untied gradients and add its penalty once.

        Writes the trainable layers of ``grad_views`` (the tied layout) from
        ``untied_grad_views`` (as :meth:`untied_views` gives them).
        """
        u_coefs, u_intercepts = untied_grad_views
        g_coefs, g_intercepts = grad_views
        last = self.n_layers - 1
        for i in range(self.n_frozen, self.n_encoder_layers):
            np.add(u_coefs[i], u_coefs[last - i].T, out=g_coefs[i])
            add_penalty_gradient(self.coefs[i], g_coefs[i], alpha * scale, l1 * scale,
                                 axpy)
        for i in range(self.n_frozen, self.n_layers):
            g_intercepts[i][...] = u_intercepts[i]

    def backward(self, loss, Y, ws, grad_views, sample_weight=None, scale=1.0,
                 alpha=0.0, l1=0.0, fused=None):
        """Backpropagate the loss of the last ``forward`` into ``grad_views``.

        Each layer's gradient is first computed as in an untied network; the
        gradient of a shared matrix is then its encoder part plus the
        transpose of its decoder part. The penalty gradient is added once
        per shared matrix. Frozen (bottom encoder) layers are left untouched.
        """
        if self._scratch is None:
            size = sum(fi * fo + fo for fi, fo in
                       zip(self.layer_units[:-1], self.layer_units[1:], strict=False))
            self._scratch = self.untied_views(np.zeros(size, dtype=self.dtype))
        super().backward(loss, Y, ws, self._scratch, sample_weight, scale,
                         0.0, 0.0, fused=fused)
        self._tie(self._scratch, grad_views, scale, alpha, l1, ws.axpy)

    def loss_and_gradient(self, X, Y, loss, sample_weight=None, alpha=0.0, l1=0.0,
                          **kwargs):
        """Penalized mean loss and its gradient with respect to ``params``.

        As :meth:`Network.loss_and_gradient`, with the penalty counting each
        shared matrix once: over the trainable encoder matrices.
        """
        value, grad, sw_sum = super().loss_and_gradient(
            X, Y, loss, sample_weight, 0.0, 0.0, **kwargs)
        if sw_sum <= 0 or not (alpha or l1):
            return value, grad, sw_sum
        trainable = self.coefs[self.n_frozen:self.n_encoder_layers]
        value += penalty_value(trainable, alpha, l1) / sw_sum
        g_coefs = self.views(grad)[0]
        for i in range(self.n_frozen, self.n_encoder_layers):
            add_penalty_gradient(self.coefs[i], g_coefs[i], alpha / sw_sum,
                                 l1 / sw_sum)
        return value, grad, sw_sum
