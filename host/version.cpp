// host/version.cpp — minicnn::version(): the version string of the library that was linked.
#include "minicnn/version.h"

namespace minicnn {

const char* version() {
    return MINICNN_VERSION_STRING;
}

}  // namespace minicnn
