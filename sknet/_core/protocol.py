"""What the training loops need from a network: the protocol, written down.

:func:`sknet._core.trainer.fit_stochastic` and :func:`~sknet._core.trainer.fit_lbfgs`
rely on the members of :class:`TrainableNetwork` below and on nothing else, so
the dense stack (:class:`~sknet._core.network.Network`), the tied autoencoder
(:class:`~sknet._core.tied.TiedNetwork`) and the recurrent stack
(:class:`~sknet._core.recurrent.RecurrentNetwork`) plug into the same loops, and a
new kind of network never edits them.

The parameters live in one flat vector, laid out layer by layer from the
input up. Freezing the bottom layers (transfer learning) therefore freezes a
prefix of that vector: optimizers step ``params[trainable_offset:]`` only.
Gradients still flow through frozen layers to the trainable ones above the
input; only the frozen layers' own update is skipped.

One member is optional: ``epoch_runner(loss, ws, alpha, l1, rng)``, a whole
epoch of mini-batch steps in compiled code, or None where the network cannot
run this fit that way (see :meth:`sknet._core.network.Network.epoch_runner`).
Its epochs must be the loop's own steps, bit for bit; the loop runs its
Python steps where a network lacks it or returns None.

Another is ``takes_rows``: when True, :meth:`TrainableNetwork.loss_and_gradient`
also takes ``rows=``, the indices of a shuffled batch in the ``X`` it is given,
and gathers those rows itself (the loop then gathers only the targets and the
sample weights). Absent or False, the loop hands it the batch's rows.
"""

from typing import Optional, Protocol, runtime_checkable

import numpy as np

__all__ = ["TrainableNetwork", "Scratch"]


class Scratch(Protocol):
    """Per-batch-size memory a network reuses from one mini-batch to the next.

    Made once per fit by :meth:`TrainableNetwork.workspace`. The loops read
    only ``grad``; everything else in it is the network's business.
    """

    grad: np.ndarray  # laid out like ``params``; ``loss_and_gradient`` writes it


@runtime_checkable
class TrainableNetwork(Protocol):
    """The members a network offers the training loops.

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        Every parameter, in one contiguous vector. Layers hold views into it,
        so writing ``params`` changes the model.
    dtype : numpy dtype
        The dtype of ``params`` and of every computation.
    trainable_offset : int
        Index in ``params`` where the trainable part starts; the frozen layers
        are the prefix before it.
    uses_rng : bool
        Whether training draws random numbers (dropout masks): the loops
        then pass a generator as ``rng`` to :meth:`loss_and_gradient`.
    """

    params: np.ndarray
    dtype: np.dtype

    @property
    def trainable_offset(self) -> int: ...

    @property
    def uses_rng(self) -> bool: ...

    def workspace(self, batch_size: int, fast_blas: bool = False,
                  threads: int = 1) -> Scratch:
        """Buffers for mini-batches of up to ``batch_size`` rows.

        ``fast_blas=True`` allows vector updates through scipy's BLAS (only
        where BLAS runs one thread; see :mod:`sknet._core.blas`). ``threads``:
        how many threads a compiled step may split a batch between (with
        ``fast_blas`` only; a network may use fewer).
        """

    def loss_and_gradient(self, X, Y, loss, sample_weight=None, alpha=0.0, l1=0.0,
                          ws: Optional[Scratch] = None, grad=None, training=False,
                          rng=None):
        """Penalized mean loss of a batch and its gradient with respect to ``params``.

        The loss is the sample-weighted mean of the per-sample loss plus
        ``(0.5 * alpha * ||W||^2 + l1 * |W|_1) / sum(sample_weight)`` over the
        trainable weight matrices (biases are not penalized).

        Returns ``(loss, grad, sw_sum)``: ``grad`` is ``ws.grad`` (or the
        ``grad`` passed in), zero on the frozen prefix; ``sw_sum`` is the
        weight sum the gradient was divided by, and 0 means "move nothing".
        ``training=True`` applies dropout with ``rng``.
        """

    def predict(self, X) -> np.ndarray:
        """The output for ``X`` with dropout off.

        Allocates what it needs per call and writes no shared state, so
        threads may predict on one network at once.
        """
