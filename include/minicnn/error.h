// minicnn/error.h — the one exception type of the library, and the checking macros.
//
// Every user-facing failure (bad shape, bad argument, bad file, CUDA failure, out of memory) throws
// minicnn::Error with a message that says what was expected and what was found. The library never
// calls exit() and never returns an empty result in place of an error.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace minicnn {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Bad arguments (shapes, parameters, names): the Python module maps these to ValueError.
class ArgumentError : public Error {
public:
    using Error::Error;
};

// Failures of the device (CUDA, cuBLAS, out of memory): RuntimeError in Python.
class DeviceError : public Error {
public:
    using Error::Error;
};

}  // namespace minicnn

// MINICNN_REQUIRE(cond, stream-expression): throw ArgumentError with the streamed message when cond
// is false. Usage: MINICNN_REQUIRE(x > 0, "conv_forward: stride must be positive, got " << x);
#define MINICNN_REQUIRE(cond, msg)                     \
    do {                                               \
        if (!(cond)) {                                 \
            std::ostringstream minicnn_require_os_;    \
            minicnn_require_os_ << msg;                \
            throw ::minicnn::ArgumentError(minicnn_require_os_.str()); \
        }                                              \
    } while (0)
