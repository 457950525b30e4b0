// tools/cli.cpp — the `minicnn` program's commands (tools/cli.h): argument parsing, data loading,
// the progress display and JSON summaries. The per-epoch lines, the metrics CSV and the checkpoint
// after each epoch are the library's (Trainer::fit, minicnn/trainer.h).
//
// Parsing is strict: every option is known to its command, every value is checked in full ("12x" is
// not 12), and the first problem ends the program with one line that names the argument.
#include "cli.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "minicnn/checkpoint.h"
#include "minicnn/error.h"
#include "minicnn/idx.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"

namespace minicnn {

namespace {

const char* const kDefaultData = "/usr/share/datasets/fashion-mnist";

// A usage error: exit status 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

const char* const kMainHelp =
    "usage: minicnn <command> [options]\n"
    "\n"
    "Train and use the exercise's LeNet-5 on MNIST-format (IDX) data.\n"
    "\n"
    "commands:\n"
    "  train      train LeNet-5 (Adam), validate after each epoch, evaluate on the test set\n"
    "  evaluate   loss and accuracy of a checkpoint on the test set\n"
    "  predict    class and probabilities of test images\n"
    "\n"
    "Run 'minicnn <command> --help' for the options of a command.\n";

const char* const kTrainHelp =
    "usage: minicnn train [options]\n"
    "\n"
    "Trains LeNet-5 on <data>/train-* (the last --validation images are held out for validation)\n"
    "and reports loss and accuracy on <data>/t10k-*.\n"
    "\n"
    "options:\n"
    "  --data DIR          IDX directory (default /usr/share/datasets/fashion-mnist)\n"
    "  --epochs N          train until N epochs are done (default 5; 0 only evaluates)\n"
    "  --batch-size B      batch size, > 0 (default 32)\n"
    "  --lr X              Adam learning rate, finite and > 0 (default 0.001)\n"
    "  --seed S            seed of the initial weights and the shuffling (default 1)\n"
    "  --device D          auto, cpu, cuda or cuda:N (default auto)\n"
    "  --no-cuda-graphs    GPU: launch each kernel of a training step instead of replaying the\n"
    "                      step as a CUDA graph (same results; for profiling and debugging)\n"
    "  --checkpoint FILE   write a checkpoint (weights, Adam state, epoch, RNG) after every epoch\n"
    "  --resume            continue from --checkpoint when it exists\n"
    "  --metrics FILE.csv  one row per epoch\n"
    "  --json FILE         a summary of the run (test accuracy and loss, throughput, ...)\n"
    "  --validation N      validation images taken off the end of the training set (default "
    "10000)\n"
    "  --limit N           use only the first N training images (before the validation split)\n"
    "  -h, --help          this help\n";

const char* const kEvaluateHelp =
    "usage: minicnn evaluate --checkpoint FILE [options]\n"
    "\n"
    "Loss and accuracy of the checkpoint's model on <data>/t10k-*.\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE   a checkpoint written by 'minicnn train' (required)\n"
    "  --data DIR          IDX directory (default /usr/share/datasets/fashion-mnist)\n"
    "  --device D          auto, cpu, cuda or cuda:N (default auto)\n"
    "  --json FILE         write the result as JSON\n"
    "  -h, --help          this help\n";

const char* const kPredictHelp =
    "usage: minicnn predict --checkpoint FILE --index I [I ...] [options]\n"
    "\n"
    "Predicted class and class probabilities of test images <data>/t10k-* number I, ...\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE   a checkpoint written by 'minicnn train' (required)\n"
    "  --index I [I ...]   test image indices, 0-based (required)\n"
    "  --data DIR          IDX directory (default /usr/share/datasets/fashion-mnist)\n"
    "  --device D          auto, cpu, cuda or cuda:N (default auto)\n"
    "  -h, --help          this help\n";

struct OptionSpec {
    bool takes_value;
    bool multi;  // takes one or more values (until the next option)
};

// Parsed options: name -> values ("" for flags).
struct Args {
    std::string command;
    std::map<std::string, std::vector<std::string>> opts;
    bool help = false;

    bool has(const std::string& k) const { return opts.count(k) != 0; }
    std::string get(const std::string& k, const std::string& def) const {
        auto it = opts.find(k);
        return it == opts.end() ? def : it->second.back();
    }
};

Args parse_args(const std::string& command, const std::vector<std::string>& argv,
                const std::map<std::string, OptionSpec>& spec) {
    Args a;
    a.command = command;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            a.help = true;
            continue;
        }
        std::string name = arg, inline_value;
        bool has_inline = false;
        if (arg.rfind("--", 0) == 0) {
            const auto eq = arg.find('=');
            if (eq != std::string::npos) {
                name = arg.substr(0, eq);
                inline_value = arg.substr(eq + 1);
                has_inline = true;
            }
        }
        auto it = spec.find(name);
        if (it == spec.end()) {
            if (arg.rfind("-", 0) == 0) {
                throw UsageError("unknown option '" + name + "' (see 'minicnn " + command +
                                 " --help')");
            }
            throw UsageError("unexpected argument '" + arg + "' (see 'minicnn " + command +
                             " --help')");
        }
        if (!it->second.takes_value) {
            if (has_inline) throw UsageError("option " + name + " takes no value");
            a.opts[name].push_back("");
            continue;
        }
        std::vector<std::string>& values = a.opts[name];
        if (!it->second.multi) values.clear();  // the last occurrence wins
        if (has_inline) {
            values.push_back(inline_value);
            continue;
        }
        // A value is the next argument, unless it looks like an option ("-5" is a value).
        auto is_value = [&](const std::string& s) { return !(s.rfind("--", 0) == 0 || s == "-h"); };
        if (i + 1 >= argv.size() || !is_value(argv[i + 1])) {
            throw UsageError("option " + name + " needs a value");
        }
        values.push_back(argv[++i]);
        while (it->second.multi && i + 1 < argv.size() && is_value(argv[i + 1])) {
            values.push_back(argv[++i]);
        }
    }
    return a;
}

// max_value: the largest value the option's type holds (an int option must not wrap).
long long parse_int(const std::string& name, const std::string& v, long long min_value,
                    const char* what, long long max_value = std::numeric_limits<long long>::max()) {
    errno = 0;
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno == ERANGE || x < min_value) {
        throw UsageError(name + " must be " + what + ", got '" + v + "'");
    }
    if (x > max_value) {
        throw UsageError(name + " must be at most " + std::to_string(max_value) + ", got '" + v +
                         "'");
    }
    return x;
}

double parse_positive_double(const std::string& name, const std::string& v) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(x) || x <= 0.0) {
        throw UsageError(name + " must be a finite number > 0, got '" + v + "'");
    }
    return x;
}

Device parse_device(const std::string& v) {
    try {
        return Device::parse(v);
    } catch (const ArgumentError&) {
        throw UsageError("--device must be auto, cpu, cuda or cuda:N, got '" + v + "'");
    }
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '"':
                o += "\\\"";
                break;
            case '\\':
                o += "\\\\";
                break;
            case '\n':
                o += "\\n";
                break;
            case '\t':
                o += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    o += buf;
                } else {
                    o += c;
                }
        }
    }
    return o;
}

std::string json_num(double v) {
    if (!std::isfinite(v)) return "null";
    std::ostringstream os;
    os << std::setprecision(10) << v;
    return os.str();
}

void write_file(const std::string& path, const std::string& text, const char* what) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(std::string("cannot open ") + what + " file " + path + " for writing");
    f << text;
    if (!f.flush()) throw Error(std::string("failed writing ") + what + " file " + path);
}

DataView view_of(const Dataset& d) {
    return {d.images.data<float>(), d.labels.data(), d.size()};
}

int cmd_train(const Args& a, std::ostream& out) {
    const std::string data = a.get("--data", kDefaultData);
    const int int_max = std::numeric_limits<int>::max();
    const int epochs =
        int(parse_int("--epochs", a.get("--epochs", "5"), 0, "an integer >= 0", int_max));
    const int batch =
        int(parse_int("--batch-size", a.get("--batch-size", "32"), 1, "an integer > 0", int_max));
    const double lr = parse_positive_double("--lr", a.get("--lr", "0.001"));
    if (!std::isfinite(float(lr)) || float(lr) <= 0.0f) {  // Adam runs in float32
        throw UsageError("--lr must be a float32 number > 0 (about 1e-45 to 3.4e38), got '" +
                         a.get("--lr", "") + "'");
    }
    const auto seed =
        std::uint64_t(parse_int("--seed", a.get("--seed", "1"), 0, "an integer >= 0"));
    const Device device = parse_device(a.get("--device", "auto"));
    const long long val_n =
        parse_int("--validation", a.get("--validation", "10000"), 0, "an integer >= 0");
    const long long limit =
        a.has("--limit") ? parse_int("--limit", a.get("--limit", ""), 2, "an integer >= 2") : -1;
    const std::string ckpt = a.get("--checkpoint", "");
    const bool resume = a.has("--resume");
    if (resume && ckpt.empty()) throw UsageError("--resume needs --checkpoint FILE");
    const std::string metrics = a.get("--metrics", "");
    const std::string json = a.get("--json", "");

    const auto t_start = std::chrono::steady_clock::now();
    Dataset train = load_idx_dataset(data, "train");
    Dataset test = load_idx_dataset(data, "t10k");
    if (limit > 0 && limit < train.size()) {
        Dataset tail = split_tail(train, train.size() - limit);  // keep the first `limit`
        (void)tail;
    }
    Dataset val;
    if (val_n > 0) {
        if (val_n >= train.size()) {
            throw UsageError("--validation " + std::to_string(val_n) +
                             " leaves no training images (" + std::to_string(train.size()) +
                             " in " + data + ")");
        }
        val = split_tail(train, val_n);
    }

    Sequential model = lenet5(seed);
    Trainer trainer(model, device);
    std::uint64_t shuffle_seed = seed;
    bool resumed = false;
    if (resume && std::ifstream(ckpt).good()) {
        trainer.load_checkpoint_state(load_checkpoint(ckpt));
        shuffle_seed = trainer.seed();
        resumed = true;
        out << "Resuming from " << ckpt << " after epoch " << trainer.epochs_done() << " (seed "
            << shuffle_seed << ")\n";
    } else {
        out << model.summary();
    }
    out << "Device: " << trainer.device_name() << "\n";
    out << "Data: " << data << ": " << train.size() << " train, " << val.size() << " validation, "
        << test.size() << " test images\n";
    out.flush();

    const bool tty = isatty(STDOUT_FILENO) && &out == &std::cout;
    FitOptions opt;
    opt.epochs = epochs;
    opt.batch_size = batch;
    opt.adam.lr = float(lr);
    opt.seed = shuffle_seed;
    opt.cuda_graphs = !a.has("--no-cuda-graphs");
    opt.progress_interval_s = tty ? 0.2 : 10.0;
    opt.metrics_path = metrics;
    opt.checkpoint_path = ckpt;
    opt.on_progress = [&](const Progress& p) {
        if (tty) {
            out << "\r" << progress_line(p, true) << "\033[K" << std::flush;
        } else {
            out << progress_line(p, false) << "\n" << std::flush;
        }
    };
    opt.on_epoch_end = [&](const EpochLog& log) {
        if (tty) out << "\r\033[K";
        out << epoch_line(log, epochs) << "\n" << std::flush;
    };
    const DataView val_view = view_of(val);
    const History h = trainer.fit(view_of(train), val.size() > 0 ? &val_view : nullptr, opt);
    trainer.pull_params();

    const EvalResult t = trainer.evaluate(view_of(test));
    out << std::fixed << std::setprecision(4) << "Test: loss " << t.loss << " - accuracy "
        << t.accuracy << " (" << t.count << " images)\n";
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

    if (!json.empty()) {
        double images = 0, train_seconds = 0;
        for (const EpochLog& e : h.epochs) {
            images += e.images_per_second * e.seconds;
            train_seconds += e.seconds;
        }
        std::ostringstream js;
        js << "{\n  \"command\": \"train\",\n  \"device\": \"" << json_escape(trainer.device_name())
           << "\",\n  \"data\": \"" << json_escape(data) << "\",\n  \"epochs\": " << epochs
           << ",\n  \"epochs_run\": " << h.epochs.size() << ",\n  \"batch_size\": " << batch
           << ",\n  \"lr\": " << json_num(lr) << ",\n  \"seed\": " << shuffle_seed
           << ",\n  \"resumed\": " << (resumed ? "true" : "false")
           << ",\n  \"train_images\": " << train.size()
           << ",\n  \"validation_images\": " << val.size() << ",\n  \"test_images\": " << t.count
           << ",\n  \"test_loss\": " << json_num(t.loss)
           << ",\n  \"test_accuracy\": " << json_num(t.accuracy)
           << ",\n  \"train_images_per_second\": "
           << (train_seconds > 0 ? json_num(images / train_seconds) : "null")
           << ",\n  \"train_seconds\": " << json_num(train_seconds)
           << ",\n  \"seconds\": " << json_num(seconds) << ",\n  \"history\": [";
        for (std::size_t i = 0; i < h.epochs.size(); ++i) {
            const EpochLog& e = h.epochs[i];
            js << (i ? ",\n" : "\n") << "    {\"epoch\": " << e.epoch
               << ", \"loss\": " << json_num(e.loss) << ", \"accuracy\": " << json_num(e.accuracy)
               << ", \"val_loss\": " << (e.val_loss >= 0 ? json_num(e.val_loss) : "null")
               << ", \"val_accuracy\": "
               << (e.val_accuracy >= 0 ? json_num(e.val_accuracy) : "null")
               << ", \"seconds\": " << json_num(e.seconds)
               << ", \"cpu_seconds\": " << json_num(e.cpu_seconds)
               << ", \"images_per_second\": " << json_num(e.images_per_second) << "}";
        }
        js << (h.epochs.empty() ? "]\n}\n" : "\n  ]\n}\n");
        write_file(json, js.str(), "JSON");
    }
    return 0;
}

// Loads the checkpoint's model onto a trainer.
struct Loaded {
    Sequential model;
    std::unique_ptr<Trainer> trainer;
};

Loaded load_model(const Args& a) {
    if (!a.has("--checkpoint")) throw UsageError("--checkpoint FILE is required");
    const Device device = parse_device(a.get("--device", "auto"));
    Loaded l{model_from_checkpoint(load_checkpoint(a.get("--checkpoint", ""))), nullptr};
    l.trainer = std::make_unique<Trainer>(l.model, device);
    return l;
}

int cmd_evaluate(const Args& a, std::ostream& out) {
    const std::string data = a.get("--data", kDefaultData);
    const std::string json = a.get("--json", "");
    Loaded l = load_model(a);
    Dataset test = load_idx_dataset(data, "t10k");
    const EvalResult r = l.trainer->evaluate(view_of(test));
    out << std::fixed << std::setprecision(4) << "Test: loss " << r.loss << " - accuracy "
        << r.accuracy << " (" << r.count << " images, " << l.trainer->device_name() << ")\n";
    if (!json.empty()) {
        std::ostringstream js;
        js << "{\n  \"command\": \"evaluate\",\n  \"checkpoint\": \""
           << json_escape(a.get("--checkpoint", "")) << "\",\n  \"device\": \""
           << json_escape(l.trainer->device_name()) << "\",\n  \"test_images\": " << r.count
           << ",\n  \"test_loss\": " << json_num(r.loss)
           << ",\n  \"test_accuracy\": " << json_num(r.accuracy)
           << ",\n  \"seconds\": " << json_num(r.seconds) << "\n}\n";
        write_file(json, js.str(), "JSON");
    }
    return 0;
}

int cmd_predict(const Args& a, std::ostream& out) {
    if (!a.has("--index")) throw UsageError("--index I [I ...] is required");
    std::vector<long long> idx;
    for (const std::string& v : a.opts.at("--index")) {
        idx.push_back(parse_int("--index", v, 0, "an integer >= 0"));
    }
    const std::string data = a.get("--data", kDefaultData);
    Loaded l = load_model(a);
    Dataset test = load_idx_dataset(data, "t10k");
    for (long long i : idx) {
        if (i >= test.size()) {
            throw UsageError("--index " + std::to_string(i) +
                             " is out of range: the test set has " + std::to_string(test.size()) +
                             " images");
        }
    }
    const std::int64_t sample = test.images.numel() / test.size();
    std::vector<float> x(idx.size() * std::size_t(sample));
    for (std::size_t k = 0; k < idx.size(); ++k) {
        std::copy_n(test.images.data<float>() + idx[k] * sample, sample, x.data() + k * sample);
    }
    const Tensor p = l.trainer->predict(x.data(), std::int64_t(idx.size()));
    const std::int64_t classes = p.numel() / std::int64_t(idx.size());
    for (std::size_t k = 0; k < idx.size(); ++k) {
        const float* row = p.data<float>() + k * classes;
        std::int64_t best = 0;
        for (std::int64_t j = 1; j < classes; ++j)
            if (row[j] > row[best]) best = j;
        out << "index " << idx[k] << ": class " << best << " (label " << test.labels[idx[k]]
            << ") probabilities:";
        for (std::int64_t j = 0; j < classes; ++j) {
            out << " " << std::fixed << std::setprecision(4) << row[j];
        }
        out << "\n";
    }
    return 0;
}

}  // namespace

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
    if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
        (args.empty() ? err : out) << kMainHelp;
        return args.empty() ? 2 : 0;
    }
    const std::string command = args[0];
    args.erase(args.begin());
    const OptionSpec V{true, false}, F{false, false}, M{true, true};
    std::map<std::string, OptionSpec> spec;
    const char* help = nullptr;
    if (command == "train") {
        spec = {{"--data", V},          {"--epochs", V}, {"--batch-size", V}, {"--lr", V},
                {"--seed", V},          {"--device", V}, {"--checkpoint", V}, {"--resume", F},
                {"--metrics", V},       {"--json", V},   {"--validation", V}, {"--limit", V},
                {"--no-cuda-graphs", F}};
        help = kTrainHelp;
    } else if (command == "evaluate") {
        spec = {{"--data", V}, {"--device", V}, {"--checkpoint", V}, {"--json", V}};
        help = kEvaluateHelp;
    } else if (command == "predict") {
        spec = {{"--data", V}, {"--device", V}, {"--checkpoint", V}, {"--index", M}};
        help = kPredictHelp;
    } else {
        err << "minicnn: unknown command '" << command
            << "' (expected train, evaluate or predict; see 'minicnn --help')\n";
        return 2;
    }
    try {
        const Args a = parse_args(command, args, spec);
        if (a.help) {
            out << help;
            return 0;
        }
        if (command == "train") return cmd_train(a, out);
        if (command == "evaluate") return cmd_evaluate(a, out);
        return cmd_predict(a, out);
    } catch (const UsageError& e) {
        out.flush();
        err << "minicnn " << command << ": " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        out.flush();
        std::string msg = e.what();
        for (char& c : msg)
            if (c == '\n') c = ' ';
        err << "minicnn " << command << ": error: " << msg << "\n";
        return 1;
    }
}

}  // namespace minicnn
