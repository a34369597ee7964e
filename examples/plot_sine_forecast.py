"""
=======================================================
Forecasting a series with a recurrent network
=======================================================

A recurrent network reads a window of a series' past, one value per time
step, and predicts what comes next: sequence in, values out, which is what
:class:`~sknet.RecurrentRegressor` does. Here the series is a sum of two
sines with a little noise. The network learns from the first 800 values to
forecast the next 20 values at once (a multi-output regression, so no
forecast is fed back as an input and errors do not build up), and we
forecast the last 400 values from windows of the true past.
"""

# %%
# Windows of the past, the next 20 values as targets
# --------------------------------------------------
# A window of 60 values is a 2-D row: a univariate sequence of 60 steps.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sknet import RecurrentRegressor

rng = np.random.default_rng(0)
t = np.arange(1200) * 0.1
series = np.sin(t) + 0.5 * np.sin(0.31 * t) + 0.05 * rng.normal(size=t.size)
window, horizon = 60, 20
rows = np.lib.stride_tricks.sliding_window_view(series, window + horizon)
X, Y = rows[:, :window], rows[:, window:]
n_train = 800 - window - horizon + 1  # windows and targets within the first 800 values
X_train, Y_train = X[:n_train], Y[:n_train]

# %%
# A small GRU
# -----------
# 30 epochs are enough here; we stop there on purpose and silence the
# warning that says the optimizer reached ``max_iter``.
reg = RecurrentRegressor(hidden_layer_sizes=(32,), cell="gru", learning_rate_init=0.01,
                         batch_size=32, max_iter=30, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    reg.fit(X_train, Y_train)
test = slice(800 - window, None)  # windows that end at value 800 or later
print(f"R^2 of the 20-step forecasts after the training data: "
      f"{reg.score(X[test], Y[test]):.3f}")

# %%
# Forecasts from every 20th step
# ------------------------------
# Each forecast starts from the 60 true values before it.
fig, ax = plt.subplots(figsize=(9, 4))
ax.plot(t, series, color="0.7", lw=1, label="series")
for k, start in enumerate(range(800, 1200 - horizon + 1, horizon)):
    forecast = reg.predict(series[None, start - window:start])[0]
    ax.plot(t[start:start + horizon], forecast, color="C1", lw=1.8,
            label="20-step forecasts" if k == 0 else None)
    ax.plot(t[start], forecast[0], "o", color="C1", ms=3)
ax.axvline(t[800], color="k", lw=0.8)
ax.text(t[800], 1.6, "  end of the training data", va="top")
ax.set_xlabel("time")
ax.set_ylim(-1.8, 1.8)
ax.legend(loc="lower left")
ax.set_title("RecurrentRegressor(cell='gru'): 20 values ahead from 60 past values")
plt.tight_layout()
plt.show()

# %%
# Each orange piece is one prediction of 20 values; the dots mark where a
# forecast starts. They follow both sines, the fast one and the slow one
# whose period (about 20 time units) is over three times the 6 time units a
# window spans, well past the data the network trained on.
