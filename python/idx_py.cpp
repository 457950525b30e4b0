// python/idx_py.cpp — minicnn's IDX readers (minicnn/idx.h) for Python: MNIST / Fashion-MNIST
// files, raw or gzip, validated by the C++ reader. load_idx scales the 8-bit images to float32
// [0, 1] (unit_images: detail::pixel_to_unit, what training sees) and hands that Tensor over
// without a copy (its storage through a capsule); the raw uint8 readers copy once out of
// std::vector.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/idx.h"
#include "py_util.h"

namespace py = pybind11;
using namespace minicnn;
using namespace minicnn::py_util;

namespace {

py::tuple py_load_idx(const std::string& dir, const std::string& prefix, bool expect_28x28) {
    Dataset ds;
    {
        py::gil_scoped_release nogil;
        ds = load_idx_dataset(dir, prefix, expect_28x28);
    }
    py::array_t<std::int32_t> labels(static_cast<py::ssize_t>(ds.labels.size()));
    std::copy(ds.labels.begin(), ds.labels.end(), labels.mutable_data());
    Tensor images;
    {
        py::gil_scoped_release nogil;
        images = unit_images(ds);  // the float32 copy Python gets; the 8-bit one goes
        ds.pixels = {};
    }
    return py::make_tuple(to_numpy(std::move(images)), labels);
}

}  // namespace

void bind_idx(py::module_& m) {
    m.def("load_idx", &py_load_idx, py::arg("directory"), py::arg("prefix") = "train",
          py::arg("expect_28x28") = true,
          R"doc(Loads <directory>/<prefix>-images-idx3-ubyte[.gz] and -labels-idx1-ubyte[.gz].

Returns (images, labels): images (n, rows, cols, 1) float32 scaled to [0, 1], labels (n,) int32.)doc");
    m.def(
        "read_idx_images",
        [](const std::string& path) {
            IdxImages im = read_idx_images(path);
            py::array_t<std::uint8_t> out({im.count, im.rows, im.cols});
            std::copy(im.pixels.begin(), im.pixels.end(), out.mutable_data());
            return out;
        },
        py::arg("path"), "An IDX image file (raw or gzip) as uint8 (count, rows, cols).");
    m.def(
        "read_idx_labels",
        [](const std::string& path) {
            std::vector<std::uint8_t> l = read_idx_labels(path);
            py::array_t<std::uint8_t> out(static_cast<py::ssize_t>(l.size()));
            std::copy(l.begin(), l.end(), out.mutable_data());
            return out;
        },
        py::arg("path"), "An IDX label file (raw or gzip) as uint8 (count,).");
}
