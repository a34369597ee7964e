"""
===========================================================
Activation functions, their slopes, and vanishing gradients
===========================================================

Backpropagation multiplies, layer after layer, by the slope of each layer's
activation function. Where that slope is small, the gradient shrinks on its
way back to the first layers, which then barely learn: the vanishing
gradient problem. The logistic (sigmoid) function's slope is at most 0.25,
so in a deep sigmoid network the gradient loses a factor of four or more at
every layer. ReLU and its non-saturating relatives keep a slope of 1 for
positive inputs.

We draw the activations sknet offers and their derivatives, then measure the
gradient that reaches each layer of an eight-hidden-layer network.
"""

# %%
# The activations and their derivatives
# -------------------------------------
# The formulas are the ones sknet's core computes (``leaky_relu`` with the
# lecture's slope 0.01, sknet's ``leaky_relu_slope``; ``elu`` with
# ``elu_alpha=1``).
# sphinx_gallery_thumbnail_number = 2
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import expit

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

z = np.linspace(-5, 5, 501)
sigmoid = expit(z)
elu = np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
activations = {
    "identity": (z, np.ones_like(z)),
    "logistic (sigmoid)": (sigmoid, sigmoid * (1 - sigmoid)),
    "tanh": (np.tanh(z), 1 - np.tanh(z) ** 2),
    "relu": (np.maximum(z, 0), (z > 0).astype(float)),
    "leaky_relu": (np.where(z > 0, z, 0.01 * z), np.where(z > 0, 1, 0.01)),
    "elu": (elu, np.where(z > 0, 1, elu + 1)),
    "selu": (SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
             SELU_SCALE * np.where(z > 0, 1, SELU_ALPHA * np.exp(np.minimum(z, 0)))),
}

fig, axes = plt.subplots(2, 4, figsize=(12, 5.5), sharex=True)
for ax, (name, (f, df)) in zip(axes.flat, activations.items(), strict=False):
    ax.plot(z, f, label="f(z)")
    ax.plot(z, df, linestyle="--", label="f'(z)")
    ax.axhline(0, color="gray", linewidth=0.5)
    ax.axvline(0, color="gray", linewidth=0.5)
    ax.set_ylim(-2, 3)
    ax.set_title(name)
    ax.grid(alpha=0.3)
axes.flat[1].annotate("slope at most 0.25", (0, 0.25), xytext=(-4.8, 1.6),
                      arrowprops=dict(arrowstyle="->"))
axes.flat[0].legend(loc="upper left")
axes.flat[-1].axis("off")
axes.flat[-1].text(0, 0.5, "solid: the activation f(z)\ndashed: its derivative f'(z)\n"
                   "z: the weighted sum of\na unit's inputs", va="center")
fig.tight_layout()

# %%
# The gradient each layer receives
# --------------------------------
# An MLPClassifier with eight hidden layers of 32 units, one per activation,
# on the digits. To read the gradient of the loss with respect to each
# layer's weights we use plain gradient descent (``solver='sgd'``, no
# momentum, no penalty, one batch holding all samples): an update is then
# exactly ``-learning_rate_init * gradient``. ``fit`` with ``max_iter=1``
# makes one update from the initial weights; one ``partial_fit`` makes the
# next, and the difference between the weights before and after it, divided
# by the learning rate, is the gradient.
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
learning_rate = 0.1


def layer_gradient_norms(activation):
    """Norm of the loss gradient for each layer's weight matrix."""
    model = MLPClassifier(hidden_layer_sizes=(32,) * 8, activation=activation,
                          solver="sgd", momentum=0.0, alpha=0.0,
                          batch_size=len(X), learning_rate_init=learning_rate,
                          max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch on purpose
        model.fit(X, y)
    before = [W.copy() for W in model.coefs_]
    model.partial_fit(X, y)
    return [np.linalg.norm(W0 - W1) / learning_rate
            for W0, W1 in zip(before, model.coefs_, strict=True)]


fig, ax = plt.subplots(figsize=(7, 4.2))
for activation in ["logistic", "tanh", "relu", "elu"]:
    norms = layer_gradient_norms(activation)
    print(f"{activation:<9} first hidden layer's gradient / output layer's: "
          f"{norms[0] / norms[-1]:.1e}")
    ax.plot(np.arange(1, len(norms) + 1), norms, marker="o", label=activation)
ax.set_yscale("log")
ax.set_xlabel("layer (1 = the first hidden layer, 9 = the output layer)")
ax.set_ylabel("norm of the weight gradient")
ax.set_title("The gradient reaching each layer of a deep network")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# With the logistic activation the gradient shrinks by a large factor at
# every layer on its way back: the first hidden layer gets a gradient about a
# million times smaller than the output layer's, and barely learns.
# With ``tanh``, ``relu`` and ``elu`` (and sknet's default initialization),
# every layer receives a gradient of a similar size. This is why the lecture
# recommends non-saturating activations for hidden layers: in sknet,
# ``activation="relu"`` (the default), ``"leaky_relu"``, ``"elu"`` or
# ``"selu"``, or one per layer as a list. ``weight_init="auto"`` pairs each
# with the initialization made for it (He for the ReLU family, LeCun for
# SELU, Glorot for sigmoid and tanh).
plt.show()
