// host/float_str.h — a double as the shortest text that reads back to the same value (17
// significant digits), "nan" for any NaN: for checkpoint metadata and error messages.
#pragma once

#include <cmath>
#include <iomanip>
#include <sstream>
#include <string>

namespace minicnn {

inline std::string float_str(double v) {
    // NaN's sign bit depends on the order of the operations that made it (it differs between the
    // engines): a divergence message says "nan" either way.
    if (std::isnan(v)) return "nan";
    std::ostringstream os;
    os << std::setprecision(17) << v;
    return os.str();
}

}  // namespace minicnn
