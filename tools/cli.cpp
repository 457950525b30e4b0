// tools/cli.cpp — the `minicnn` program's commands (tools/cli.h: train, evaluate, predict,
// export): argument parsing, data loading, the progress display and JSON summaries. The per-epoch lines, the metrics CSV and the checkpoint
// after each epoch are the library's (Trainer::fit, minicnn/trainer.h).
//
// CLI11 splits the command line (commands, --opt VALUE and --opt=VALUE, flags, the values of
// --index, -h/--help, the help text); every option arrives as a string and is checked here in full
// ("12x" is not 12), so that the first problem ends the program with one line in our words that
// names the argument: CLI11's own errors are mapped onto that line (usage_message). JSON summaries
// are written with nlohmann::json.
#include "cli.h"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "minicnn/checkpoint.h"
#include "minicnn/cifar.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/detail/pixel.h"
#include "minicnn/distributed.h"
#include "minicnn/error.h"
#include "minicnn/export.h"
#include "minicnn/idx.h"
#include "minicnn/keras.h"
#include "minicnn/memory.h"
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

// What the command line says, as CLI11 fills it: every value a string, checked by the command.
struct Options {
    std::string data = kDefaultData, device = "auto";
    std::string epochs = "5", batch_size = "32", lr = "0.001", seed = "1", validation = "10000";
    std::string limit, checkpoint, metrics, json, model, rank_timeout = "300", output;
    bool resume = false, no_cuda_graphs = false;
    std::vector<std::string> index;
};

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

// ---- the command line ---------------------------------------------------------------------------

// The program and its commands, the options bound to `o`.
struct Program {
    CLI::App app{
        "Train and use the exercise's LeNet-5, or a Keras Sequential model, on IDX or CIFAR-10 "
        "data.",
        "minicnn"};
    CLI::App* train = nullptr;
    CLI::App* evaluate = nullptr;
    CLI::App* predict = nullptr;
    CLI::App* export_ = nullptr;

    explicit Program(Options& o) {
        app.get_formatter()->column_width(24);
        app.get_formatter()->label("Usage", "usage");
        app.get_formatter()->label("OPTIONS", "options");
        app.get_formatter()->label("SUBCOMMAND", "<command>");
        app.get_formatter()->label("Subcommands", "Commands");
        app.set_help_flag("-h,--help", "this help");
        app.footer("Run 'minicnn <command> --help' for the options of a command.");
        // Unknown commands and options are ours to report (in our words): CLI11 keeps them.
        app.allow_extras();
        app.require_subcommand(0, 1);
        app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

        train = command("train",
                        "train LeNet-5 or a --model (Adam), validate after each epoch, evaluate on "
                        "the test set",
                        "Trains LeNet-5 or the --model on the training set of <data> (IDX "
                        "train-*, or CIFAR-10 data_batch_*.bin;\nthe last --validation images are "
                        "held out for validation) and reports loss and accuracy on\nits test set "
                        "(t10k-*, or test_batch.bin).");
        data_and_device(train, o);
        train->add_option("--epochs", o.epochs, "train until N epochs are done (0 only evaluates)")
            ->type_name("N")
            ->capture_default_str();
        train->add_option("--batch-size", o.batch_size, "batch size, > 0")
            ->type_name("B")
            ->capture_default_str();
        train->add_option("--lr", o.lr, "Adam learning rate, finite and > 0")
            ->type_name("X")
            ->capture_default_str();
        train
            ->add_option("--seed", o.seed, "seed of the initial weights, the shuffling and dropout")
            ->type_name("S")
            ->capture_default_str();
        train
            ->add_option("--model", o.model,
                         "a Keras Sequential model (model.to_json(), Keras 2 or 3); default "
                         "LeNet-5")
            ->type_name("FILE.json");
        flag(train, "--no-cuda-graphs", o.no_cuda_graphs,
             "GPU: launch each kernel instead of replaying each step as a CUDA graph");
        CLI::Option* ckpt =
            train
                ->add_option("--checkpoint", o.checkpoint,
                             "write a checkpoint (weights, Adam state, epoch, RNG) after every "
                             "epoch")
                ->type_name("FILE");
        flag(train, "--resume", o.resume, "continue from --checkpoint when it exists")->needs(ckpt);
        train->add_option("--metrics", o.metrics, "one CSV row per epoch")->type_name("FILE.csv");
        train
            ->add_option("--json", o.json,
                         "a summary of the run (test accuracy and loss, throughput, ...)")
            ->type_name("FILE");
        train
            ->add_option("--validation", o.validation,
                         "validation images taken off the end of the training set")
            ->type_name("N")
            ->capture_default_str();
        train
            ->add_option("--limit", o.limit,
                         "use only the first N training images (before the validation split)")
            ->type_name("N");
        train
            ->add_option("--rank-timeout", o.rank_timeout,
                         "under mpirun: how long a rank waits for the others before it stops "
                         "the run")
            ->type_name("S")
            ->capture_default_str();

        evaluate = command("evaluate", "loss and accuracy of a checkpoint on the test set",
                           "Loss and accuracy of the checkpoint's model on the test set of <data> "
                           "(t10k-* or test_batch.bin).");
        checkpoint_in(evaluate, o);
        data_and_device(evaluate, o);
        evaluate->add_option("--json", o.json, "write the result as JSON")->type_name("FILE");

        predict = command(
            "predict", "class and probabilities of test images",
            "Predicted class and class probabilities of test images (t10k-* or test_batch.bin) "
            "number I, ...");
        checkpoint_in(predict, o);
        predict->add_option("--index", o.index, "test image indices, 0-based")
            ->type_name("I")
            ->required()
            ->allow_extra_args()
            ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
        data_and_device(predict, o);

        export_ = command(
            "export", "a checkpoint's weights as safetensors, or its model as ONNX",
            "Writes the checkpoint's weights in PyTorch's layouts (FILE.safetensors: tensors "
            "'<layer>.weight',\n'<layer>.bias', as a torch.nn.Module's state_dict) or its whole "
            "model (FILE.onnx: opset 17,\nNHWC float32 input, softmax output); see docs/export.md. "
            "An existing FILE is replaced only\nby a complete one.");
        checkpoint_in(export_, o);
        export_->add_option("--output", o.output, "the file to write: .safetensors or .onnx")
            ->type_name("FILE")
            ->required();
    }

    CLI::App* command(const char* name, const char* summary, const char* what) {
        CLI::App* c = app.add_subcommand(name, summary);
        c->footer(what);
        c->allow_extras();
        return c;
    }
    static CLI::Option* flag(CLI::App* c, const char* name, bool& v, const char* what) {
        return c->add_flag(name, v, what)->disable_flag_override();  // --flag=x is an error
    }
    static void data_and_device(CLI::App* c, Options& o) {
        c->add_option("--data", o.data, "IDX or CIFAR-10 binary directory")
            ->type_name("DIR")
            ->capture_default_str();
        c->add_option("--device", o.device, "auto, cpu, cuda or cuda:N")
            ->type_name("D")
            ->capture_default_str();
    }
    static void checkpoint_in(CLI::App* c, Options& o) {
        c->add_option("--checkpoint", o.checkpoint, "a checkpoint written by 'minicnn train'")
            ->type_name("FILE")
            ->required();
    }
};

// A flag of `cmd` given a value (--resume=1): CLI11 refuses most values (disable_flag_override)
// but takes --resume=true; the program takes none. Returns the flag's name, or "".
std::string flag_given_a_value(const CLI::App& cmd, const std::vector<std::string>& args) {
    for (const std::string& a : args) {
        const std::string name = a.substr(0, a.find('='));
        const CLI::Option* opt = cmd.get_option_no_throw(name);
        if (name.size() < a.size() && a.rfind("--", 0) == 0 && opt != nullptr &&
            opt->get_items_expected_max() == 0) {
            return name;
        }
    }
    return "";
}

// CLI11 reports a problem in its own words; this is the line, in ours, that names the argument.
// `args`: the command line after the program's name.
std::string usage_message(const CLI::ParseError& e, const CLI::App& cmd,
                          const std::vector<std::string>& args) {
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr) {
        // Either a flag was given a value, or an option that takes a value ended the command line
        // (CLI11 takes an option's value from the next argument, whatever it is).
        const std::string flag = flag_given_a_value(cmd, args);
        if (!flag.empty()) return "option " + flag + " takes no value";
        return "option " + (args.empty() ? std::string("?") : args.back()) + " needs a value";
    }
    // RequiredError ("--checkpoint is required"), RequiresError ("--resume requires --checkpoint").
    return e.what();
}

// What CLI11 accepted but the program does not: a flag given a value, a value that is an option
// (CLI11 takes the next argument as the value of --epochs in "--epochs --lr 0.1"), an unknown
// option or a stray argument. The first one found ends the program.
void check_command_line(const CLI::App& cmd, const std::vector<std::string>& args) {
    const std::string flag = flag_given_a_value(cmd, args);
    if (!flag.empty()) throw UsageError("option " + flag + " takes no value");
    for (const CLI::Option* opt : cmd.get_options()) {
        for (const std::string& v : opt->results()) {
            if (opt->get_items_expected_max() > 0 && (v.rfind("--", 0) == 0 || v == "-h")) {
                throw UsageError("option " + opt->get_name() + " needs a value");
            }
        }
    }
    const std::vector<std::string> extra = cmd.remaining();
    if (extra.empty()) return;
    const std::string& arg = extra.front();
    const std::string see = " (see 'minicnn " + cmd.get_name() + " --help')";
    if (arg.rfind("-", 0) == 0) {
        throw UsageError("unknown option '" + arg.substr(0, arg.find('=')) + "'" + see);
    }
    throw UsageError("unexpected argument '" + arg + "'" + see);
}

// ---- the commands -------------------------------------------------------------------------------

void write_json(const std::string& path, const nlohmann::ordered_json& j) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot open JSON file " + path + " for writing");
    f << j.dump(2) << "\n";
    if (!f.flush()) throw Error("failed writing JSON file " + path);
}

// A number for the JSON summaries, or null: the loss of a run may be NaN or Inf, the validation
// numbers are -1 without validation.
nlohmann::ordered_json number_or_null(double v, bool present = true) {
    if (!present || !std::isfinite(v)) return nullptr;
    return v;
}

// On a GPU, the most device memory the trainer's buffers held at once (Engine::peak_buffer_bytes);
// null on the CPU, whose buffers are host memory (in peak_host_memory_bytes).
nlohmann::ordered_json peak_device_memory(Trainer& t) {
    if (t.backend() == Backend::cpu) return nullptr;
    return t.engine().peak_buffer_bytes();
}

// Under mpirun, a rank that the launcher ends (SIGTERM, when another rank died or failed) says so in
// one line before it goes: the line is made beforehand and written with write(2), which a signal
// handler may call.
char g_stopped_line[200];
std::size_t g_stopped_len = 0;

extern "C" void say_stopped_and_exit(int sig) {
    const ssize_t n = ::write(STDERR_FILENO, g_stopped_line, g_stopped_len);
    (void)n;
    ::_exit(128 + sig);
}

void say_when_stopped(const Communicator& comm) {
    const std::string line = "minicnn train (rank " + std::to_string(comm.rank()) + " of " +
                             std::to_string(comm.size()) +
                             "): stopped by the launcher (another rank died or failed)\n";
    g_stopped_len = std::min(line.size(), sizeof g_stopped_line);
    std::copy_n(line.data(), g_stopped_len, g_stopped_line);
    struct sigaction sa {};
    sa.sa_handler = say_stopped_and_exit;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
}

// The device of this rank: with more than one rank, a GPU run gives each rank of a node the GPU of
// its local rank.
Device device_of_rank(const std::string& spec, const Device& device, const Communicator& comm) {
    if (comm.size() == 1 || resolve_backend(device) != Backend::cuda) return device;
    if (spec.rfind("cuda:", 0) == 0) {
        throw UsageError("--device " + spec + " names one GPU, but each of the " +
                         std::to_string(comm.size()) +
                         " ranks takes the GPU of its local rank: use --device cuda");
    }
    const int gpus = cuda_device_count();
    if (comm.local_size() > gpus) {
        throw UsageError(std::to_string(comm.local_size()) + " ranks on this node but " +
                         std::to_string(gpus) + " GPU" + (gpus == 1 ? "" : "s") +
                         ": one GPU per rank (start at most " + std::to_string(gpus) +
                         " ranks per node, or use --device cpu)");
    }
    return Device::cuda(comm.local_rank());
}

// The Keras model file's model (minicnn/keras.h), its input checked against the data's images
// (n, h, w, c).
Sequential keras_model(const std::string& path, std::uint64_t seed, const Shape& images) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw UsageError("--model: cannot open '" + path + "'");
    std::stringstream text;
    text << f.rdbuf();
    KerasOptions k;
    k.seed = seed;
    k.input_shape = Shape(images.begin() + 1, images.end());
    k.source = path;
    return model_from_keras_json(text.str(), k);
}

// A model whose input is not the data's image shape cannot run on it: one line saying both.
void check_input_shape(const Sequential& model, const Dataset& data, const std::string& dir) {
    const Shape s = data.shape();
    const Shape image(s.begin() + 1, s.end());
    if (model.input_shape() != image) {
        throw UsageError("the model '" + model.name() + "' takes inputs " +
                         shape_str(model.input_shape()) + " but the images in " + dir + " are " +
                         shape_str(image) +
                         (model.name() == "lenet5" ? " (give a model for them with --model)" : ""));
    }
}

// `comm` is made here and kept by the caller, which ends every rank with it when this one fails.
int cmd_train(const Options& o, std::ostream& out, std::unique_ptr<Communicator>& comm) {
    const int int_max = std::numeric_limits<int>::max();
    const int epochs = int(parse_int("--epochs", o.epochs, 0, "an integer >= 0", int_max));
    const int batch = int(parse_int("--batch-size", o.batch_size, 1, "an integer > 0", int_max));
    const double lr = parse_positive_double("--lr", o.lr);
    if (!std::isfinite(float(lr)) || float(lr) <= 0.0f) {  // Adam runs in float32
        throw UsageError("--lr must be a float32 number > 0 (about 1e-45 to 3.4e38), got '" + o.lr +
                         "'");
    }
    const auto seed = std::uint64_t(parse_int("--seed", o.seed, 0, "an integer >= 0"));
    const Device device = parse_device(o.device);
    const long long val_n = parse_int("--validation", o.validation, 0, "an integer >= 0");
    const long long limit =
        o.limit.empty() ? -1 : parse_int("--limit", o.limit, 2, "an integer >= 2");
    const double rank_timeout = parse_positive_double("--rank-timeout", o.rank_timeout);
    const int ranks = launcher_ranks();
    if (batch % ranks != 0) {
        throw UsageError("--batch-size " + std::to_string(batch) +
                         " is the global batch and must divide among the " + std::to_string(ranks) +
                         " ranks");
    }
    comm = make_communicator(rank_timeout);
    if (comm->size() > 1) say_when_stopped(*comm);
    const Device rank_device = device_of_rank(o.device, device, *comm);
    const bool root = comm->rank() == 0;
    std::ostream null_out(nullptr);  // the other ranks print nothing
    std::ostream& log = root ? out : null_out;
    if (comm->size() > 1 && resolve_backend(rank_device) == Backend::cpu &&
        std::getenv("OMP_NUM_THREADS") == nullptr) {
        // The node's cores shared among its ranks, unless OMP_NUM_THREADS says otherwise.
        cpu::set_thread_count(std::max(1, cpu::thread_count() / comm->local_size()));
    }

    const auto t_start = std::chrono::steady_clock::now();
    const DataFormat format = detect_data_format(o.data);
    Dataset train = load_dataset(o.data, "train");
    Dataset test = load_dataset(o.data, "test");
    // Keep the first `limit` images; the tail split_tail returns is dropped.
    if (limit > 0 && limit < train.size()) split_tail(train, train.size() - limit);
    Dataset val;
    if (val_n > 0) {
        if (val_n >= train.size()) {
            throw UsageError("--validation " + std::to_string(val_n) +
                             " leaves no training images (" + std::to_string(train.size()) +
                             " in " + o.data + ")");
        }
        val = split_tail(train, val_n);
    }

    // The model: the Keras file's, or LeNet-5; a resumed run without --model takes the
    // checkpoint's architecture (with --model, load_checkpoint_state checks that they agree).
    const bool resuming = o.resume && std::ifstream(o.checkpoint).good();
    std::unique_ptr<Checkpoint> ck;
    if (resuming) ck = std::make_unique<Checkpoint>(load_checkpoint(o.checkpoint));
    Sequential model = !o.model.empty() ? keras_model(o.model, seed, train.shape())
                       : ck != nullptr  ? model_from_checkpoint(*ck)
                                        : lenet5(seed);
    check_input_shape(model, train, o.data);
    Trainer trainer(model, rank_device, comm.get());
    std::uint64_t shuffle_seed = seed;
    bool resumed = false;
    if (resuming) {
        trainer.load_checkpoint_state(*ck);
        shuffle_seed = trainer.seed();
        resumed = true;
        log << "Resuming from " << o.checkpoint << " after epoch " << trainer.epochs_done()
            << " (seed " << shuffle_seed << ")\n";
    } else {
        log << model.summary();
    }
    log << "Device: " << trainer.device_name() << "\n";
    if (comm->size() > 1) {
        log << "Ranks: " << comm->name() << "; global batch " << batch << ", "
            << batch / comm->size() << " per rank\n";
    }
    log << "Data: " << o.data << " (" << data_format_name(format) << "): " << train.size()
        << " train, " << val.size() << " validation, " << test.size() << " test images\n";
    log.flush();

    // Under mpirun standard output is a pseudo-terminal whatever mpirun's own output is: plain lines.
    const bool tty = isatty(STDOUT_FILENO) && &out == &std::cout && comm->size() == 1;
    FitOptions opt;
    opt.epochs = epochs;
    opt.batch_size = batch;
    opt.adam.lr = float(lr);
    opt.seed = shuffle_seed;
    opt.cuda_graphs = !o.no_cuda_graphs;
    opt.progress_interval_s = tty ? 0.2 : 10.0;
    opt.metrics_path = o.metrics;
    opt.checkpoint_path = o.checkpoint;
    if (root) {
        opt.on_progress = [&](const Progress& p) {
            if (tty) {
                out << "\r" << progress_line(p, true) << "\033[K" << std::flush;
            } else {
                out << progress_line(p, false) << "\n" << std::flush;
            }
        };
        opt.on_epoch_end = [&](const EpochLog& e) {
            if (tty) out << "\r\033[K";
            out << epoch_line(e, epochs) << "\n" << std::flush;
        };
    }
    const DataView val_view = view_of(val);
    const History h = trainer.fit(view_of(train), val.size() > 0 ? &val_view : nullptr, opt);
    trainer.pull_params();

    const EvalResult t = trainer.evaluate(view_of(test));
    log << std::fixed << std::setprecision(4) << "Test: loss " << t.loss << " - accuracy "
        << t.accuracy << " (" << t.count << " images)\n";
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

    if (root && !o.json.empty()) {
        double images = 0, train_seconds = 0;
        auto history = nlohmann::ordered_json::array();
        for (const EpochLog& e : h.epochs) {
            images += e.images_per_second * e.seconds;
            train_seconds += e.seconds;
            history.push_back(
                {{"epoch", e.epoch},
                 {"loss", number_or_null(e.loss)},
                 {"accuracy", number_or_null(e.accuracy)},
                 {"val_loss", number_or_null(e.val_loss, e.val_loss >= 0)},
                 {"val_accuracy", number_or_null(e.val_accuracy, e.val_accuracy >= 0)},
                 {"seconds", number_or_null(e.seconds)},
                 {"cpu_seconds", number_or_null(e.cpu_seconds)},
                 {"images_per_second", number_or_null(e.images_per_second)}});
        }
        write_json(o.json, {{"command", "train"},
                            {"device", trainer.device_name()},
                            {"world_size", comm->size()},
                            {"data", o.data},
                            {"epochs", epochs},
                            {"epochs_run", h.epochs.size()},
                            {"batch_size", batch},
                            {"lr", lr},
                            {"seed", shuffle_seed},
                            {"resumed", resumed},
                            {"train_images", train.size()},
                            {"validation_images", val.size()},
                            {"test_images", t.count},
                            {"test_loss", number_or_null(t.loss)},
                            {"test_accuracy", number_or_null(t.accuracy)},
                            {"train_images_per_second",
                             number_or_null(images / train_seconds, train_seconds > 0)},
                            {"train_seconds", train_seconds},
                            {"seconds", seconds},
                            {"peak_host_memory_bytes", peak_host_memory()},
                            {"peak_device_memory_bytes", peak_device_memory(trainer)},
                            {"history", history}});
    }
    return 0;
}

// Loads the checkpoint's model onto a trainer.
struct Loaded {
    Sequential model;
    std::unique_ptr<Trainer> trainer;
};

Loaded load_model(const Options& o) {
    const Device device = parse_device(o.device);
    Loaded l{model_from_checkpoint(load_checkpoint(o.checkpoint)), nullptr};
    l.trainer = std::make_unique<Trainer>(l.model, device);
    return l;
}

int cmd_evaluate(const Options& o, std::ostream& out) {
    Loaded l = load_model(o);
    Dataset test = load_dataset(o.data, "test");
    check_input_shape(l.model, test, o.data);
    const EvalResult r = l.trainer->evaluate(view_of(test));
    out << std::fixed << std::setprecision(4) << "Test: loss " << r.loss << " - accuracy "
        << r.accuracy << " (" << r.count << " images, " << l.trainer->device_name() << ")\n";
    if (!o.json.empty()) {
        write_json(o.json, {{"command", "evaluate"},
                            {"checkpoint", o.checkpoint},
                            {"device", l.trainer->device_name()},
                            {"test_images", r.count},
                            {"test_loss", number_or_null(r.loss)},
                            {"test_accuracy", number_or_null(r.accuracy)},
                            {"seconds", r.seconds},
                            {"peak_host_memory_bytes", peak_host_memory()},
                            {"peak_device_memory_bytes", peak_device_memory(*l.trainer)}});
    }
    return 0;
}

int cmd_export(const Options& o, std::ostream& out) {
    ExportFormat format;
    try {
        format = export_format(o.output);
    } catch (const ArgumentError& e) {
        throw UsageError(std::string("--output: ") + e.what());
    }
    const bool weights = format == ExportFormat::safetensors;
    const Sequential model = model_from_checkpoint(load_checkpoint(o.checkpoint));
    export_model(model, o.output);
    out << "Wrote " << o.output << ": " << (weights ? "the weights" : "the model") << " of '"
        << model.name() << "' (" << format_thousands(model.param_count()) << " parameters) from "
        << o.checkpoint << "\n";
    return 0;
}

int cmd_predict(const Options& o, std::ostream& out) {
    std::vector<long long> idx;
    for (const std::string& v : o.index) {
        idx.push_back(parse_int("--index", v, 0, "an integer >= 0"));
    }
    Loaded l = load_model(o);
    Dataset test = load_dataset(o.data, "test");
    check_input_shape(l.model, test, o.data);
    for (long long i : idx) {
        if (i >= test.size()) {
            throw UsageError("--index " + std::to_string(i) +
                             " is out of range: the test set has " + std::to_string(test.size()) +
                             " images");
        }
    }
    const std::int64_t sample = test.sample_numel();
    std::vector<float> x(idx.size() * std::size_t(sample));
    for (std::size_t k = 0; k < idx.size(); ++k) {
        const std::uint8_t* px = test.pixels.data() + idx[k] * sample;
        for (std::int64_t j = 0; j < sample; ++j)
            x[k * std::size_t(sample) + std::size_t(j)] = detail::pixel_to_unit(px[j]);
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
    Options o;
    Program prog(o);
    if (argc <= 1) {
        err << prog.app.help();
        return 2;
    }
    const std::vector<std::string> args(argv + 1, argv + argc);
    const CLI::App* cmd = nullptr;       // the command, once CLI11 has seen it
    std::unique_ptr<Communicator> comm;  // train's ranks, once it has made them
    try {
        try {
            prog.app.parse(argc, argv);
        } catch (const CLI::CallForHelp&) {
            out << prog.app.help();  // the command's help, when a command was given
            return 0;
        } catch (const CLI::ParseError& e) {
            const std::vector<CLI::App*> given = prog.app.get_subcommands();
            if (given.empty()) throw UsageError(e.what());
            cmd = given.front();
            throw UsageError(usage_message(e, *cmd, args));
        }
        const std::vector<CLI::App*> given = prog.app.get_subcommands();
        if (given.empty()) {
            const std::vector<std::string> extra = prog.app.remaining();
            if (!extra.empty() && extra.front() == "help") {
                out << prog.app.help();
                return 0;
            }
            err << "minicnn: unknown command '" << (extra.empty() ? "" : extra.front())
                << "' (expected train, evaluate, predict or export; see 'minicnn --help')\n";
            return 2;
        }
        cmd = given.front();
        check_command_line(*cmd, args);
        if (cmd == prog.train) return cmd_train(o, out, comm);
        if (cmd == prog.evaluate) return cmd_evaluate(o, out);
        if (cmd == prog.export_) return cmd_export(o, out);
        return cmd_predict(o, out);
    } catch (const UsageError& e) {
        out.flush();
        const std::string name = "minicnn" + (cmd ? " " + cmd->get_name() : std::string());
        if (comm && comm->size() > 1) {  // found after the ranks met: maybe on some ranks only
            err << name + " (rank " + std::to_string(comm->rank()) + " of " +
                       std::to_string(comm->size()) + "): " + e.what() + "\n"
                << std::flush;
            comm->abort(2);
        }
        // Under mpirun, before the ranks met, every rank sees the same command line: rank 0 alone
        // says what is wrong and ends with status 2, which becomes mpirun's. The others end
        // quietly with 0, so that mpirun does not stop rank 0 before it has said it.
        if (launcher_rank() != 0) return 0;
        err << name + ": " + e.what() + "\n" << std::flush;  // one write: no interleaving
        return 2;
    } catch (const std::exception& e) {
        out.flush();
        std::string msg = e.what();
        for (char& c : msg)
            if (c == '\n') c = ' ';
        const std::string rank = launcher_ranks() > 1
                                     ? " (rank " + std::to_string(launcher_rank()) + " of " +
                                           std::to_string(launcher_ranks()) + ")"
                                     : "";
        err << "minicnn" + (cmd ? " " + cmd->get_name() : std::string()) + rank +
                   ": error: " + msg + "\n"
            << std::flush;
        // The other ranks may be waiting for this one in a collective: end them all now.
        if (comm && comm->size() > 1) comm->abort(1);
        return 1;
    }
}

}  // namespace minicnn
