"""
===================================
Training speed against scikit-learn
===================================

sknet's :class:`~sknet.MLPClassifier` trains with its own backpropagation
core. Here it is timed against scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier` on the same work: the same
digits, the same network, the same number of epochs, and the same initial
weights and shuffles (both are seeded with ``random_state=0``, and sknet
draws them as scikit-learn does).

Smaller mini-batches mean more updates per epoch, so the time per update
(where sknet's core avoids allocations) weighs more.
"""

# %%
# The timing
# ----------
# Both models run exactly 10 epochs (``n_iter_no_change=10`` keeps the
# stopping rule from ending them earlier). The repeats are interleaved, so
# that a busy moment of the machine slows both libraries alike, and we keep
# the median of each. The matrices here are small, so BLAS runs on one
# thread for both: more threads only add overhead at this size.
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from threadpoolctl import threadpool_limits

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
batch_sizes = [32, 64, 200]
libraries = {"scikit-learn": SklearnMLPClassifier, "sknet": MLPClassifier}
n_repeats = 3


def fit_seconds(estimator_class, batch_size):
    """Seconds to fit 10 epochs of a 100-unit MLP on the digits."""
    model = estimator_class(batch_size=batch_size, max_iter=10,
                            n_iter_no_change=10, random_state=0)
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


times = {(lib, b): [] for lib in libraries for b in batch_sizes}
with threadpool_limits(limits=1), warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 10 epochs on purpose
    for _ in range(n_repeats):
        for b in batch_sizes:
            for lib, estimator_class in libraries.items():
                times[lib, b].append(fit_seconds(estimator_class, b))

median = {key: float(np.median(values)) for key, values in times.items()}
print(f"{'batch_size':>10} {'scikit-learn (s)':>17} {'sknet (s)':>10} {'speed-up':>9}")
for b in batch_sizes:
    sk, ours = median["scikit-learn", b], median["sknet", b]
    print(f"{b:>10} {sk:>17.3f} {ours:>10.3f} {sk / ours:>8.1f}x")

# %%
# The bar chart
# -------------
fig, ax = plt.subplots(figsize=(7, 4))
width = 0.38
positions = np.arange(len(batch_sizes))
for k, lib in enumerate(libraries):
    values = [median[lib, b] for b in batch_sizes]
    bars = ax.bar(positions + (k - 0.5) * width, values, width, label=lib)
    ax.bar_label(bars, fmt="%.2f s", fontsize=8)
ax.set_xticks(positions, [str(b) for b in batch_sizes])
ax.set_xlabel("batch_size")
ax.set_ylabel("median fit time (s), 10 epochs")
ax.set_title(f"MLPClassifier(100 units) on the digits ({len(X)} images)")
ax.legend()
fig.tight_layout()

# %%
# The two fits end with the same weights up to rounding (differences of the
# order of 1e-15): sknet reproduces scikit-learn's initialization, shuffling
# and updates, so the comparison is of the same computation. The speed-up
# depends on the machine, the sizes and the batch size; run this script on
# yours.
plt.show()
