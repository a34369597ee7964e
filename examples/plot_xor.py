"""
=====================================================
XOR: one neuron cannot learn it, two hidden units can
=====================================================

The XOR function is 1 when exactly one of its two inputs is 1. No single
straight line separates its two classes, so a perceptron, which draws one
line through the input space, gets at most three of the four points right.
A multi-layer perceptron with one small hidden layer learns it: the hidden
layer maps the four points to a space where one line does separate them.
"""

# %%
# The four points of XOR
# ----------------------
# sphinx_gallery_thumbnail_number = 2
import copy

import matplotlib.pyplot as plt
import numpy as np

from sknet import MLPClassifier, Perceptron

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
y = np.array([0, 1, 1, 0])

# %%
# The perceptron rule, one sample at a time
# -----------------------------------------
# We feed the perceptron one random point at a time with ``partial_fit``,
# which applies the lecture's rule ``w <- w + eta0 (y - y_hat) x`` to it, and
# count after every sample how many of the four points it gets right. It
# never gets all four, however long it runs. We keep the best weights it
# passed through.
rng = np.random.default_rng(0)
perceptron = Perceptron(eta0=0.1, weight_init="random", random_state=0)
n_right, best = [], None
for _ in range(120):
    i = rng.integers(len(X))
    perceptron.partial_fit(X[i:i + 1], y[i:i + 1], classes=[0, 1])
    n_right.append(int(perceptron.score(X, y) * len(X)))
    if best is None or n_right[-1] > best.score(X, y) * len(X):
        best = copy.deepcopy(perceptron)
print(f"perceptron: at best {max(n_right)} of the 4 points right")

fig, ax = plt.subplots(figsize=(8, 2.5))
ax.step(np.arange(1, len(n_right) + 1), n_right, where="post")
ax.axhline(4, color="gray", linestyle="--")
ax.set_ylim(-0.2, 4.5)
ax.set_yticks(range(5))
ax.set_xlabel("samples shown, one at a time")
ax.set_ylabel("points right")
ax.set_title("The perceptron rule on XOR: never 4 of 4")
fig.tight_layout()

# %%
# An MLP with two hidden units
# ----------------------------
# The lecture's network for XOR: one hidden layer of two units (``tanh``
# here), trained by L-BFGS. Two units are enough, but the search can end in a
# poor local minimum for some initial weights; more hidden units make it
# reliable.
mlp = MLPClassifier(hidden_layer_sizes=(2,), activation="tanh", solver="lbfgs",
                    random_state=1).fit(X, y)
print(f"MLP: {mlp.score(X, y):.0%} of the XOR points right")

# %%
# Their decision regions
# ----------------------
# The best perceptron's regions are two half-planes, split by one line; the
# MLP's region of class 1 is a band between two lines, one per hidden unit. The third panel shows the four points as the MLP's hidden layer sees
# them (the two ``tanh`` activations): there, a single line, the output
# unit's, separates the classes ((0, 1) and (1, 0) land on the same spot).
grid = np.linspace(-0.5, 1.5, 201)
xx, yy = np.meshgrid(grid, grid)
plane = np.c_[xx.ravel(), yy.ravel()]


def hidden_activations(model, data):
    """The hidden layer's output, computed from the fitted weights."""
    return np.tanh(data @ model.coefs_[0] + model.intercepts_[0])


fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, model, title in [(axes[0], best, "best perceptron"),
                         (axes[1], mlp, "MLP (2 hidden units)")]:
    regions = model.predict(plane).reshape(xx.shape)
    ax.contourf(xx, yy, regions, levels=[-0.5, 0.5, 1.5], cmap="RdBu", alpha=0.3)
    ax.set_title(f"{title}: {model.score(X, y) * 4:.0f} of 4 right")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")

H = hidden_activations(mlp, X)
h_grid = np.linspace(-1.1, 1.1, 201)
hx, hy = np.meshgrid(h_grid, h_grid)
W_out, b_out = mlp.coefs_[1], mlp.intercepts_[1]
scores = np.c_[hx.ravel(), hy.ravel()] @ W_out + b_out
axes[2].contourf(hx, hy, (scores > 0).reshape(hx.shape), levels=[-0.5, 0.5, 1.5],
                 cmap="RdBu", alpha=0.3)
axes[2].set_title("inside the MLP: hidden layer output")
axes[2].set_xlabel("hidden unit 1")
axes[2].set_ylabel("hidden unit 2")

for ax, points in [(axes[0], X), (axes[1], X), (axes[2], H)]:
    ax.scatter(points[:, 0], points[:, 1], c=y, cmap="RdBu", s=120,
               edgecolors="black", vmin=0, vmax=1)
    for (px, py), label in zip(points, y, strict=True):
        ax.annotate(str(label), (px, py), xytext=(8, 8),
                    textcoords="offset points")
fig.tight_layout()

# %%
# Why the perceptron fails
# ------------------------
# A perceptron predicts class 1 where ``w1 x1 + w2 x2 + b > 0``. XOR asks for
# ``b <= 0`` (point (0, 0)), ``w1 + b > 0`` and ``w2 + b > 0`` (points (1, 0)
# and (0, 1)), hence ``w1 + w2 + b > -b >= 0``, which puts (1, 1) in class 1
# too. Whatever the rule does, one of the four points stays wrong.
plt.show()
