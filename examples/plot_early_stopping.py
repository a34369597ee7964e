"""
====================================================
Early stopping: stop when validation stops improving
====================================================

A network trained for long enough on few examples learns them by heart: its
training loss keeps falling while its loss on held-out data turns and rises.
Early stopping watches a validation set, stops once its score has not
improved for ``n_iter_no_change`` epochs, and restores the weights of the
best epoch.

sknet's ``fit`` accepts a validation set of your own (``X_val``, ``y_val``).
Without ``early_stopping`` it is only monitored: ``validation_scores_`` and
``validation_loss_curve_`` record it epoch by epoch.
"""

# %%
# Few training digits, a wide network
# -----------------------------------
# 400 digits to train on, 400 to validate on, and the rest to test.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=400,
                                                    random_state=0)
X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, train_size=400,
                                                random_state=0)

params = dict(hidden_layer_sizes=(256,), alpha=0.0, batch_size=32,
              learning_rate_init=0.003, max_iter=100, random_state=0)

# %%
# 100 epochs, validation monitored only
# -------------------------------------
# ``n_iter_no_change=100`` keeps the training-loss rule from stopping early.
# We run all 100 epochs on purpose, so we silence the warning that says the
# optimizer reached ``max_iter``.
import warnings

from sklearn.exceptions import ConvergenceWarning

monitored = MLPClassifier(n_iter_no_change=100, **params)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    monitored.fit(X_train, y_train, X_val=X_val, y_val=y_val)

# %%
# The same network with early stopping
# ------------------------------------
# With ``early_stopping=True`` the validation set we pass replaces the
# internal split (a ``validation_fraction`` of the training data). Training
# stops after ``n_iter_no_change`` epochs in a row without an improvement of
# the validation accuracy by ``tol``; the best epoch's weights are restored.
# Both runs start from the same weights and see the batches in the same
# order, so the early-stopped run follows the monitored run up to its stop.
stopped = MLPClassifier(early_stopping=True, n_iter_no_change=10, **params)
stopped.fit(X_train, y_train, X_val=X_val, y_val=y_val)
best_epoch = int(np.argmax(stopped.validation_scores_)) + 1
print(f"early stopping ran {stopped.n_iter_} epochs and kept epoch {best_epoch}")
print(f"test accuracy after 100 epochs: {monitored.score(X_test, y_test):.3f}")
print(f"test accuracy, early stopping:  {stopped.score(X_test, y_test):.3f}")

# %%
# The curves
# ----------
# Left: the training loss falls towards zero for all 100 epochs, while the
# validation loss levels off after about 20 epochs and then creeps back up:
# from there on the network learns its 400 examples by heart rather than
# anything that carries over to new digits. Right: the validation accuracy,
# which early stopping watches. The dashed line marks the epoch whose weights
# early stopping kept, the dotted one where it stopped: it ran less than a
# third of the epochs, for a test accuracy at least as good (printed above).
epochs = np.arange(1, monitored.n_iter_ + 1)
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
ax_loss.plot(epochs, monitored.loss_curve_, label="training loss")
ax_loss.plot(epochs, monitored.validation_loss_curve_, label="validation loss")
ax_loss.set_ylim(0, 0.6)
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("cross-entropy")
ax_acc.plot(epochs, monitored.validation_scores_, color="C1",
            label="validation accuracy")
ax_acc.set_xlabel("epoch")
ax_acc.set_ylabel("accuracy")
for ax in (ax_loss, ax_acc):
    ax.axvline(best_epoch, color="black", linestyle="--", label="best epoch (kept)")
    ax.axvline(stopped.n_iter_, color="black", linestyle=":",
               label="early stopping ends")
    ax.legend()
fig.suptitle("Training on 400 digits: loss and validation curves")
fig.tight_layout()
plt.show()
