"""
========================================
Transfer learning when labels are scarce
========================================

Labels are often the expensive part: here we keep the labels of only 10 % of
the training digits, but use all the training images. An
:class:`~sknet.AutoencoderTransformer` learns from the images alone (it is
trained to reproduce them through a narrow bottleneck); its encoder's layers
then start an :class:`~sknet.MLPClassifier` trained on the few labelled
digits.

The lecture's two ways of reusing copied layers are compared with training
from scratch:

* **frozen** (``freeze_transferred=True``): the copied layers stay as they
  were (the lecture's choice when labels are scarce and the network large);
* **fine-tuned** (``freeze_transferred=False``): they go on learning with the
  new task.
"""

# %%
# Data: all the training images, 10 % of their labels
# ---------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sknet import AutoencoderTransformer, MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                    random_state=0)

# %%
# Pretrain an autoencoder on every training image (no labels)
# -----------------------------------------------------------
# Its encoder is ``64 -> 128 -> 32`` (``relu``); as a denoising autoencoder
# (``noise=0.3``) it learns features that survive noise. The classifiers get
# the same hidden layers, ``hidden_layer_sizes=(128, 32)``, and the same
# activation: a copied layer computes the features it learned only with the
# activation it was trained with. ``transfer_from`` copies the encoder's two
# layers into them; the output layer is always new.
autoencoder = AutoencoderTransformer(n_components=32, hidden_layer_sizes=(128,),
                                     activation="relu", noise=0.3, random_state=0)
autoencoder.fit(X_train)


def make_classifier(seed, **transfer):
    """The same classifier for all three variants; only ``transfer`` differs."""
    return MLPClassifier(hidden_layer_sizes=(128, 32), activation="relu",
                         learning_rate_init=0.003, max_iter=1000,
                         random_state=seed, **transfer)


variants = {
    "from scratch": {},
    "frozen": dict(transfer_from=autoencoder, freeze_transferred=True),
    "fine-tuned": dict(transfer_from=autoencoder, freeze_transferred=False),
}

# %%
# Five draws of the labelled 10 %
# -------------------------------
# Each seed draws another labelled subset (stratified: every digit keeps 10 %
# of its labels) and another initialization of the classifier's new layers.
seeds = range(5)
accuracy = {name: [] for name in variants}
for seed in seeds:
    X_few, _, y_few, _ = train_test_split(X_train, y_train, train_size=0.1,
                                          stratify=y_train, random_state=seed)
    for name, transfer in variants.items():
        model = make_classifier(seed, **transfer).fit(X_few, y_few)
        accuracy[name].append(model.score(X_test, y_test))

print(f"{len(y_few)} labelled training digits, {len(y_test)} test digits")
for name, scores in accuracy.items():
    print(f"{name:<13} mean test accuracy {np.mean(scores):.3f} "
          f"(per seed: {', '.join(f'{s:.3f}' for s in scores)})")

# %%
# The comparison
# --------------
# Bars: the mean test accuracy over the five seeds; dots: each seed.
fig, ax = plt.subplots(figsize=(6, 4))
names = list(accuracy)
means = [np.mean(accuracy[n]) for n in names]
ax.bar(names, means, color=["C7", "C0", "C2"])
for i, name in enumerate(names):
    ax.scatter(np.full(len(seeds), i), accuracy[name], color="black", zorder=3, s=12)
    ax.annotate(f"{means[i]:.3f}", (i, max(accuracy[name])), xytext=(0, 8),
                textcoords="offset points", ha="center")
low = min(min(v) for v in accuracy.values())
ax.set_ylim(low - 0.02, 1.0)
ax.set_ylabel("test accuracy")
ax.set_title("Digits with 10 % of the labels:\nhidden layers pretrained by an autoencoder")
fig.tight_layout()

# %%
# The pretrained layers help on average, most when they are frozen: with
# about 135 labelled images, layers that need no training leave less to
# overfit, as the lecture says. Fine-tuning lets them drift towards the few
# labelled digits; a smaller step for them (``transfer_lr_factor``) is one
# way to keep more of what they learned.
#
# Tuning the transfer with GridSearchCV
# -------------------------------------
# ``clone`` (and so every scikit-learn search) replaces an estimator held in a
# parameter by an unfitted copy, which would lose the pretrained weights. A
# source wrapped in :class:`sklearn.frozen.FrozenEstimator` is kept as it is.
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

search = GridSearchCV(
    make_classifier(0, transfer_from=FrozenEstimator(autoencoder)),
    [{"freeze_transferred": [True]},
     {"freeze_transferred": [False], "transfer_lr_factor": [0.1, 1.0]}],
    cv=3,
)
search.fit(X_few, y_few)
print("best:", search.best_params_,
      f"cross-validated accuracy {search.best_score_:.3f}")
plt.show()
