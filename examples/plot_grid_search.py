"""
========================================
Tuning hyperparameters with GridSearchCV
========================================

sknet's estimators are scikit-learn estimators, so scikit-learn's tools tune
them: :class:`~sklearn.model_selection.GridSearchCV` tries every combination
of the values you give, scores each by cross-validation, and refits the best
one. Here it tunes two of the lecture's hyperparameters, the number of
hidden neurons and the learning rate, for a network that trains for 50
epochs inside a :class:`~sklearn.pipeline.Pipeline` that scales the pixels
first.
"""

# %%
# The search
# ----------
# Parameters of a pipeline's step are named ``<step>__<parameter>``.
# ``n_jobs=-1`` would spread the 60 fits over all cores; for fits this small,
# starting the worker processes costs more than it saves.
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=500,
                                                    stratify=y, random_state=0)

pipeline = make_pipeline(StandardScaler(), MLPClassifier(max_iter=50, random_state=0))
units = [4, 8, 16, 32, 64]
rates = [1e-4, 1e-3, 1e-2, 1e-1]
param_grid = {
    "mlpclassifier__hidden_layer_sizes": [(n,) for n in units],
    "mlpclassifier__learning_rate_init": rates,
}
search = GridSearchCV(pipeline, param_grid, cv=3)
with warnings.catch_warnings():
    # 50 epochs are too few for the smallest rates: those fits warn that they
    # have not converged, which is part of what the search shows.
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated accuracy {search.best_score_:.3f}, "
      f"test accuracy of the refitted best model {search.score(X_test, y_test):.3f}")

# %%
# The heat map
# ------------
# ``cv_results_`` holds the mean cross-validated accuracy of every
# combination, in the order of the grid (parameter names sorted, the last
# one varying fastest).
scores = search.cv_results_["mean_test_score"].reshape(len(units), len(rates))

fig, ax = plt.subplots(figsize=(6.5, 4.5))
image = ax.imshow(scores, cmap="viridis", vmin=0, vmax=1)
ax.set_xticks(range(len(rates)), [f"{r:g}" for r in rates])
ax.set_yticks(range(len(units)), [str(n) for n in units])
ax.set_xlabel("learning_rate_init")
ax.set_ylabel("hidden neurons (one layer)")
for i in range(len(units)):
    for j in range(len(rates)):
        ax.text(j, i, f"{scores[i, j]:.2f}", ha="center", va="center",
                color="black" if scores[i, j] > 0.6 else "white")
fig.colorbar(image, ax=ax, label="mean cross-validated accuracy")
ax.set_title("GridSearchCV: 50 epochs on 500 digits")
fig.tight_layout()

# %%
# Too small a learning rate leaves the network far from trained after 50
# epochs; too large a one overshoots. More neurons help up to a point, as
# the lecture says: add them until the network starts overfitting. The
# same search works for any sknet parameter: ``alpha``, ``l1``, ``dropout``
# (one value or one per layer), ``activation`` (one name or a list),
# ``batch_size``, or transfer-learning settings. For larger grids,
# :class:`~sklearn.model_selection.RandomizedSearchCV` samples a fixed number
# of combinations.
plt.show()
