"""
==================================
Exporting a model to ONNX
==================================

A fitted sknet model can leave Python: :mod:`sknet.onnx` teaches
`skl2onnx <https://onnx.ai/sklearn-onnx/>`_ to convert sknet's estimators to
ONNX, a format that `onnxruntime <https://onnxruntime.ai>`_ and other
runtimes (C, C++, C#, Java, JavaScript, mobile) run without sknet, numpy or
Python.

We train a classifier on the digits, export it, check that onnxruntime gives
the same probabilities and labels as sknet, then export a whole pipeline, and
time both runtimes on one row and on a thousand. The script needs the onnx
extra: ``pip install skl2onnx onnx onnxruntime``.
"""

# %%
# Train a classifier
# ------------------
# Per-layer activations, with a slope of our own for the leaky relu: the
# export carries both. The data is float32, so the exported graph computes in
# float32 as sknet did (float64 data would give a double graph).
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

clf = MLPClassifier(hidden_layer_sizes=(64, 32), activation=["elu", "leaky_relu"],
                    leaky_relu_slope=0.1, max_iter=60, random_state=0)
with warnings.catch_warnings():
    # 60 epochs are enough for this demonstration; the rule would go on.
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf.fit(X_train, y_train)
print(f"sknet test accuracy: {clf.score(X_test, y_test):.4f}")

# %%
# Export it
# ---------
# ``import sknet.onnx`` registers sknet's converters with skl2onnx; after it,
# ``skl2onnx.to_onnx`` converts sknet's models like scikit-learn's.
# ``sknet.onnx.to_onnx`` is the same call, taking a whole data set for the
# input's type and width. ``zipmap=False`` asks for the probabilities as a
# matrix rather than a list of ``{label: probability}`` dicts.
import onnxruntime as ort

from sknet.onnx import to_onnx

onx = to_onnx(clf, X_train, options={"zipmap": False})
print(f"ONNX model: {len(onx.SerializeToString()) / 1024:.0f} KiB, inputs "
      f"{[i.name for i in onx.graph.input]}, outputs {[o.name for o in onx.graph.output]}")

session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
labels, proba = session.run(None, {"X": X_test})
sknet_proba = clf.predict_proba(X_test)
print(f"largest probability difference: {np.abs(proba - sknet_proba).max():.1e}")
print(f"labels that differ: {int(np.sum(labels != clf.predict(X_test)))} of {len(labels)}")

# %%
# A whole pipeline
# ----------------
# A :class:`~sklearn.pipeline.Pipeline` converts as one graph, scikit-learn's
# steps by skl2onnx's own converters and sknet's by sknet's: here a scaler,
# an :class:`~sknet.AutoencoderTransformer` that compresses the digits to 16
# numbers, and a classifier on those.
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import AutoencoderTransformer

pipe = make_pipeline(StandardScaler(),
                     AutoencoderTransformer(n_components=16, random_state=0),
                     MLPClassifier(max_iter=300, random_state=0))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    pipe.fit(X_train, y_train)
pipe_session = ort.InferenceSession(
    to_onnx(pipe, X_train, options={"zipmap": False}).SerializeToString(),
    providers=["CPUExecutionProvider"])
pipe_labels, pipe_proba = pipe_session.run(None, {"X": X_test})
print(f"pipeline: accuracy {np.mean(pipe_labels == y_test):.4f} in onnxruntime, "
      f"{pipe.score(X_test, y_test):.4f} in sknet; largest probability difference "
      f"{np.abs(pipe_proba - pipe.predict_proba(X_test)).max():.1e}")


# %%
# Speed
# -----
# A served model often predicts one row at a time, where the fixed cost of a
# call counts more than the arithmetic: sknet checks its input as
# scikit-learn does, onnxruntime runs a compiled graph. The median of a few
# hundred calls of each (``benchmarks/bench_onnx.py`` measures this with
# interleaved rounds and scikit-learn's MLP beside them).
def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


X_many = np.tile(X_test, (3, 1))[:1000]
timings = {}
for rows, data, repeats in (("1 row", X_test[:1], 300), ("1,000 rows", X_many, 30)):
    timings[rows] = {
        "sknet predict_proba": median_seconds(lambda d=data: clf.predict_proba(d), repeats),
        "onnxruntime": median_seconds(lambda d=data: session.run(None, {"X": d}), repeats),
    }
    print(rows + ": " + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in timings[rows].items()))

# %%
# What the runtimes give, and how fast
# ------------------------------------
# Left: every test probability from onnxruntime against sknet's (they lie on
# the diagonal). Right: the time per call.
fig, (ax_scatter, ax_time) = plt.subplots(1, 2, figsize=(10, 4))
ax_scatter.scatter(sknet_proba.ravel(), proba.ravel(), s=4, alpha=0.4)
ax_scatter.plot([0, 1], [0, 1], color="grey", lw=0.8)
ax_scatter.set_xlabel("sknet predict_proba")
ax_scatter.set_ylabel("onnxruntime probabilities")
ax_scatter.set_title("the same probabilities")

names = list(timings["1 row"])
width = 0.35
positions = np.arange(len(timings))
for i, name in enumerate(names):
    ax_time.bar(positions + (i - 0.5) * width,
                [timings[rows][name] * 1e6 for rows in timings], width, label=name)
ax_time.set_xticks(positions, list(timings))
ax_time.set_yscale("log")
ax_time.set_ylabel("microseconds per call (log scale)")
ax_time.set_title("prediction time")
ax_time.legend()
fig.tight_layout()
plt.show()
