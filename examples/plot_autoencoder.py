"""
=====================================
An autoencoder on handwritten digits
=====================================

:class:`~sknet.AutoencoderTransformer` trains a network to reproduce its
input through a narrow bottleneck. Its ``transform`` returns the bottleneck
code, and ``inverse_transform`` decodes a code back into an image.

We compress the 8x8 digits to 16 numbers and compare the reconstructions with
the originals and with PCA's, then squeeze them to two numbers and draw the
codes, coloured by the digit they encode. The script never blocks on a
window: without a display matplotlib draws off screen, and the figures appear
in Jupyter, under ``python -i``, or in the documentation's gallery.
"""

# %%
# Train on three quarters of the digits, scaled to [0, 1]
# -------------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sknet import AutoencoderTransformer

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                    random_state=0)

autoencoder = AutoencoderTransformer(n_components=16, random_state=0).fit(X_train)
pca = PCA(n_components=16).fit(X_train)

reconstructed = autoencoder.inverse_transform(autoencoder.transform(X_test))
reconstructed_pca = pca.inverse_transform(pca.transform(X_test))
print(f"held-out mean squared error, autoencoder: {-autoencoder.score(X_test):.4f}")
print(f"held-out mean squared error, PCA:         "
      f"{np.mean((X_test - reconstructed_pca) ** 2):.4f}")

# %%
# Originals and reconstructions
# -----------------------------
# Each column is one test digit: the original on top, then the autoencoder's
# reconstruction from its 16 code values, then PCA's from 16 components.
n_shown = 10
rows = [("original", X_test), ("autoencoder", reconstructed), ("PCA", reconstructed_pca)]
fig, axes = plt.subplots(len(rows), n_shown, figsize=(n_shown, len(rows) + 0.4))
for r, (name, images) in enumerate(rows):
    for c in range(n_shown):
        ax = axes[r, c]
        ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
fig.suptitle("16 numbers per digit: original vs reconstructed")
fig.tight_layout()

# %%
# A two-number code
# -----------------
# With ``n_components=2`` the code can be drawn. Digits of the same class
# gather although the autoencoder never saw a label.
autoencoder_2d = AutoencoderTransformer(n_components=2, random_state=0).fit(X_train)
codes = autoencoder_2d.transform(X_test)

fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=12)
for digit in range(10):
    centre = np.median(codes[y_test == digit], axis=0)
    ax.annotate(str(digit), centre, fontsize=14, weight="bold",
                ha="center", va="center")
ax.set_xlabel("code 1")
ax.set_ylabel("code 2")
ax.set_title("Test digits in the autoencoder's 2-D code")
fig.colorbar(points, ax=ax, label="digit")
fig.tight_layout()

# %%
# The codes as features
# ---------------------
# In a pipeline the code feeds a classifier like any transformer's output.
# ``FrozenEstimator`` reuses the autoencoder fitted above instead of fitting
# it again (``make_pipeline(AutoencoderTransformer(16), LogisticRegression())``
# would fit its own).
pipe = make_pipeline(FrozenEstimator(autoencoder), LogisticRegression(max_iter=1000))
pipe.fit(X_train, y_train)
print(f"test accuracy of logistic regression on the 16-number codes: "
      f"{pipe.score(X_test, y_test):.3f}")
