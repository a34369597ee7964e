"""sknet's backpropagation engine: numpy and scipy only.

The engine knows layers, activations, losses, optimizers, schedules, stopping
rules and the training loops. It knows nothing of estimators, labels, pandas
or parameter validation.

Where numpy's per-call cost rules, the work is compiled: four Cython
modules, built at install, calling scipy's BLAS through
``scipy.linalg.cython_blas`` without the GIL:

* ``_perceptron_fast``: the perceptron's epochs (dense and CSR rows);
* ``_dense_fast``: a dense stack's training step, split between OpenMP
  threads, and the threaded gather of shuffled batches;
* ``_optim``: the Adam and SGD updates as one pass over the parameters
  (Adam's loop in ``_optim_loops.h``, with an AVX2 build);
* ``_recurrent_fast``: the recurrent cells' time loops, forward and
  backward through time (each step's products on weights packed once per
  call, ``_small_gemm.h``, with an AVX2 build).

:mod:`~sknet._core.thread_choice` times a split step's choices of threads.
"""

from . import trainer
from .activations import ACTIVATIONS, Activation, get_activation, register_activation
from .initializers import INITIALIZERS, initialize_layer
from .layers import AlphaDropout, Dense, Dropout, make_dropout
from .losses import LOSSES, Loss, get_loss, output_delta
from .network import Network, Workspace, feed_forward
from .optimizers import SGD, Adam, make_optimizer
from .protocol import TrainableNetwork
from .schedules import SCHEDULES, Schedule
from .stopping import StoppingRule
from .trainer import History, TrainConfig, Validation, fit_lbfgs, fit_stochastic

__all__ = [
    "ACTIVATIONS", "Activation", "get_activation", "register_activation",
    "INITIALIZERS", "initialize_layer", "LOSSES", "Loss", "get_loss",
    "output_delta", "Network", "Workspace", "feed_forward", "SGD", "Adam", "make_optimizer",
    "SCHEDULES", "Schedule", "StoppingRule", "History", "TrainConfig",
    "Validation", "fit_lbfgs", "fit_stochastic", "trainer", "TrainableNetwork",
    "Dense", "Dropout", "AlphaDropout", "make_dropout",
]
