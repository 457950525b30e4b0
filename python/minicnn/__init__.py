# python/minicnn/__init__.py — the package `minicnn`: every public name of the compiled extension
# minicnn._minicnn (python/minicnn_py.cpp, idx_py.cpp, model_py.cpp), re-exported as minicnn.X.
# Type stubs: _minicnn.pyi beside it (py.typed marks the package as typed). docs/python.md
# describes the API.
from . import _minicnn
from ._minicnn import *  # noqa: F401,F403  (the extension's public names)
from ._minicnn import __version__, _input_copies  # noqa: F401

__doc__ = _minicnn.__doc__

# The classes say they are minicnn's, as the documentation names them (tracebacks print
# `minicnn.ArgumentError: ...`), not the extension's.
for _cls in (_minicnn.ArgumentError, _minicnn.DeviceError, _minicnn.History, _minicnn.Sequential):
    _cls.__module__ = __name__
del _cls
