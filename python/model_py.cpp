// python/model_py.cpp — the LeNet-5 side of the Python module: a Keras-like `Sequential` (build,
// summary, fit with a per-epoch History, evaluate, predict, train_on_batch, get/set_weights,
// save/load, save_weights/load_weights (safetensors), export (ONNX), model_from_json) over
// minicnn::Sequential and minicnn::Trainer.
//
// A Python Sequential owns one minicnn::Sequential (architecture + host copy of the weights) and,
// from the first call that needs it, one Trainer on the model's device (engine copy of the weights,
// Adam state, epochs done). The host copy is refreshed from the engine (pull_params) before it is
// read (get_weights, save) and pushed to it after it is written (set_weights). Layers can only be
// added before the first training step.
//
// Data: images are float32, (n, *input_shape), or (n, h, w) for a one-channel input; float64 is
// converted (one copy), integer images are refused (they want scaling). Labels are integer class
// indices (n,) or one-hot rows (n, classes), as Keras's to_categorical gives. The GIL is released
// while the trainer runs; its progress callback takes the GIL back to print and to check for
// Ctrl-C, which stops training with KeyboardInterrupt.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/checkpoint.h"
#include "minicnn/export.h"
#include "minicnn/keras.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"
#include "py_util.h"

namespace py = pybind11;
using namespace minicnn;
using namespace minicnn::py_util;

namespace {

// Keras's History: .history maps metric names to per-epoch lists, .epoch lists 0-based epochs.
struct PyHistory {
    py::dict history;
    py::list epoch;
    py::dict params;
};

Activation parse_activation_arg(const py::handle& obj, const char* op) {
    if (obj.is_none()) return Activation::linear;
    const std::string s = str_arg(obj, op, "activation (\"relu\", \"tanh\", ... or None)");
    return prefixed(op, [&] { return parse_activation(s); });
}

// Labelled data as the trainer reads it: float32 images and int32 labels, each the caller's buffer
// when it already is in that form, else a converted copy held here.
struct Batch {
    py::array images;  // (n, *input_shape) float32, C-contiguous
    py::array labels;  // (n) int32, C-contiguous; only when `labelled`
    bool labelled = false;
    std::int64_t n = 0;
    DataView view() const {
        return {static_cast<const float*>(images.data()),
                labelled ? static_cast<const std::int32_t*>(labels.data()) : nullptr, n};
    }
};

py::array images_arg(const py::handle& obj, const Shape& input_shape, const char* op,
                     const char* name) {
    py::array a = as_array(obj, op, name);
    const py::dtype dt = a.dtype();
    MINICNN_REQUIRE(dt.kind() == 'f' && (dt.itemsize() == 4 || dt.itemsize() == 8),
                    op << ": " << name
                       << " must be a float32 (or float64) array of images, got dtype "
                       << py_str(dt) << " (for 8-bit pixels use x.astype(np.float32) / 255)");
    // (n, h, w) for a (h, w, 1) input gains its channel axis.
    Shape shape(a.shape(), a.shape() + a.ndim());
    const int rank = static_cast<int>(input_shape.size());
    const bool add_channel = a.ndim() == rank && rank >= 2 && input_shape.back() == 1;
    Shape got(shape.begin() + std::min<std::size_t>(1, shape.size()), shape.end());
    if (add_channel) got.push_back(1);
    MINICNN_REQUIRE(
        a.ndim() >= 1 && got == input_shape,
        op << ": " << name << " must have shape (n, " << shape_str(input_shape).substr(1)
           << (input_shape.back() == 1 && rank >= 2 ? " (or (n, h, w) for one channel)" : "")
           << ", got " << shape_str(shape));
    py::array out = contiguous(a, py::dtype::of<float>());
    if (add_channel) {
        std::vector<py::ssize_t> dims(shape.begin(), shape.end());
        dims.push_back(1);
        out = out.attr("reshape")(py::tuple(py::cast(dims)));
    }
    return out;
}

// Class indices (n) of any integer dtype, or one-hot rows (n, classes).
py::array labels_arg(const py::handle& obj, std::int64_t n, std::int64_t classes, const char* op,
                     const char* name) {
    py::array a = as_array(obj, op, name);
    const char kind = a.dtype().kind();
    if (a.ndim() == 1 && (kind == 'i' || kind == 'u')) {
        MINICNN_REQUIRE(a.shape(0) == n, op << ": " << name << " holds " << a.shape(0)
                                            << " labels for " << n << " images");
        if (n > 0) {  // values beyond int32 would wrap silently in the conversion
            const long long lo = a.attr("min")().cast<long long>();
            const long long hi = a.attr("max")().cast<long long>();
            MINICNN_REQUIRE(lo >= 0 && hi < classes,
                            op << ": " << name << " must hold class indices in [0, " << classes
                               << "), found values from " << lo << " to " << hi);
        }
        return contiguous(a, py::dtype::of<std::int32_t>());
    }
    MINICNN_REQUIRE(a.ndim() == 2 && (kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b'),
                    op << ": " << name
                       << " must be integer class indices (n,) or one-hot rows (n, classes), got "
                          "an array of shape "
                       << shape_str(Shape(a.shape(), a.shape() + a.ndim())) << " and dtype "
                       << py_str(a.dtype()));
    MINICNN_REQUIRE(a.shape(0) == n && a.shape(1) == classes,
                    op << ": one-hot " << name << " must have shape (" << n << ", " << classes
                       << "), got " << shape_str(Shape(a.shape(), a.shape() + a.ndim())));
    py::array_t<double, py::array::c_style | py::array::forcecast> oh(a);
    py::array_t<std::int32_t> labels(n);
    auto src = oh.unchecked<2>();
    auto dst = labels.mutable_unchecked<1>();
    for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t hot = -1, ones = 0;
        for (std::int64_t k = 0; k < classes; ++k) {
            const double v = src(i, k);
            MINICNN_REQUIRE(v == 0.0 || v == 1.0, op << ": one-hot " << name << " row " << i
                                                     << " holds " << v << " (expected 0 or 1)");
            if (v == 1.0) hot = k, ++ones;
        }
        MINICNN_REQUIRE(ones == 1, op << ": one-hot " << name << " row " << i << " holds " << ones
                                      << " ones (expected exactly one)");
        dst(i) = static_cast<std::int32_t>(hot);
    }
    return std::move(labels);
}

class PyModel {
public:
    PyModel(Sequential model, Device device) : model_(std::move(model)), device_(device) {}

    Sequential& model() { return model_; }
    const Device& device() const { return device_; }
    bool has_trainer() const { return static_cast<bool>(trainer_); }

    Trainer& trainer() {
        if (!trainer_) trainer_ = std::make_unique<Trainer>(model_, device_);
        return *trainer_;
    }

    // Layers: only before training starts (the trainer's arenas and Adam state have the model's
    // layout). An untrained trainer (one that only evaluated, predicted or saved) is dropped.
    PyModel& add(const std::function<void(Sequential&)>& f, const char* what) {
        if (trainer_) {
            MINICNN_REQUIRE(trainer_->adam_steps() == 0 && trainer_->epochs_done() == 0,
                            what << ": layers cannot be added to a model that has been trained");
            trainer_->pull_params();
            trainer_.reset();
        }
        f(model_);
        return *this;
    }

    // The host copy of the weights, current.
    const std::vector<float>& params() {
        if (trainer_) trainer_->pull_params();
        return model_.params();
    }
    void params_changed() {
        if (trainer_) trainer_->push_params();
    }

    Batch data(const py::handle& x, const py::handle& y, const char* op) {
        Batch b;
        b.images = images_arg(x, model_.input_shape(), op, "x");
        b.n = b.images.shape(0);
        if (!y.is_none()) {
            b.labels = labels_arg(y, b.n, shape_numel(model_.output_shape()), op, "y");
            b.labelled = true;
        }
        return b;
    }

private:
    Sequential model_;
    Device device_;
    std::unique_ptr<Trainer> trainer_;
};

// Runs inside the trainer with the GIL released: takes it back to print and to look for Ctrl-C.
void check_signals() {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

void print_line(const std::string& s, bool newline) {
    py::gil_scoped_acquire gil;
    py::print(s, py::arg("end") = newline ? "\n" : "", py::arg("flush") = true);
}

PyHistory py_fit(PyModel& self, py::object x, py::object y, int batch_size, int epochs, int verbose,
                 py::object validation_data, bool shuffle, std::uint64_t seed, double learning_rate,
                 double beta_1, double beta_2, double epsilon, py::object csv_path,
                 py::object checkpoint_path, bool cuda_graphs) {
    const char* op = "fit";
    MINICNN_REQUIRE(epochs >= 0, "fit: epochs must be >= 0, got " << epochs);
    MINICNN_REQUIRE(!y.is_none(), "fit: y (the labels) is required");
    Batch train = self.data(x, y, op);
    Batch val;
    if (!validation_data.is_none()) {
        MINICNN_REQUIRE(
            py::isinstance<py::sequence>(validation_data) && py::len(validation_data) == 2,
            "fit: validation_data must be a pair (x_val, y_val), got " << py_repr(validation_data));
        const py::object yv = validation_data[py::int_(1)];
        MINICNN_REQUIRE(!yv.is_none(), "fit: validation_data needs labels, got (x_val, None)");
        val = self.data(validation_data[py::int_(0)], yv, "fit: validation_data");
    }
    const bool has_val = val.labelled;

    Trainer& tr = self.trainer();
    const int first = tr.epochs_done();
    FitOptions opt;
    opt.epochs = first + epochs;
    opt.batch_size = batch_size;
    opt.shuffle = shuffle;
    opt.seed = seed;
    opt.cuda_graphs = cuda_graphs;
    opt.adam.lr = static_cast<float>(learning_rate);
    opt.adam.beta1 = static_cast<float>(beta_1);
    opt.adam.beta2 = static_cast<float>(beta_2);
    opt.adam.eps = static_cast<float>(epsilon);
    opt.progress_interval_s = 0.25;
    opt.metrics_path = csv_path.is_none() ? std::string() : py_str(csv_path);
    opt.checkpoint_path = checkpoint_path.is_none() ? std::string() : py_str(checkpoint_path);
    // Progress lines rewrite themselves with '\r': only on a terminal.
    const bool ticks =
        verbose == 1 && py::module_::import("sys").attr("stdout").attr("isatty")().cast<bool>();

    opt.on_progress = [ticks](const Progress& p) {
        check_signals();
        if (ticks) print_line("\r" + progress_line(p, true) + "\033[K", false);
    };
    opt.on_epoch_end = [&](const EpochLog& e) {
        if (verbose != 0) print_line((ticks ? "\r\033[K" : "") + epoch_line(e, opt.epochs), true);
        check_signals();
    };

    History h;
    {
        py::gil_scoped_release nogil;
        const DataView vv = has_val ? val.view() : DataView{};
        h = tr.fit(train.view(), has_val ? &vv : nullptr, opt);
    }
    PyHistory out;
    py::list loss, acc, val_loss, val_acc, secs, ips;
    for (const EpochLog& e : h.epochs) {
        out.epoch.append(e.epoch - 1);
        loss.append(e.loss);
        acc.append(e.accuracy);
        val_loss.append(e.val_loss);
        val_acc.append(e.val_accuracy);
        secs.append(e.seconds);
        ips.append(e.images_per_second);
    }
    out.history["loss"] = loss;
    out.history["accuracy"] = acc;
    if (has_val) {
        out.history["val_loss"] = val_loss;
        out.history["val_accuracy"] = val_acc;
    }
    out.history["seconds"] = secs;
    out.history["images_per_second"] = ips;
    out.params["epochs"] = opt.epochs;
    out.params["batch_size"] = batch_size;
    out.params["steps"] = h.epochs.empty() ? 0 : h.epochs.back().steps;
    out.params["samples"] = train.n;
    out.params["device"] = tr.device_name();
    return out;
}

py::tuple py_evaluate(PyModel& self, py::object x, py::object y, int batch_size) {
    MINICNN_REQUIRE(!y.is_none(), "evaluate: y (the labels) is required");
    Batch b = self.data(x, y, "evaluate");
    Trainer& tr = self.trainer();
    EvalResult r;
    {
        py::gil_scoped_release nogil;
        r = tr.evaluate(b.view(), batch_size);
    }
    return py::make_tuple(r.loss, r.accuracy);
}

py::array py_predict(PyModel& self, py::object x, int batch_size) {
    MINICNN_REQUIRE(batch_size > 0, "predict: batch_size must be > 0, got " << batch_size);
    Batch b = self.data(x, py::none(), "predict");
    MINICNN_REQUIRE(b.n > 0, "predict: expected at least one image, got 0");
    Trainer& tr = self.trainer();
    Tensor out;
    {
        py::gil_scoped_release nogil;
        out = tr.predict(b.view().images, b.n, batch_size);
    }
    return to_numpy(std::move(out));
}

double py_train_on_batch(PyModel& self, py::object x, py::object y, double learning_rate) {
    Batch b = self.data(x, y, "train_on_batch");
    Trainer& tr = self.trainer();
    AdamConfig cfg;
    cfg.lr = static_cast<float>(learning_rate);
    py::gil_scoped_release nogil;
    return tr.train_step(b.view().images, b.view().labels, b.n, cfg);
}

// Keras order: per layer, its parameter arrays (kernel, then bias).
py::list py_get_weights(PyModel& self) {
    const std::vector<float>& p = self.params();
    Sequential& m = self.model();
    py::list out;
    for (std::size_t i = 0; i < m.size(); ++i) {
        std::int64_t off = m.param_offset(i);
        for (const ParamInfo& info : m.layer(i).param_info()) {
            Tensor t(info.shape, DType::f32);
            std::copy(p.begin() + off, p.begin() + off + t.numel(), t.data<float>());
            off += t.numel();
            out.append(to_numpy(std::move(t)));
        }
    }
    return out;
}

void py_set_weights(PyModel& self, const py::sequence& weights) {
    Sequential& m = self.model();
    self.params();  // bring the host copy up to date before overwriting it
    std::vector<float>& p = m.params();
    std::vector<float> next = p;
    std::size_t k = 0;
    const std::size_t given = py::len(weights);
    for (std::size_t i = 0; i < m.size(); ++i) {
        std::int64_t off = m.param_offset(i);
        for (const ParamInfo& info : m.layer(i).param_info()) {
            MINICNN_REQUIRE(k < given, "set_weights: expected more arrays, got " << given);
            py::array a = as_array(weights[k], "set_weights", "weights");
            const Shape s(a.shape(), a.shape() + a.ndim());
            MINICNN_REQUIRE(s == info.shape, "set_weights: array "
                                                 << k << " (" << m.layer(i).name << " " << info.name
                                                 << ") must have shape " << shape_str(info.shape)
                                                 << ", got " << shape_str(s));
            float_dtype(a, "set_weights", "weights");
            Input in = wrap(a, DType::f32);
            const float* src = static_cast<const float*>(in.view.data);
            std::copy(src, src + shape_numel(s), next.begin() + off);
            off += shape_numel(s);
            ++k;
        }
    }
    MINICNN_REQUIRE(k == given,
                    "set_weights: the model has " << k << " weight arrays, got " << given);
    p = std::move(next);
    self.params_changed();
}

std::unique_ptr<PyModel> py_load_model(const std::string& path, const py::handle& device) {
    const Device dev = parse_device(device, "load_model");
    Checkpoint ck = load_checkpoint(path);
    auto m = std::make_unique<PyModel>(model_from_checkpoint(ck), dev);
    m->trainer().load_checkpoint_state(ck);  // Adam moments, epochs done: fit() resumes
    return m;
}

}  // namespace

void bind_model(py::module_& m) {
    py::class_<PyHistory>(m, "History", "What fit() returns, as Keras's History.")
        .def_readonly("history", &PyHistory::history,
                      "dict: 'loss', 'accuracy', 'val_loss', 'val_accuracy' (with validation "
                      "data), 'seconds', 'images_per_second' -> one value per epoch")
        .def_readonly("epoch", &PyHistory::epoch, "the epochs of this fit, 0-based")
        .def_readonly("params", &PyHistory::params, "epochs, batch_size, steps, samples, device")
        .def("__repr__", [](const PyHistory& h) {
            return "<minicnn.History epochs=" + py_str(h.epoch) +
                   " keys=" + py_str(py::list(h.history.attr("keys")())) + ">";
        });

    py::class_<PyModel>(m, "Sequential", R"doc(A stack of layers trained with Adam on categorical
cross-entropy: the Keras model of the exercise's LeNet-5 task, backed by minicnn's trainer.

Sequential(input_shape=(28, 28, 1), name="sequential", *, device="auto"); then add layers with
conv2d / maxpool2d / avgpool2d / flatten / dense / activation / dropout (each returns the model). The last
layer must end in a softmax to fit or evaluate. Weights start as zeros: call init_weights(seed)
(He normal kernels, zero biases), or use minicnn.lenet5().)doc")
        .def(py::init([](py::object input_shape, const std::string& name, py::handle device) {
                 py::sequence seq = py::reinterpret_borrow<py::sequence>(input_shape);
                 Shape s;
                 for (py::handle v : seq) s.push_back(v.cast<std::int64_t>());
                 return std::make_unique<PyModel>(Sequential(s, name),
                                                  parse_device(device, "Sequential"));
             }),
             py::arg("input_shape") = py::make_tuple(28, 28, 1), py::arg("name") = "sequential",
             py::kw_only(), py::arg("device") = "auto")
        .def(
            "conv2d",
            [](PyModel& self, int filters, py::object kernel_size, py::object padding,
               py::object activation, py::object strides) -> PyModel& {
                const char* op = "conv2d";
                const Window k = parse_window(kernel_size, op);
                const Padding p = parse_padding(padding, op);
                const Activation a = parse_activation_arg(activation, op);
                const Stride s = parse_stride(strides, op);
                return self.add([&](Sequential& m) { m.conv2d(filters, k, p, a, s); }, op);
            },
            py::arg("filters"), py::arg("kernel_size"), py::arg("padding") = "same",
            py::arg("activation") = py::none(), py::arg("strides") = py::make_tuple(1, 1),
            py::return_value_policy::reference_internal,
            "Conv2D: filters of kernel_size (kh, kw), padding \"same\"/\"valid\"/(ph, pw).")
        .def(
            "maxpool2d",
            [](PyModel& self, py::object pool_size, py::object strides) -> PyModel& {
                const Window w = parse_window(pool_size, "maxpool2d");
                const Stride s =
                    strides.is_none() ? Stride{w.h, w.w} : parse_stride(strides, "maxpool2d");
                return self.add([&](Sequential& m) { m.maxpool2d(w, s); }, "maxpool2d");
            },
            py::arg("pool_size") = py::make_tuple(2, 2), py::arg("strides") = py::none(),
            py::return_value_policy::reference_internal,
            "MaxPool2D (strides default to pool_size).")
        .def(
            "avgpool2d",
            [](PyModel& self, py::object pool_size, py::object strides) -> PyModel& {
                const Window w = parse_window(pool_size, "avgpool2d");
                const Stride s =
                    strides.is_none() ? Stride{w.h, w.w} : parse_stride(strides, "avgpool2d");
                return self.add([&](Sequential& m) { m.avgpool2d(w, s); }, "avgpool2d");
            },
            py::arg("pool_size") = py::make_tuple(2, 2), py::arg("strides") = py::none(),
            py::return_value_policy::reference_internal, "AveragePooling2D.")
        .def(
            "flatten",
            [](PyModel& self) -> PyModel& {
                return self.add([](Sequential& m) { m.flatten(); }, "flatten");
            },
            py::return_value_policy::reference_internal)
        .def(
            "dense",
            [](PyModel& self, int units, py::object activation) -> PyModel& {
                const Activation a = parse_activation_arg(activation, "dense");
                return self.add([&](Sequential& m) { m.dense(units, a); }, "dense");
            },
            py::arg("units"), py::arg("activation") = py::none(),
            py::return_value_policy::reference_internal)
        .def(
            "activation",
            [](PyModel& self, py::object activation) -> PyModel& {
                const Activation a = parse_activation_arg(activation, "activation");
                return self.add([&](Sequential& m) { m.activation(a); }, "activation");
            },
            py::arg("activation"), py::return_value_policy::reference_internal)
        .def(
            "dropout",
            [](PyModel& self, float rate) -> PyModel& {
                return self.add([&](Sequential& m) { m.dropout(rate); }, "dropout");
            },
            py::arg("rate"), py::return_value_policy::reference_internal,
            "Dropout: in fit() and train_on_batch() each unit is dropped with probability rate "
            "(in [0, 1)) and the kept ones are scaled by 1 / (1 - rate), drawn from fit's seed and "
            "the step; the identity in evaluate() and predict().")
        .def(
            "init_weights",
            [](PyModel& self, std::uint64_t seed) {
                self.model().init_params(seed);
                self.params_changed();
            },
            py::arg("seed") = 0,
            "He normal kernels (truncated at 2 stddev), zero biases; the same seed gives the same "
            "weights.")
        .def(
            "summary", [](PyModel& self, py::object print_fn) { print_fn(self.model().summary()); },
            py::arg("print_fn") = py::module_::import("builtins").attr("print"),
            "Prints a Keras-like table (layers, output shapes, parameter counts) with print_fn.")
        .def("count_params", [](PyModel& self) { return self.model().param_count(); })
        .def_property_readonly("name", [](PyModel& self) { return self.model().name(); })
        .def_property_readonly(
            "input_shape",
            [](PyModel& self) { return py::tuple(py::cast(self.model().input_shape())); })
        .def_property_readonly(
            "output_shape",
            [](PyModel& self) { return py::tuple(py::cast(self.model().output_shape())); })
        .def_property_readonly(
            "layers",
            [](PyModel& self) {
                py::list out;
                for (std::size_t i = 0; i < self.model().size(); ++i)
                    out.append(self.model().layer(i).spec());
                return out;
            },
            "One spec line per layer.")
        .def_property_readonly(
            "device",
            [](PyModel& self) {
                return self.has_trainer() ? self.trainer().device_name() : self.device().str();
            },
            "The device asked for, or, once the model has run, the engine's description.")
        .def_property_readonly(
            "epochs_done",
            [](PyModel& self) { return self.has_trainer() ? self.trainer().epochs_done() : 0; })
        .def("fit", &py_fit, py::arg("x"), py::arg("y"), py::arg("batch_size") = 32,
             py::arg("epochs") = 1, py::arg("verbose") = 1, py::arg("validation_data") = py::none(),
             py::arg("shuffle") = true, py::kw_only(), py::arg("seed") = 1,
             py::arg("learning_rate") = 1e-3, py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
             py::arg("epsilon") = 1e-7, py::arg("csv_path") = py::none(),
             py::arg("checkpoint_path") = py::none(), py::arg("cuda_graphs") = true,
             R"doc(Trains for `epochs` more epochs with Adam; returns a History.

x: images (n, *input_shape) float32 (float64 is converted; (n, h, w) for one channel).
y: class indices (n,) or one-hot rows (n, classes). validation_data: (x_val, y_val), evaluated
after each epoch. Shuffling: epoch e's permutation comes from `seed` and e. verbose: 0 silent,
1 progress and one line per epoch, 2 one line per epoch. csv_path: one row per epoch
(epoch,loss,accuracy,val_loss,val_accuracy,seconds,images_per_second), the minicnn program's
--metrics file. checkpoint_path: a checkpoint (as save()) written after every epoch, as the
program's --checkpoint. cuda_graphs: on the
GPU, replay each training step as a CUDA graph (False launches every kernel; same results;
ignored on the CPU). Ctrl-C stops training with KeyboardInterrupt.)doc")
        .def("evaluate", &py_evaluate, py::arg("x"), py::arg("y"), py::arg("batch_size") = 256,
             "(loss, accuracy) over (x, y).")
        .def("predict", &py_predict, py::arg("x"), py::arg("batch_size") = 256,
             "Softmax outputs (n, classes), float32.")
        .def("train_on_batch", &py_train_on_batch, py::arg("x"), py::arg("y"),
             py::arg("learning_rate") = 1e-3, "One Adam step on (x, y); returns the batch's loss.")
        .def("get_weights", &py_get_weights,
             "The weights as NumPy arrays, per layer kernel then bias (Keras order).")
        .def("set_weights", &py_set_weights, py::arg("weights"))
        .def(
            "save",
            [](PyModel& self, const std::string& path) {
                save_training_checkpoint(path, self.trainer().to_checkpoint());
            },
            py::arg("path"),
            "Writes a checkpoint (architecture, weights, Adam state, epochs done) atomically.")
        .def(
            "save_weights",
            [](PyModel& self, const std::string& path) {
                self.params();  // the host copy, current
                save_weights(self.model(), path);
            },
            py::arg("path"),
            "Writes the weights as safetensors in PyTorch's layouts: tensors '<layer>.weight' and "
            "'<layer>.bias' (the summary's layer names) that a torch.nn.Module with those "
            "attributes takes with load_state_dict(..., strict=True) (docs/export.md).")
        .def(
            "load_weights",
            [](PyModel& self, const std::string& path) {
                self.params();  // the host copy, current
                load_weights(self.model(), path);
                self.params_changed();
            },
            py::arg("path"),
            "Reads weights written by save_weights() (or a PyTorch state_dict saved with "
            "safetensors): every tensor present with its shape and dtype float32, no other; "
            "ValueError naming the tensor otherwise, and the weights are unchanged.")
        .def(
            "export",
            [](PyModel& self, const std::string& path) {
                self.params();  // the host copy, current
                export_model(self.model(), path);
            },
            py::arg("path"),
            "path.onnx: the model as ONNX (opset 17, float32 NHWC input with a free batch "
            "dimension, the model's output, softmax for a classifier); path.safetensors: as "
            "save_weights(). Another extension raises ValueError.")
        .def_static("load", &py_load_model, py::arg("path"), py::arg("device") = "auto",
                    "A model from a checkpoint written by save() (or minicnn's trainer); fit() "
                    "resumes where it stopped.")
        .def("__repr__", [](PyModel& self) {
            return "<minicnn.Sequential '" + self.model().name() + "' " +
                   shape_str(self.model().input_shape()) + " -> " +
                   shape_str(self.model().output_shape()) + ", " +
                   std::to_string(self.model().param_count()) + " parameters>";
        });

    m.def("load_model", &py_load_model, py::arg("path"), py::arg("device") = "auto",
          "A model from a checkpoint written by Sequential.save() (Keras's load_model).");
    m.def(
        "model_from_json",
        [](const std::string& text, std::uint64_t seed, py::handle device) {
            KerasOptions o;
            o.seed = seed;
            o.source = "model_from_json";
            return std::make_unique<PyModel>(model_from_keras_json(text, o),
                                             parse_device(device, "model_from_json"));
        },
        py::arg("text"), py::arg("seed") = 0, py::arg("device") = "auto",
        "A Sequential from the JSON of Keras's model.to_json() (Keras 2 or 3; Keras's "
        "model_from_json), initialised from `seed` as its kernel_initializer says. What minicnn "
        "cannot honour raises "
        "ArgumentError naming the layer and the field (docs/training.md).");
    m.def(
        "lenet5",
        [](std::uint64_t seed, py::handle device) {
            return std::make_unique<PyModel>(lenet5(seed), parse_device(device, "lenet5"));
        },
        py::arg("seed") = 0, py::arg("device") = "auto",
        "The exercise's LeNet-5 (61,706 parameters), He-initialised from `seed`.");
}
