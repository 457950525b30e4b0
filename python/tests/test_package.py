# python/tests/test_package.py — the package layout (minicnn re-exporting the extension
# minicnn._minicnn), its version (one source: MINICNN_VERSION in cmake/sources.cmake, read by CMake
# for the module and by pyproject.toml's regex for the distribution), and its type stubs
# (_minicnn.pyi must name every function, class, method and property of the built extension, with
# its parameters' names, kinds and defaults as pybind11 reports them).
#
# MINICNN_EXPECT_INSTALLED=<folder> (tests/install/pip.sh) requires the imported package to be the
# copy pip installed under <folder>, with its distribution's metadata; otherwise (the build tree's
# copy, ctest) the distribution test applies only when the imported copy is an installed one.
import ast
import importlib.metadata
import os
import re
import tomllib
import types
from pathlib import Path

import pytest

import minicnn
from minicnn import _minicnn

SOURCE_DIR = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(minicnn.__file__).resolve().parent


def cmake_version():
    """The version as scikit-build-core reads it: pyproject.toml's regex on its input file."""
    with open(SOURCE_DIR / "pyproject.toml", "rb") as f:
        entries = tomllib.load(f)["tool"]["dynamic-metadata"]
    settings = next(e for e in entries if e.get("field") == "version")
    text = (SOURCE_DIR / settings["input"]).read_text()
    m = re.search(settings["regex"], text, re.MULTILINE)
    assert m, f"pyproject.toml's version regex finds nothing in {settings['input']}"
    return m.group("value")


def installed_distribution():
    """minicnn's distribution when the imported package is the copy it installed, else None."""
    try:
        dist = importlib.metadata.distribution("minicnn")
    except importlib.metadata.PackageNotFoundError:
        return None
    files = {Path(dist.locate_file(f)).resolve() for f in dist.files or []}
    return dist if Path(minicnn.__file__).resolve() in files else None


def test_version_is_cmake_project_version():
    assert minicnn.__version__ == cmake_version() == _minicnn.__version__


def test_version_is_the_installed_distributions():
    expected_prefix = os.environ.get("MINICNN_EXPECT_INSTALLED")
    dist = installed_distribution()
    if expected_prefix:
        prefix = Path(expected_prefix).resolve()
        assert prefix in PACKAGE_DIR.parents, (
            f"minicnn was imported from {PACKAGE_DIR}, not from the installation under {prefix}")
        assert dist is not None, f"{minicnn.__file__} belongs to no installed distribution minicnn"
    elif dist is None:
        pytest.skip(f"minicnn imported from {PACKAGE_DIR}, not an installed distribution")
    assert minicnn.__version__ == dist.version == importlib.metadata.version("minicnn")


def test_package_reexports_the_extension():
    assert Path(_minicnn.__file__).parent.resolve() == PACKAGE_DIR
    public = [n for n in dir(_minicnn) if not n.startswith("_")]
    assert public, "the extension has no public names"
    for name in public + ["_input_copies", "__version__"]:
        assert getattr(minicnn, name) is getattr(_minicnn, name), name
    # Tracebacks name the documented classes: minicnn.ArgumentError, not minicnn._minicnn.
    for cls in (minicnn.ArgumentError, minicnn.DeviceError, minicnn.History, minicnn.Sequential):
        assert cls.__module__ == "minicnn", cls
    assert minicnn.__doc__ and minicnn.__doc__ == _minicnn.__doc__
    assert (PACKAGE_DIR / "py.typed").is_file()


# ---- the stubs against the extension -------------------------------------------------------------

def parse_stub():
    path = PACKAGE_DIR / "_minicnn.pyi"
    assert path.is_file(), f"no type stubs beside the package: {path}"
    return ast.parse(path.read_text())


def signature_of(obj, name):
    """The function definition pybind11 writes on the first line of the docstring, as an AST."""
    line = (obj.__doc__ or "").splitlines()[0] if obj.__doc__ else ""
    assert line.startswith(name + "("), f"{name}: no pybind11 signature line in {obj.__doc__!r}"
    # Defaults that are no Python expressions (`<built-in function print>`) become `...`, as in a stub.
    line = re.sub(r"<[^<>]*>", "...", line)
    return ast.parse(f"def {line}: ...").body[0]


def params(fn):
    """[(name, kind, default)] with `self` dropped; defaults as values (`...` stays Ellipsis)."""
    a = fn.args
    out = []
    positional = a.posonlyargs + a.args
    pos_defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for arg, d in zip(positional, pos_defaults):
        out.append((arg.arg, "positional", d))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, "keyword-only", d))
    if out and out[0][0] == "self":
        out = out[1:]
    return [(n, k, None if d is None else ("default", ast.literal_eval(d))) for n, k, d in out]


def stub_members(cls_node):
    methods, props = {}, set()
    for node in cls_node.body:
        if isinstance(node, ast.FunctionDef):
            decorators = {ast.unparse(d) for d in node.decorator_list}
            if "property" in decorators:
                props.add(node.name)
            else:
                methods[node.name] = node
    return methods, props


def test_stubs_cover_the_extension():
    stub = parse_stub()
    functions = {n.name: n for n in stub.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef)}
    variables = {n.target.id for n in stub.body if isinstance(n, ast.AnnAssign)}
    runtime = {n for n in dir(_minicnn) if not (n.startswith("__") and n.endswith("__"))}
    assert runtime == set(functions) | set(classes), (
        f"missing from _minicnn.pyi: {sorted(runtime - set(functions) - set(classes))}; "
        f"in the stubs but not in the extension: {sorted(set(functions) | set(classes) - runtime)}")
    assert "__version__" in variables

    for name, node in functions.items():
        assert params(node) == params(signature_of(getattr(_minicnn, name), name)), name

    for name, node in classes.items():
        cls = getattr(_minicnn, name)
        bases = [ast.unparse(b) for b in node.bases]
        if issubclass(cls, BaseException):
            assert [b.__name__ for b in cls.__bases__] == bases, name
            continue
        methods, props = stub_members(node)
        rt_props = {n for n, v in vars(cls).items() if isinstance(v, property)}
        # (a class without a constructor keeps object's __init__, a slot wrapper: not a method)
        rt_methods = {n for n, v in vars(cls).items()
                      if callable(v) and not isinstance(v, (type, types.WrapperDescriptorType))
                      and (not n.startswith("_") or n == "__init__")}
        assert rt_props == props, f"{name}: properties {sorted(rt_props)} vs stubs {sorted(props)}"
        assert rt_methods == set(methods), (
            f"{name}: methods {sorted(rt_methods)} vs stubs {sorted(methods)}")
        for m, m_node in methods.items():
            assert params(m_node) == params(signature_of(getattr(cls, m), m)), f"{name}.{m}"


def test_import_loads_no_nccl():
    # NCCL is loaded only when multi-GPU training starts (cuda/nccl/allreduce_nccl.cpp): PyTorch's
    # CUDA wheels bring their own, newer libnccl.so.2, and an older one loaded by `import minicnn`
    # first made `import torch` fail with an undefined symbol.
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc/self/maps on this system")
    loaded = {line.split()[-1] for line in maps.read_text().splitlines() if "/" in line}
    assert _minicnn.__file__ in loaded or any("_minicnn" in p for p in loaded)
    assert not [p for p in loaded if "libnccl" in os.path.basename(p)]
