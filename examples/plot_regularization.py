"""
======================================
Dropout, L1 and L2 against overfitting
======================================

A network with far more weights than training points can draw a boundary
that passes around every single training point, noise included, and
generalizes poorly. Three of the lecture's remedies limit it while it
trains:

* **L2** (``alpha``) adds ``alpha / (2 n) * sum(W ** 2)`` to the loss: weights
  shrink towards zero, the boundary gets smoother;
* **L1** (``l1``) adds ``l1 / n * sum(|W|)``: a constant pull towards zero,
  so that weights which do little for the fit end up near zero;
* **dropout** (``dropout``) switches off a random share of the hidden units
  at every training step, so that no unit can rely on a few others.

All three apply to the weights only (never the biases), and prediction
always uses the whole network.
"""

# %%
# Two noisy half-moons, 100 training points
# -----------------------------------------
# A network with two hidden layers of 128 units (about 17,000 weights) and
# 500 epochs: plenty to learn 100 points by heart.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from sknet import MLPClassifier

X, y = make_moons(n_samples=2100, noise=0.3, random_state=0)
X_train, y_train, X_test, y_test = X[:100], y[:100], X[100:], y[100:]

common = dict(hidden_layer_sizes=(128, 128), learning_rate_init=0.02,
              max_iter=500, n_iter_no_change=500, random_state=0)
models = {
    "no regularization": MLPClassifier(alpha=0.0, **common),
    "L2: alpha=1": MLPClassifier(alpha=1.0, **common),
    "L1: l1=0.1": MLPClassifier(alpha=0.0, l1=0.1, **common),
    "dropout=0.5": MLPClassifier(alpha=0.0, dropout=0.5, **common),
}

# %%
# Train them (all 500 epochs: we silence the warning that ``max_iter`` was
# reached) and print their accuracy on the 100 training points and on 2000
# new points.
import warnings

from sklearn.exceptions import ConvergenceWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for name, model in models.items():
        model.fit(X_train, y_train)
        print(f"{name:<18} train {model.score(X_train, y_train):.2f}  "
              f"test {model.score(X_test, y_test):.3f}")

# %%
# Their decision boundaries
# -------------------------
# Without regularization the boundary bends around single noisy points; each
# remedy gives a smoother boundary that is wrong on a few training points and
# right more often on new ones.
grid = np.linspace(-2, 3, 200)
xx, yy = np.meshgrid(grid, np.linspace(-1.5, 2, 140))
plane = np.c_[xx.ravel(), yy.ravel()]

fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), sharey=True)
for ax, (name, model) in zip(axes, models.items(), strict=True):
    proba = model.predict_proba(plane)[:, 1].reshape(xx.shape)
    ax.contourf(xx, yy, proba, levels=20, cmap="RdBu", alpha=0.5)
    ax.contour(xx, yy, proba, levels=[0.5], colors="black", linewidths=1)
    ax.scatter(X_train[:, 0], X_train[:, 1], c=y_train, cmap="RdBu",
               edgecolors="black", s=25)
    ax.set_title(f"{name}\ntrain {model.score(X_train, y_train):.2f}, "
                 f"test {model.score(X_test, y_test):.3f}")
fig.tight_layout()

# %%
# Which remedy and how strong is a matter of tuning: the lecture's advice for
# dropout is to raise the rate when the network overfits and lower it when it
# underfits (0.5 is a common start); for ``alpha`` and ``l1``, try values a
# factor of 10 apart with :class:`~sklearn.model_selection.GridSearchCV`
# (see :ref:`sphx_glr_auto_examples_plot_grid_search.py`).
plt.show()
