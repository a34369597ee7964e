"""
=======================================================
Classifying sequences of unequal length
=======================================================

Recordings rarely have the same length. :class:`~sknet.RecurrentClassifier`
takes a plain list of 2-D arrays ``(n_timesteps_i, n_features)`` (or a 3-D
array padded at the end with NaN) and handles the unequal lengths by
*masking*: a padded step changes no state and carries no gradient, and the
output layer reads each sequence at its own last step. Nothing is cropped,
resampled or zero-filled.

The data: noisy two-dimensional traces of three kinds, 5 to 80 steps long:
a circle, a figure eight, and a spiral, each drawn from a random phase and at
a random speed, with heavy noise, so that length alone says nothing about the
class and short traces are hard to tell apart.
"""

# %%
# Traces of unequal length
# ------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sknet import RecurrentClassifier

CLASSES = ["circle", "figure eight", "spiral"]


def trace(kind, n_steps, rng):
    s = rng.uniform(0, 2 * np.pi) + np.linspace(0, rng.uniform(1.5, 2.5) * np.pi, n_steps)
    if kind == 0:
        xy = np.c_[np.cos(s), np.sin(s)]
    elif kind == 1:
        xy = np.c_[np.sin(s), np.sin(s) * np.cos(s)]
    else:
        r = np.linspace(0.2, 1.0, n_steps)
        xy = np.c_[r * np.cos(s), r * np.sin(s)]
    return xy + 0.5 * rng.normal(size=xy.shape)


rng = np.random.default_rng(0)
y = rng.integers(0, 3, 900)
sequences = [trace(k, int(rng.integers(5, 81)), rng) for k in y]
lengths = np.array([len(s) for s in sequences])
train, test = slice(0, 600), slice(600, None)

# %%
# A GRU on the list of sequences
# ------------------------------
# 40 epochs are enough here; we stop there on purpose and silence the
# warning that says the optimizer reached ``max_iter``.
clf = RecurrentClassifier(hidden_layer_sizes=(32,), cell="gru", learning_rate_init=0.01,
                          batch_size=32, max_iter=40, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf.fit(sequences[train], y[train])
pred = clf.predict(sequences[test])
print(f"test accuracy: {np.mean(pred == y[test]):.3f}")

# %%
# What it sees, and how well it does by length
# --------------------------------------------
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for k in range(3):
    i = np.flatnonzero((y == k) & (lengths > 60))[0]
    left.plot(*sequences[i].T, color=f"C{k}", lw=1.2, marker=".", ms=3,
              label=f"{CLASSES[k]} ({lengths[i]} steps)")
left.set_aspect("equal")
left.set_title("one trace of each kind")
left.legend(loc="upper right", fontsize=8)

bins = np.array([5, 15, 30, 50, 81])
test_lengths = lengths[test]
which = np.digitize(test_lengths, bins) - 1
accuracy = [np.mean(pred[which == b] == y[test][which == b]) for b in range(len(bins) - 1)]
right.bar(range(len(accuracy)), accuracy, color="C7")
right.set_xticks(range(len(accuracy)),
                 [f"{lo}-{hi - 1}" for lo, hi in zip(bins[:-1], bins[1:])])
right.set_xlabel("sequence length (steps)")
right.set_ylabel("test accuracy")
right.set_ylim(0, 1.05)
right.set_title("one model for every length")
plt.tight_layout()
plt.show()

# %%
# The shortest traces hold only a few noisy points of their shape, and are
# the hardest; the longer a trace, the surer the network, and one network,
# trained on all lengths at once, serves them all. The same
# data padded with NaN to any common length gives the same predictions:
padded = np.full((300, 200, 2), np.nan)
for i, s in enumerate(sequences[test]):
    padded[i, :len(s)] = s
print("same predictions padded to 200 steps:",
      np.array_equal(clf.predict(padded), pred))
