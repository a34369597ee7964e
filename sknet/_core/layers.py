"""Layers: forward (training or not) and backward, over views of one flat vector.

Every layer works on buffers its network hands it (allocated once per batch
size), so the per-batch path allocates nothing:

* :class:`Dense` owns a weight matrix and a bias, views into the network's
  ``params``, and its activation;
* :class:`Dropout` and :class:`AlphaDropout` own no parameters; the estimator
  picks which one follows a layer (alpha dropout for ``selu`` layers);
* the recurrent layers live in :mod:`sknet._core.recurrent`.
"""

import numpy as np

from .activations import SELU_ALPHA, SELU_SCALE

__all__ = ["Dense", "Dropout", "AlphaDropout", "make_dropout", "DROPOUTS", "LayerStack"]


def _dot(a, W, out):
    """``out[...] = a @ W`` for a dense or sparse ``a``."""
    if isinstance(a, np.ndarray):
        return np.matmul(a, W, out=out)
    out[...] = a @ W
    return out


def _dot_tn(a, delta, out):
    """``out[...] = a.T @ delta`` for a dense or sparse ``a``."""
    if isinstance(a, np.ndarray):
        return np.matmul(a.T, delta, out=out)
    out[...] = a.T @ delta
    return out


class Dense:
    """``a_out = f(a_in @ W + b)``: a weight matrix, a bias and an activation.

    Parameters
    ----------
    fan_in, fan_out : int
    activation : Activation

    Attributes
    ----------
    W : ndarray of shape (fan_in, fan_out)
    b : ndarray of shape (fan_out,)
        Views into the flat vector given to :meth:`bind`.
    """

    def __init__(self, fan_in, fan_out, activation):
        self.fan_in, self.fan_out = int(fan_in), int(fan_out)
        self.activation = activation
        self.W = self.b = None

    @property
    def n_params(self):
        return self.fan_in * self.fan_out + self.fan_out

    def views(self, flat):
        """``(W, b)`` views of a flat slice of ``n_params`` values."""
        n_w = self.fan_in * self.fan_out
        return flat[:n_w].reshape(self.fan_in, self.fan_out), flat[n_w:self.n_params]

    def bind(self, flat):
        """Make ``W`` and ``b`` views of ``flat`` (this layer's slice)."""
        self.W, self.b = self.views(flat)
        return self

    def forward(self, a, out, add_rows, ones, pre=None, act_mask=None):
        """``f(a @ W + b)`` written into ``out`` (returned).

        ``pre`` receives a copy of the pre-activation where the activation's
        derivative needs it; with ``act_mask``, the activation's masked form
        records its derivative there.
        """
        z = add_rows(_dot(a, self.W, out), self.b, ones)
        if pre is not None:
            pre[...] = z
        if act_mask is None:
            return self.activation.forward(z)
        return self.activation.masked[0](z, act_mask)

    def backward_activation(self, grad, a, pre=None, act_mask=None):
        """``grad`` (w.r.t. the output) times the activation's derivative, in place."""
        act = self.activation
        if act_mask is not None:
            return act.masked[1](act_mask, grad)
        return act.backward(pre if act.derivative_of == "input" else a, grad)

    def backward_params(self, a_in, delta, gW, gb, ones):
        """Write ``a_in.T @ delta`` into ``gW`` and the column sums of ``delta`` into ``gb``."""
        _dot_tn(a_in, delta, gW)
        # column sums as a matrix-vector product: 3x faster than a reduction
        np.matmul(ones, delta, out=gb)

    def backward_input(self, delta, out):
        """The gradient with respect to the layer's input, ``delta @ W.T``."""
        return np.matmul(delta, self.W.T, out=out)


class Dropout:
    """Inverted dropout: each unit is zeroed with probability ``rate``.

    Kept units are scaled by ``1 / (1 - rate)`` so that the expected output
    equals the input, and prediction needs no rescaling.
    """

    kind = "dropout"

    def __init__(self, rate):
        self.rate = float(rate)

    def forward(self, a, mask, out, rng):
        """Drop units of ``a`` into ``out`` (returned); ``mask`` keeps the factors."""
        rng.random(out=mask, dtype=mask.dtype)
        keep = mask >= self.rate
        np.multiply(keep, 1.0 / (1.0 - self.rate), out=mask)
        return np.multiply(a, mask, out=out)

    def backward(self, mask, grad):
        """``grad`` through the last forward pass's mask, in place."""
        grad *= mask
        return grad


class AlphaDropout(Dropout):
    """Alpha dropout (Klambauer et al., 2017), for self-normalizing ``selu`` layers.

    Dropped units take selu's saturation value ``-scale * alpha``, then the
    affine map ``A x + B`` restores the mean and variance the layer had, with

    .. math::

        A = ((1 - p)(1 + p\\,\\alpha'^2))^{-1/2}, \\qquad B = -A\\,\\alpha' p,
        \\qquad \\alpha' = -\\lambda\\alpha .

    The output is ``A * a + B`` for kept units and ``A * alpha' + B`` for
    dropped ones, so its derivative is ``A`` times the keep mask.
    """

    kind = "alpha_dropout"

    def __init__(self, rate):
        super().__init__(rate)
        alpha_p = -SELU_SCALE * SELU_ALPHA
        self.alpha_p = alpha_p
        self.A = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        self.B = -self.A * alpha_p * self.rate

    def forward(self, a, mask, out, rng):
        rng.random(out=mask, dtype=mask.dtype)
        keep = mask >= self.rate
        np.multiply(keep, self.A, out=mask)
        np.multiply(a, mask, out=out)
        out += np.where(keep, self.B, self.A * self.alpha_p + self.B).astype(
            out.dtype, copy=False)
        return out


DROPOUTS = {"dropout": Dropout, "alpha_dropout": AlphaDropout}


def make_dropout(rate, kind="dropout"):
    """The dropout layer of ``kind`` for ``rate``, or None when ``rate`` is 0."""
    if kind not in DROPOUTS:
        raise ValueError(f"Unknown dropout kind {kind!r}; choose one of {sorted(DROPOUTS)}.")
    return DROPOUTS[kind](rate) if rate > 0 else None


class LayerStack:
    """The flat layout of a stack of layers, shared by sknet's networks.

    A subclass lists its ``layers`` (each with ``n_params``) from the input
    up, its ``dropouts`` (a dropout layer or None per layer) and ``n_frozen``;
    :meth:`_lay_out` then places the layers one after the other in one flat
    vector, so the frozen layers are a prefix of it.
    """

    def _lay_out(self):
        """Offsets of each layer's first parameter in the flat vector, and its size."""
        offsets = [0]
        for layer in self.layers:
            offsets.append(offsets[-1] + layer.n_params)
        return offsets

    @property
    def trainable_offset(self):
        """Index in ``params`` where the trainable (not frozen) part starts."""
        return self._offsets[self.n_frozen]

    @property
    def uses_rng(self):
        """Whether training draws dropout masks."""
        return any(d is not None for d in self.dropouts)

    def layer_slice(self, i):
        """The slice of ``params`` that holds layer ``i``."""
        return slice(self._offsets[i], self._offsets[i + 1])
