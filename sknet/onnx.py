"""Export sknet models to ONNX, to predict without Python or sknet.

Importing this module registers every sknet estimator with
`skl2onnx <https://onnx.ai/sklearn-onnx/>`_: a converter, a shape calculator,
and for the classifiers skl2onnx's own classifier parser (so its ``zipmap``,
``nocl`` and ``output_class_labels`` options work as for scikit-learn's
classifiers). After ``import sknet.onnx``, ``skl2onnx.to_onnx(model, X[:1])``
converts a fitted sknet estimator, or a :class:`~sklearn.pipeline.Pipeline`
that holds one, and `onnxruntime <https://onnxruntime.ai>`_ (or any ONNX
runtime) runs the result.

What each estimator exports:

* :class:`~sknet.MLPClassifier`: two outputs, as skl2onnx's classifiers: the
  labels (``predict``) and the probabilities (``predict_proba``; with the
  default ``zipmap=True`` a list of ``{label: probability}`` dicts, with
  ``options={"zipmap": False}`` a matrix). Binary, multi-class and
  multilabel targets (labels are then a 0/1 matrix).
* :class:`~sknet.PerceptronClassifier`: the labels and the scores of
  ``decision_function``, as skl2onnx exports scikit-learn's ``Perceptron``:
  one column per class, and ``[-s, s]`` for two classes.
* :class:`~sknet.MLPRegressor`: ``predict``, a matrix of shape
  ``(n_samples, n_outputs)`` (one column for a single target).
* :class:`~sknet.AutoencoderTransformer`: ``transform``, the code. With
  ``options={AutoencoderTransformer: {"inverse_transform": True}}`` (or the
  model's ``id`` as key) the graph is ``inverse_transform`` instead: its
  input is a code, its output the reconstruction.
* :class:`~sknet.RecurrentClassifier` and :class:`~sknet.RecurrentRegressor`:
  as the MLP classifier and regressor, from sequences ``(n_samples, n_steps,
  n_features)`` (``(n_samples, n_steps)`` for a model fitted on univariate
  sequences), of any length, NaN-padded at the end where shorter, as sknet
  takes them. Each recurrent layer is one ONNX ``RNN``, ``LSTM`` or ``GRU``
  operator, told each sequence's length (``sequence_lens``, counted from
  the NaN of the first feature) so that padding changes no state. The
  simple RNN's activation must be one ONNX's ``RNN`` operator has:
  ``tanh``, ``relu``, ``logistic``, ``identity``, ``leaky_relu`` or ``elu``.

Every built-in activation maps to ONNX operators (``relu``, ``leaky_relu``
with ``leaky_relu_slope``, ``elu`` with ``elu_alpha``, ``selu``, ``tanh``,
``logistic``, ``identity``, ``softmax``, ``exp``), one per layer where the
model has a list. An activation of your own (:func:`sknet.register_activation`)
needs its ONNX form, given with :func:`register_onnx_activation`; without it
the export stops with an error that names the activation.

The graph computes in the type of its input: ``X`` of float32 gives a float
graph, float64 a double graph (the weights are cast to that type). A float64
model exported as float agrees with sknet to about 1e-6; export it with
float64 data to agree to rounding. ONNX's ZipMap holds float only: a double
classifier graph needs ``options={"zipmap": False}``. onnxruntime runs its
``RNN``, ``LSTM`` and ``GRU`` operators in float only, so a double graph of
a recurrent model runs its recurrent layers in float (its output layer in
double) and agrees with sknet to about 1e-6.

skl2onnx and onnx are optional dependencies (and onnxruntime to run the
result): ``pip install skl2onnx onnx onnxruntime``, or from a clone of sknet
``pip install -e ".[onnx]"``.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from ._autoencoder import AutoencoderTransformer
from ._core import get_activation
from ._mlp import MLPClassifier, MLPRegressor
from ._perceptron import PerceptronClassifier
from ._recurrent import RecurrentClassifier, RecurrentRegressor, as_sequences

_INSTALL_HINT = (
    "sknet.onnx needs skl2onnx and onnx (and onnxruntime to run the exported "
    "models): install them with `pip install skl2onnx onnx onnxruntime`, or "
    "from a clone of sknet with `pip install -e \".[onnx]\"`."
)

try:
    from onnx import TensorProto, numpy_helper
    from skl2onnx import to_onnx as _skl2onnx_to_onnx
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
except ImportError as exc:
    raise ImportError(_INSTALL_HINT) from exc

__all__ = ["register_onnx_activation", "to_onnx"]

# SELU's constants (Klambauer et al., 2017), as sknet's selu uses them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


# --------------------------------------------------------------------------- #
# the graph a converter (or an activation builder) adds to                     #
# --------------------------------------------------------------------------- #
class OnnxGraph:
    """The ONNX graph being exported, as an activation builder sees it.

    Parameters
    ----------
    scope, container : skl2onnx's Scope and ModelComponentContainer
        Where names come from and where nodes and constants go.
    dtype : {numpy.float32, numpy.float64}
        The element type of the graph's tensors.

    Attributes
    ----------
    dtype : numpy.dtype
        float32 or float64: the element type of the graph's tensors, which
        the constants get by default.
    """

    def __init__(self, scope, container, dtype):
        self._scope = scope
        self._container = container
        self.dtype = np.dtype(dtype)

    def node(self, op_type, *inputs, **attributes):
        """Add an operator of the default ONNX domain; return its output's name.

        Parameters
        ----------
        op_type : str
            The ONNX operator, for example ``"Mul"`` or ``"Sigmoid"``.
        *inputs : str, number or array
            Names of tensors, or values, which become constants of ``dtype``.
        **attributes
            The operator's attributes, for example ``alpha=0.1``.

        Returns
        -------
        name : str
        """
        return self._node(op_type, inputs, 1, attributes)[0]

    def _node(self, op_type, inputs, n_outputs, attributes):
        """Add an operator with ``n_outputs`` outputs; return their names."""
        names = [x if isinstance(x, str) else self.constant(x) for x in inputs]
        outputs = [self._scope.get_unique_variable_name(op_type.lower())
                   for _ in range(n_outputs)]
        self._container.add_node(op_type, names, outputs,
                                 name=self._scope.get_unique_operator_name(op_type),
                                 **attributes)
        return outputs

    @property
    def _opset(self):
        """The opset of the default domain the graph is written for."""
        return self._container.target_opset

    def constant(self, value, dtype=None):
        """Add a constant tensor; return its name.

        Parameters
        ----------
        value : number or array-like
        dtype : numpy dtype, default=None
            Its element type; by default the graph's (``object`` for strings).

        Returns
        -------
        name : str
        """
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self._scope.get_unique_variable_name("constant")
        if array.dtype.kind in "OSU":
            self._container.add_initializer(
                name, TensorProto.STRING, list(array.shape),
                [str(v).encode("utf-8") for v in array.ravel()])
        else:
            tensor = numpy_helper.from_array(np.ascontiguousarray(array))
            self._container.add_initializer(name, tensor.data_type, list(array.shape),
                                            tensor)
        return name

    def _copy(self, source, output):
        """Write tensor ``source`` to the graph output named ``output``."""
        self._container.add_node("Identity", [source], [output],
                                 name=self._scope.get_unique_operator_name("Identity"))


def _graph(scope, operator, container):
    dtype = np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) \
        else np.float32
    return OnnxGraph(scope, container, dtype)


# --------------------------------------------------------------------------- #
# activations                                                                  #
# --------------------------------------------------------------------------- #
# onnxruntime implements LeakyRelu, Elu and Selu for float tensors only, so a
# double graph writes them with Min, Max and Exp, as sknet computes them.
def _leaky_relu(g, x, params):
    slope = params["negative_slope"]
    if g.dtype == np.float32:
        return g.node("LeakyRelu", x, alpha=slope)
    zero = g.constant(0.0)
    return g.node("Add", g.node("Max", x, zero),
                  g.node("Mul", g.node("Min", x, zero), slope))


def _elu_by_parts(g, x, alpha, scale):
    """``scale * (max(x, 0) + alpha * (exp(min(x, 0)) - 1))``."""
    zero = g.constant(0.0)
    negative = g.node("Sub", g.node("Exp", g.node("Min", x, zero)), 1.0)
    out = g.node("Add", g.node("Max", x, zero), g.node("Mul", negative, alpha))
    return out if scale == 1.0 else g.node("Mul", out, scale)


def _elu(g, x, params):
    if g.dtype == np.float32:
        return g.node("Elu", x, alpha=params["alpha"])
    return _elu_by_parts(g, x, params["alpha"], 1.0)


def _selu(g, x, params):
    if g.dtype == np.float32:
        return g.node("Selu", x, alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    return _elu_by_parts(g, x, _SELU_ALPHA, _SELU_SCALE)


def _saturating_exp(g, x, params):
    # As sknet: the input is clipped just below exp's overflow threshold.
    upper = float(np.log(np.finfo(g.dtype).max)) - 1.0
    return g.node("Exp", g.node("Min", x, upper))


_BUILTIN_ACTIVATIONS = {
    "identity": lambda g, x, params: x,
    "relu": lambda g, x, params: g.node("Relu", x),
    "tanh": lambda g, x, params: g.node("Tanh", x),
    "logistic": lambda g, x, params: g.node("Sigmoid", x),
    "softmax": lambda g, x, params: g.node("Softmax", x, axis=1),
    "exp": _saturating_exp,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "selu": _selu,
}

_ONNX_ACTIVATIONS = {}  # name -> builder(graph, x), from register_onnx_activation


def register_onnx_activation(name, builder, *, overwrite=False):
    """Give the ONNX form of an activation registered with :func:`sknet.register_activation`.

    Parameters
    ----------
    name : str
        The activation's name, as estimators take it.
    builder : callable
        ``builder(graph, x) -> name``: adds the nodes that compute the
        activation of the tensor named ``x`` and returns the name of their
        output. ``graph.node(op_type, *inputs, **attributes)`` adds an ONNX
        operator and returns its output's name (inputs are tensor names, or
        numbers and arrays, which become constants); ``graph.constant(value)``
        adds a constant; ``graph.dtype`` is float32 or float64, the type of
        the graph's tensors.
    overwrite : bool, default=False
        Allow replacing a builder given before, or a built-in activation's
        ONNX form (needed when that built-in name was re-registered with
        ``register_activation(..., overwrite=True)``).

    Returns
    -------
    builder : callable
        ``builder``, unchanged.

    Examples
    --------
    Swish, ``x * sigmoid(x)``:

    >>> import numpy as np
    >>> from scipy.special import expit
    >>> from sknet import MLPClassifier, register_activation
    >>> from sknet.onnx import register_onnx_activation, to_onnx
    >>> _ = register_activation(
    ...     "swish_doc", lambda z: z * expit(z),
    ...     lambda z, g: g * (expit(z) * (1 + z * (1 - expit(z)))),
    ...     derivative_of="input")
    >>> _ = register_onnx_activation(
    ...     "swish_doc", lambda graph, x: graph.node("Mul", x, graph.node("Sigmoid", x)))
    >>> X = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    >>> y = (X[:, 0] > 0.5).astype(int)
    >>> clf = MLPClassifier((4,), activation="swish_doc", solver="lbfgs",
    ...                     random_state=0).fit(X, y)
    >>> onx = to_onnx(clf, X, options={"zipmap": False})
    >>> [output.name for output in onx.graph.output]
    ['label', 'probabilities']
    """
    if not isinstance(name, str) or not name:
        raise ValueError("An activation name must be a non-empty string.")
    if not callable(builder):
        raise TypeError(f"builder must be a callable builder(graph, x) -> name; got "
                        f"{builder!r}.")
    if not overwrite and (name in _ONNX_ACTIVATIONS or name in _BUILTIN_ACTIVATIONS):
        raise ValueError(f"The activation {name!r} has an ONNX form already; pass "
                         "overwrite=True to replace it.")
    _ONNX_ACTIVATIONS[name] = builder
    return builder


def _registered_by_user(name):
    """Whether ``name`` is an activation of sknet.register_activation."""
    try:
        activation = get_activation(name)
    except ValueError:
        return False
    # register_activation wraps the user's function; the built-ins are bare.
    return getattr(activation.forward, "__wrapped__", None) is not None


def _activation(g, x, name, params, model):
    """The nodes of activation ``name`` on tensor ``x``; the output's name."""
    if name in _ONNX_ACTIVATIONS:
        out = _ONNX_ACTIVATIONS[name](g, x)
        if not isinstance(out, str):
            raise TypeError(f"The ONNX builder of the activation {name!r} must return "
                            f"the name of its output (a str); it returned {out!r}.")
        return out
    if name in _BUILTIN_ACTIVATIONS and not _registered_by_user(name):
        return _BUILTIN_ACTIVATIONS[name](g, x, params)
    raise ValueError(
        f"The activation {name!r} of this {type(model).__name__} has no ONNX form: "
        "it was registered with sknet.register_activation, and ONNX needs it "
        "written in ONNX operators. Give them with "
        f"sknet.onnx.register_onnx_activation({name!r}, builder), where "
        "builder(graph, x) adds the nodes and returns the name of their output.")


# --------------------------------------------------------------------------- #
# the layers of each estimator, from its fitted attributes                     #
# --------------------------------------------------------------------------- #
def _activation_params(model):
    return {"negative_slope": float(model.leaky_relu_slope),
            "alpha": float(model.elu_alpha)}


def _per_layer(activation, n_layers):
    return [activation] * n_layers if isinstance(activation, str) else list(activation)


def _mlp_layers(model):
    """``[(W, b, activation name)]`` of an MLP, input to output."""
    names = _per_layer(model.activation, len(model.coefs_) - 1) + [model.out_activation_]
    return list(zip(model.coefs_, model.intercepts_, names))


def _autoencoder_layers(model):
    """``[(W, b, activation name)]`` of an autoencoder, and the encoder's length.

    The decoder's hidden layers mirror the encoder's activations; with tied
    weights its matrices are the encoder's, transposed, in reverse order.
    """
    n_layers = len(model.intercepts_)
    half = n_layers // 2
    coefs = list(model.coefs_)
    if len(coefs) < n_layers:
        coefs += [W.T for W in coefs[::-1]]
    encoder = _per_layer(model.activation, half)
    names = encoder + encoder[:half - 1][::-1] + [model.out_activation_]
    return list(zip(coefs, model.intercepts_, names)), half


def _dense(g, x, layers, model):
    """Dense layers ``f(a @ W + b)`` one after the other; the last output's name."""
    params = _activation_params(model)
    a = x
    for W, b, name in layers:
        z = g.node("Gemm", a, g.constant(W), g.constant(b))
        a = _activation(g, z, name, params, model)
    return a


# --------------------------------------------------------------------------- #
# recurrent layers: ONNX's own RNN, LSTM and GRU operators                     #
# --------------------------------------------------------------------------- #
# sknet stacks the gates in PyTorch's order (LSTM i, f, g, o; GRU r, z, n),
# ONNX in its own (LSTM i, o, f, c; GRU z, r, h): the blocks of PyTorch's
# order that make ONNX's, in ONNX's order.
_ONNX_GATES = {"rnn": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}
_ONNX_CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def _rnn_activations(model):
    """sknet's activation -> ``(ONNX RNN activation, alpha, beta)``.

    The activations ONNX's RNN operator offers (and onnxruntime runs), with
    the model's parameters; None where no parameter is taken.
    """
    return {
        "tanh": ("Tanh", None, None),
        "relu": ("Relu", None, None),
        "logistic": ("Sigmoid", None, None),
        "identity": ("Affine", 1.0, 0.0),
        "leaky_relu": ("LeakyRelu", float(model.leaky_relu_slope), None),
        "elu": ("Elu", float(model.elu_alpha), None),
    }


def _rnn_activation_attributes(model, name, n_directions):
    """The RNN operator's ``activations`` (and alpha, beta) for activation ``name``."""
    mapped = _rnn_activations(model)
    if name not in mapped or _registered_by_user(name):
        raise ValueError(
            f"The simple RNN's activation {name!r} of this {type(model).__name__} has "
            "no ONNX form: ONNX's RNN operator applies one of its own activations, "
            f"and sknet's {sorted(mapped)} are those that export (a custom "
            "activation's register_onnx_activation form cannot go inside the "
            "operator). Fit the model with one of them, or use cell='gru' or 'lstm'.")
    op, alpha, beta = mapped[name]
    attributes = {"activations": [op] * n_directions}
    if alpha is not None:
        attributes["activation_alpha"] = [alpha] * n_directions
    if beta is not None:
        attributes["activation_beta"] = [beta] * n_directions
    return attributes


def _onnx_gate_order(a, cell):
    """The gate blocks (rows) of ``a`` from PyTorch's order to ONNX's."""
    blocks = np.split(np.asarray(a), len(_ONNX_GATES[cell]), axis=0)
    return np.concatenate([blocks[i] for i in _ONNX_GATES[cell]], axis=0)


def _onnx_recurrent_weights(weights, cell, n_directions):
    """ONNX's ``W``, ``R`` and ``B`` of one layer, from its ``recurrent_weights_`` dict.

    ``W`` is ``(n_directions, G * H, n_in)``, ``R`` is ``(n_directions,
    G * H, H)`` and ``B`` is ``(n_directions, 2 * G * H)``, ``[b_ih, b_hh]``;
    the forward direction first, each in ONNX's gate order.
    """
    suffixes = ("", "_reverse")[:n_directions]

    def stack(*names):
        return np.stack([np.concatenate([_onnx_gate_order(weights[n + s], cell)
                                         for n in names]) for s in suffixes])

    return stack("weight_ih"), stack("weight_hh"), stack("bias_ih", "bias_hh")


def _recurrent_layers(model):
    """``[(W, R, B, attributes)]`` per recurrent layer, for ONNX's operators."""
    cell = model.cell
    n_directions = 2 if model.bidirectional else 1
    names = _per_layer(model.activation, len(model.recurrent_weights_))
    layers = []
    for weights, name in zip(model.recurrent_weights_, names):
        hidden = weights["weight_hh"].shape[1]
        attributes = {"hidden_size": hidden,
                      "direction": "bidirectional" if n_directions == 2 else "forward"}
        if cell == "rnn":
            attributes.update(_rnn_activation_attributes(model, name, n_directions))
        elif cell == "gru":
            attributes["linear_before_reset"] = 1  # r * (W_hn h + b_hn), PyTorch's
        layers.append((*_onnx_recurrent_weights(weights, cell, n_directions),
                       attributes))
    return layers


def _reduce_sum(g, x, axes):
    """``x.sum(axis=axes)``, written for the graph's opset."""
    if g._opset >= 13:  # the axes became an input in opset 13
        return g.node("ReduceSum", x, g.constant(axes, dtype=np.int64), keepdims=0)
    return g.node("ReduceSum", x, axes=list(axes), keepdims=0)


def _unpadded_sequences(g, x, rank):
    """NaN-padded batch-major sequences -> time-major ones and their lengths.

    Returns ``(x, lengths)``: ``x`` of shape ``(T, N, F)`` with the padding
    set to 0, in float (onnxruntime runs the recurrent operators in float
    only), and ``lengths`` (int32, ``(N,)``), each sequence's number of
    steps whose first feature is not NaN. A 2-D input ``(N, T)`` holds
    univariate sequences.
    """
    if rank == 2:
        x = g.node("Reshape", x, g.constant([0, 0, 1], dtype=np.int64))
    nan = g.node("IsNaN", x)
    x = g.node("Where", nan, 0.0, x)
    padding = g.node("Gather", nan, g.constant([0], dtype=np.int64), axis=2)  # (N, T, 1)
    steps = g.node("Cast", g.node("Not", padding), to=TensorProto.INT32)
    x = g.node("Transpose", x, perm=[1, 0, 2])
    if g.dtype != np.float32:
        x = g.node("Cast", x, to=TensorProto.FLOAT)
    return x, _reduce_sum(g, steps, (1, 2))


def _recurrent_features(g, x, rank, model):
    """The sequence-level features sknet's output layer reads, ``(N, H * dirs)``.

    Each layer is one ONNX RNN, LSTM or GRU operator over the whole batch,
    told each sequence's length (``sequence_lens``): a padding step changes
    no state, the forward direction's final state ``Y_h`` is the state at
    the last real step, and the reverse direction starts there. A layer
    reads the output sequence ``Y`` of the one below, ``(T, dirs, N, H)``
    laid out as ``(T, N, dirs * H)``; the features are the last layer's
    ``Y_h``, ``(dirs, N, H)``, laid out as ``(N, dirs * H)``: the forward
    state, then the reverse one, as sknet's.
    """
    x, lengths = _unpadded_sequences(g, x, rank)
    op_type = _ONNX_CELLS[model.cell]
    layers = _recurrent_layers(model)
    for k, (W, R, B, attributes) in enumerate(layers):
        constants = [g.constant(a, dtype=np.float32) for a in (W, R, B)]
        Y, Y_h = g._node(op_type, [x, *constants, lengths], 2, attributes)
        if k < len(layers) - 1:  # the next layer reads Y as (T, N, dirs * H)
            x = g.node("Reshape", g.node("Transpose", Y, perm=[0, 2, 1, 3]),
                       g.constant([0, 0, -1], dtype=np.int64))
    features = g.node("Reshape", g.node("Transpose", Y_h, perm=[1, 0, 2]),
                      g.constant([0, -1], dtype=np.int64))
    if g.dtype != np.float32:
        features = g.node("Cast", features, to=TensorProto.DOUBLE)
    return features


def _recurrent_output(g, operator):
    """The output layer's activations on the recurrent layers' features."""
    model = operator.raw_operator
    x = operator.inputs[0]
    features = _recurrent_features(g, x.full_name, len(x.type.shape), model)
    layer = (model.coefs_[0], model.intercepts_[0], model.out_activation_)
    return _dense(g, features, [layer], model)


# --------------------------------------------------------------------------- #
# shape calculators                                                            #
# --------------------------------------------------------------------------- #
def _float_tensor_type(operator):
    """The input's tensor type, float or double; refuses anything else."""
    model = operator.raw_operator
    check_is_fitted(model)
    if len(operator.inputs) != 1:
        raise RuntimeError(f"{type(model).__name__} takes one input, got "
                           f"{len(operator.inputs)}.")
    kind = type(operator.inputs[0].type)
    if kind not in (FloatTensorType, DoubleTensorType):
        raise TypeError(
            f"An exported {type(model).__name__} takes a float or double tensor; got "
            f"{operator.inputs[0].type}. Convert with float32 or float64 data "
            "(sknet itself computes other data in float64).")
    return kind


def _is_multilabel(model):
    return isinstance(model, (MLPClassifier, RecurrentClassifier)) \
        and model.out_activation_ == "logistic" and model.n_outputs_ > 1


def _onnx_labels(model, nocl):
    """The class labels as ONNX holds them: int64, or strings (dtype object)."""
    classes = np.asarray(model.classes_)
    if nocl:
        return np.arange(len(classes), dtype=np.int64)
    if classes.dtype.kind in "OSU":
        return classes.astype(str).astype(object)
    if classes.dtype.kind == "f" and not np.array_equal(classes, np.round(classes)):
        raise ValueError(
            f"ONNX labels are integers or strings, and classes_ of this "
            f"{type(model).__name__} holds {classes}. Fit it on integer or string "
            "labels, or export it with options={'nocl': True, 'zipmap': False} "
            "(the labels are then class indices).")
    return classes.astype(np.int64)


def _nocl(scope, model):
    return scope.get_options(model, dict(nocl=False))["nocl"]


def _classifier_shapes(operator):
    model = operator.raw_operator
    tensor = _float_tensor_type(operator)
    zipmap = operator.scope_inst.get_options(model, dict(zipmap=True))["zipmap"]
    if tensor is DoubleTensorType and zipmap is not False:
        raise ValueError(
            f"ONNX's ZipMap holds float probabilities only, and this "
            f"{type(model).__name__} is exported as a double graph (float64 data). "
            "Pass options={'zipmap': False} for a double probability matrix, or "
            "convert with float32 data.")
    n = operator.inputs[0].get_first_dimension()
    labels = _onnx_labels(model, _nocl(operator.scope_inst, model))
    label_type = StringTensorType if labels.dtype == object else Int64TensorType
    operator.outputs[0].type = label_type(
        [n, model.n_outputs_] if _is_multilabel(model) else [n])
    operator.outputs[1].type = tensor([n, len(model.classes_)])


def _regressor_shapes(operator):
    model = operator.raw_operator
    tensor = _float_tensor_type(operator)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor([n, model.n_outputs_])


def _autoencoder_shapes(operator):
    model = operator.raw_operator
    tensor = _float_tensor_type(operator)
    inverse = operator.scope_inst.get_options(
        model, dict(inverse_transform=False))["inverse_transform"]
    n_components = len(model.intercepts_[len(model.intercepts_) // 2 - 1])
    width_in, width_out = (n_components, model.n_features_in_) if inverse \
        else (model.n_features_in_, n_components)
    shape = operator.inputs[0].type.shape
    if len(shape) == 2 and shape[1] not in (None, width_in):
        what = ("codes of its bottleneck (convert with model.transform(X[:1]))"
                if inverse else "the features it was fitted on")
        raise ValueError(
            f"The exported {'inverse_transform' if inverse else 'transform'} of this "
            f"AutoencoderTransformer takes {width_in} columns, the {what}; the "
            f"input has {shape[1]}.")
    operator.outputs[0].type = tensor([operator.inputs[0].get_first_dimension(),
                                       width_out])


def _check_sequence_input(operator):
    """A recurrent model's input: ``(N, T, F)``, or ``(N, T)`` for ``F = 1``.

    The number of steps is left free (the input's declared ``T`` becomes
    None): an exported model takes sequences of any length, as sknet's.
    """
    model = operator.raw_operator
    _float_tensor_type(operator)
    shape = operator.inputs[0].type.shape
    width = model.n_step_features_
    if not (len(shape) == 3 and shape[2] in (None, width)
            or len(shape) == 2 and width == 1):
        raise ValueError(
            f"This {type(model).__name__} reads sequences of {width} feature(s) per "
            f"step: its exported input is (n_samples, n_steps, {width})"
            + (" or (n_samples, n_steps)" if width == 1 else "")
            + f"; got an input of shape {shape}. Convert with sequences of that form "
            "(sknet.as_sequences reads the other forms sknet takes).")
    operator.inputs[0].type.shape = [shape[0], None, *shape[2:]]


def _recurrent_classifier_shapes(operator):
    _check_sequence_input(operator)
    _classifier_shapes(operator)


def _recurrent_regressor_shapes(operator):
    _check_sequence_input(operator)
    _regressor_shapes(operator)


# --------------------------------------------------------------------------- #
# converters                                                                   #
# --------------------------------------------------------------------------- #
def _labels_of_scores(g, scores, labels):
    """The label of each row's largest score (the first one on ties, as numpy)."""
    index = g.node("ArgMax", scores, axis=1, keepdims=0)
    return g.node("Gather", g.constant(labels, dtype=labels.dtype), index, axis=0)


def _classifier_outputs(g, scope, operator, P):
    """Labels and probabilities from the output layer's activations ``P``.

    ``P`` holds softmax probabilities, one logistic unit (binary) or one
    logistic unit per label (multilabel); the two graph outputs get
    ``predict`` and ``predict_proba``.
    """
    model = operator.raw_operator
    if _is_multilabel(model):
        proba = P
        labels = g.node("Cast", g.node("Greater", P, 0.5), to=TensorProto.INT64)
    else:
        if len(model.intercepts_[-1]) == 1:  # binary: one logistic unit
            P = g.node("Concat", g.node("Sub", 1.0, P), P, axis=1)
        proba = P
        labels = _labels_of_scores(g, proba, _onnx_labels(model, _nocl(scope, model)))
    g._copy(labels, operator.outputs[0].full_name)
    g._copy(proba, operator.outputs[1].full_name)


def _convert_mlp_classifier(scope, operator, container):
    model = operator.raw_operator
    g = _graph(scope, operator, container)
    P = _dense(g, operator.inputs[0].full_name, _mlp_layers(model), model)
    _classifier_outputs(g, scope, operator, P)


def _convert_perceptron(scope, operator, container):
    model = operator.raw_operator
    g = _graph(scope, operator, container)
    coef = model.coef_.toarray() if sp.issparse(model.coef_) else np.asarray(model.coef_)
    scores = g.node("Gemm", operator.inputs[0].full_name, g.constant(coef),
                    g.constant(model.intercept_), transB=1)
    if coef.shape[0] == 1:  # two classes: [-s, s], as skl2onnx for scikit-learn's
        scores = g.node("Concat", g.node("Neg", scores), scores, axis=1)
    labels = _labels_of_scores(g, scores, _onnx_labels(model, _nocl(scope, model)))
    g._copy(labels, operator.outputs[0].full_name)
    g._copy(scores, operator.outputs[1].full_name)


def _convert_mlp_regressor(scope, operator, container):
    model = operator.raw_operator
    g = _graph(scope, operator, container)
    P = _dense(g, operator.inputs[0].full_name, _mlp_layers(model), model)
    g._copy(P, operator.outputs[0].full_name)


def _convert_autoencoder(scope, operator, container):
    model = operator.raw_operator
    g = _graph(scope, operator, container)
    inverse = container.get_options(model, dict(inverse_transform=False))[
        "inverse_transform"]
    layers, half = _autoencoder_layers(model)
    part = layers[half:] if inverse else layers[:half]
    g._copy(_dense(g, operator.inputs[0].full_name, part, model),
            operator.outputs[0].full_name)


def _convert_recurrent_classifier(scope, operator, container):
    g = _graph(scope, operator, container)
    _classifier_outputs(g, scope, operator, _recurrent_output(g, operator))


def _convert_recurrent_regressor(scope, operator, container):
    g = _graph(scope, operator, container)
    g._copy(_recurrent_output(g, operator), operator.outputs[0].full_name)


_RECURRENT = (RecurrentClassifier, RecurrentRegressor)

_CLASSIFIER_OPTIONS = {
    "zipmap": [True, False, "columns"],
    "nocl": [False, True],
    "output_class_labels": [False, True],
}

update_registered_converter(MLPClassifier, "SknetMLPClassifier", _classifier_shapes,
                            _convert_mlp_classifier, options=_CLASSIFIER_OPTIONS)
update_registered_converter(MLPRegressor, "SknetMLPRegressor", _regressor_shapes,
                            _convert_mlp_regressor)
# raw_scores is accepted as for scikit-learn's Perceptron: the scores are raw anyway.
update_registered_converter(PerceptronClassifier, "SknetPerceptronClassifier",
                            _classifier_shapes, _convert_perceptron,
                            options={**_CLASSIFIER_OPTIONS, "raw_scores": [False, True]})
update_registered_converter(AutoencoderTransformer, "SknetAutoencoderTransformer",
                            _autoencoder_shapes, _convert_autoencoder,
                            options={"inverse_transform": [False, True]})
update_registered_converter(RecurrentClassifier, "SknetRecurrentClassifier",
                            _recurrent_classifier_shapes, _convert_recurrent_classifier,
                            options=_CLASSIFIER_OPTIONS)
update_registered_converter(RecurrentRegressor, "SknetRecurrentRegressor",
                            _recurrent_regressor_shapes, _convert_recurrent_regressor)


# --------------------------------------------------------------------------- #
# convenience                                                                  #
# --------------------------------------------------------------------------- #
def to_onnx(model, X, **kwargs):
    """Convert a fitted model (sknet's, or a Pipeline holding one) to ONNX.

    ``skl2onnx.to_onnx(model, X[:1], **kwargs)``, where ``X`` may be a whole
    data set: only its first row is used, for the type and width of the
    graph's input. Data that is neither float32 nor float64 is taken as
    float64, as sknet computes it.

    Parameters
    ----------
    model : estimator
        A fitted sknet estimator, or a scikit-learn Pipeline (or other model
        skl2onnx converts) holding some.
    X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        Data of the kind the model predicts on: float32 gives a float graph,
        float64 a double graph. A sparse matrix gives a dense input; a
        DataFrame is passed on (skl2onnx then makes one input per column).
        For a recurrent model, sequences: a 3-D array, a 2-D array of
        univariate sequences, or a list of sequences of unequal lengths.
    **kwargs
        Passed to :func:`skl2onnx.to_onnx`: ``options`` (for example
        ``{"zipmap": False}`` for a probability matrix instead of a list of
        dicts), ``target_opset``, ``name``, ...

    Returns
    -------
    onx : onnx.ModelProto
        The model; ``onx.SerializeToString()`` is what an
        ``onnxruntime.InferenceSession`` loads, and the input is named ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.onnx import to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> X = X.astype(np.float32)
    >>> clf = MLPClassifier((8,), solver="lbfgs", random_state=0).fit(X, y)
    >>> onx = to_onnx(clf, X, options={"zipmap": False})
    >>> import onnxruntime as ort
    >>> session = ort.InferenceSession(onx.SerializeToString(),
    ...                                providers=["CPUExecutionProvider"])
    >>> labels, proba = session.run(None, {"X": X})
    >>> bool((labels == clf.predict(X)).all())
    True
    >>> bool(np.allclose(proba, clf.predict_proba(X), atol=1e-5))
    True
    """
    check_is_fitted(model)
    if hasattr(X, "iloc"):
        X = X.iloc[:1]
    elif isinstance(X, (list, tuple)) and isinstance(model, _RECURRENT):
        X = as_sequences(X[:1])
    else:
        X = X[:1].toarray() if sp.issparse(X) else np.asarray(X)[:1]
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
    return _skl2onnx_to_onnx(model, X, **kwargs)
