# python/minicnn/_minicnn.pyi — type stubs of the extension minicnn._minicnn (python/*.cpp), whose
# public names the package minicnn re-exports. python/tests/test_package.py checks that every
# function, class, method and property of the built extension is here, with the same parameter
# names, kinds and defaults; docs/python.md describes the semantics.
from typing import Any, Callable, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Array = npt.NDArray[Any]
_ArrayLike = npt.ArrayLike
_Pair = Tuple[int, int]
_Padding = Union[str, _Pair]            # "same", "valid" or (ph, pw)
_Activation = Union[str, None, Callable[[_Array], Any]]

class ArgumentError(ValueError):
    """Bad shapes, arguments, names, dtypes or files (C++ minicnn::ArgumentError)."""

class DeviceError(RuntimeError):
    """CUDA unavailable or failing, cuBLAS, out of device memory (C++ minicnn::DeviceError)."""

# ---- the exercise's functions (python/minicnn_py.cpp) ----------------------------------------------
def conv_forward(
    A_prev: _ArrayLike,
    W: _ArrayLike,
    b: _ArrayLike,
    activation: _Activation,
    padding: _Padding = "same",
    stride: _Pair = (1, 1),
    *,
    device: str = "auto",
) -> Any: ...  # an array (m, h_new, w_new, c_new), or what a callable activation returns
def pool_forward(
    A_prev: _ArrayLike,
    kernel_shape: _Pair,
    stride: _Pair = (1, 1),
    mode: str = "max",
    *,
    device: str = "auto",
) -> _Array: ...
def conv_backward(
    dZ: _ArrayLike,
    A_prev: _ArrayLike,
    W: _ArrayLike,
    b: _ArrayLike,
    padding: _Padding = "same",
    stride: _Pair = (1, 1),
    *,
    device: str = "auto",
) -> Tuple[_Array, _Array, _Array]: ...  # (dA_prev, dW, db)
def pool_backward(
    dA: _ArrayLike,
    A_prev: _ArrayLike,
    kernel_shape: _Pair,
    stride: _Pair = (1, 1),
    mode: str = "max",
    *,
    ties: str = "all",
    device: str = "auto",
) -> _Array: ...
def built_with_cuda() -> bool: ...
def cuda_device_count() -> int: ...
def cuda_unavailable_reason() -> str: ...
def _input_copies() -> int: ...

# ---- IDX files (python/idx_py.cpp) -----------------------------------------------------------------
def load_idx(
    directory: str, prefix: str = "train", expect_28x28: bool = True
) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]: ...
def read_idx_images(path: str) -> npt.NDArray[np.uint8]: ...
def read_idx_labels(path: str) -> npt.NDArray[np.uint8]: ...

# ---- the model (python/model_py.cpp) ---------------------------------------------------------------
class History:
    """What Sequential.fit() returns, as Keras's History."""

    @property
    def history(self) -> dict[str, list[float]]: ...
    @property
    def epoch(self) -> list[int]: ...
    @property
    def params(self) -> dict[str, Any]: ...

class Sequential:
    """A stack of layers trained with Adam on categorical cross-entropy (Keras-like)."""

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        name: str = "sequential",
        *,
        device: str = "auto",
    ) -> None: ...
    def conv2d(
        self,
        filters: int,
        kernel_size: _Pair,
        padding: _Padding = "same",
        activation: str | None = None,
        strides: _Pair = (1, 1),
    ) -> Sequential: ...
    def maxpool2d(self, pool_size: _Pair = (2, 2), strides: _Pair | None = None) -> Sequential: ...
    def avgpool2d(self, pool_size: _Pair = (2, 2), strides: _Pair | None = None) -> Sequential: ...
    def flatten(self) -> Sequential: ...
    def dense(self, units: int, activation: str | None = None) -> Sequential: ...
    def activation(self, activation: str | None) -> Sequential: ...
    def dropout(self, rate: float) -> Sequential: ...
    def init_weights(self, seed: int = 0) -> None: ...
    def summary(self, print_fn: Callable[[str], Any] = ...) -> None: ...  # print_fn=print
    def count_params(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def input_shape(self) -> Tuple[int, ...]: ...
    @property
    def output_shape(self) -> Tuple[int, ...]: ...
    @property
    def layers(self) -> list[str]: ...
    @property
    def device(self) -> str: ...
    @property
    def epochs_done(self) -> int: ...
    def fit(
        self,
        x: _ArrayLike,
        y: _ArrayLike,
        batch_size: int = 32,
        epochs: int = 1,
        verbose: int = 1,
        validation_data: Tuple[_ArrayLike, _ArrayLike] | None = None,
        shuffle: bool = True,
        *,
        seed: int = 1,
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        csv_path: str | None = None,
        checkpoint_path: str | None = None,
        cuda_graphs: bool = True,
    ) -> History: ...
    def evaluate(self, x: _ArrayLike, y: _ArrayLike, batch_size: int = 256) -> Tuple[float, float]: ...
    def predict(self, x: _ArrayLike, batch_size: int = 256) -> npt.NDArray[np.float32]: ...
    def train_on_batch(self, x: _ArrayLike, y: _ArrayLike, learning_rate: float = 1e-3) -> float: ...
    def get_weights(self) -> list[npt.NDArray[np.float32]]: ...
    def set_weights(self, weights: Sequence[_ArrayLike]) -> None: ...
    def save(self, path: str) -> None: ...
    def save_weights(self, path: str) -> None: ...
    def load_weights(self, path: str) -> None: ...
    def export(self, path: str) -> None: ...
    @staticmethod
    def load(path: str, device: str = "auto") -> Sequential: ...

def load_model(path: str, device: str = "auto") -> Sequential: ...
def model_from_json(text: str, seed: int = 0, device: str = "auto") -> Sequential: ...
def lenet5(seed: int = 0, device: str = "auto") -> Sequential: ...
