// host/geometry.cpp — docs/operations.md's padding and output-size rules, and the validation of every shape,
// in one place for all backends.
#include "minicnn/geometry.h"

#include <limits>
#include <sstream>

namespace minicnn {

Padding Padding::explicit_pad(int ph, int pw) {
    MINICNN_REQUIRE(ph >= 0 && pw >= 0,
                    "padding must be \"same\", \"valid\" or non-negative (ph, pw), got ("
                        << ph << ", " << pw << ")");
    return {Kind::explicit_, ph, pw};
}

Padding Padding::parse(const std::string& s) {
    if (s == "same") return same();
    if (s == "valid") return valid();
    MINICNN_REQUIRE(false, "padding must be \"same\", \"valid\" or (ph, pw), got \"" << s << "\"");
    return {};
}

std::string Padding::str() const {
    switch (kind) {
        case Kind::same:
            return "same";
        case Kind::valid:
            return "valid";
        case Kind::explicit_:
            break;
    }
    std::ostringstream os;
    os << '(' << h << ", " << w << ')';
    return os.str();
}

int same_padding(std::int64_t in, int k, int s) {
    // ceil(((in - 1) * s + k - in) / 2), non-negative for s >= 1, k >= 1.
    const std::int64_t total = (in - 1) * s + k - in;
    return static_cast<int>((total + 1) / 2);
}

static void require_rank4(const Shape& s, const char* op, const char* name, const char* layout) {
    MINICNN_REQUIRE(s.size() == 4, op << ": " << name << " must have rank 4 " << layout
                                      << ", got shape " << shape_str(s) << " (rank " << s.size()
                                      << ")");
    for (std::int64_t d : s)
        MINICNN_REQUIRE(d > 0, op << ": " << name << " must have positive dimensions " << layout
                                  << ", got shape " << shape_str(s));
}

static void require_stride(Stride st, const char* op) {
    MINICNN_REQUIRE(st.h > 0 && st.w > 0,
                    op << ": stride must be positive, got (" << st.h << ", " << st.w << ")");
}

static std::int64_t out_size(std::int64_t in_padded, int k, int s) {
    return (in_padded - k) / s + 1;
}

ConvGeom conv_geometry(const Shape& a_prev, const Shape& weight, Padding padding, Stride stride,
                       const char* op) {
    require_rank4(a_prev, op, "A_prev", "(m, h, w, c_prev)");
    require_rank4(weight, op, "W", "(kh, kw, c_prev, c_new)");
    require_stride(stride, op);
    MINICNN_REQUIRE(weight[2] == a_prev[3], op << ": channel mismatch: W " << shape_str(weight)
                                               << " expects c_prev = " << weight[2]
                                               << " input channels, but A_prev "
                                               << shape_str(a_prev) << " has " << a_prev[3]);
    MINICNN_REQUIRE(weight[0] <= std::numeric_limits<int>::max() / 2 &&
                        weight[1] <= std::numeric_limits<int>::max() / 2,
                    op << ": kernel " << weight[0] << "x" << weight[1] << " is too large");
    ConvGeom g;
    g.n = a_prev[0];
    g.h = a_prev[1];
    g.w = a_prev[2];
    g.c = a_prev[3];
    g.kh = static_cast<int>(weight[0]);
    g.kw = static_cast<int>(weight[1]);
    g.k = weight[3];
    g.sh = stride.h;
    g.sw = stride.w;
    switch (padding.kind) {
        case Padding::Kind::same:
            g.ph = same_padding(g.h, g.kh, g.sh);
            g.pw = same_padding(g.w, g.kw, g.sw);
            break;
        case Padding::Kind::valid:
            g.ph = g.pw = 0;
            break;
        case Padding::Kind::explicit_:
            MINICNN_REQUIRE(padding.h >= 0 && padding.w >= 0,
                            op << ": padding must be non-negative, got " << padding.str());
            g.ph = padding.h;
            g.pw = padding.w;
            break;
    }
    const std::int64_t hp = g.h + 2 * std::int64_t(g.ph), wp = g.w + 2 * std::int64_t(g.pw);
    MINICNN_REQUIRE(g.kh <= hp && g.kw <= wp,
                    op << ": kernel " << g.kh << "x" << g.kw << " is larger than the padded input "
                       << hp << "x" << wp << " (A_prev " << shape_str(a_prev) << ", padding "
                       << padding.str() << " = (" << g.ph << ", " << g.pw << "))");
    g.oh = out_size(hp, g.kh, g.sh);
    g.ow = out_size(wp, g.kw, g.sw);
    return g;
}

PoolGeom pool_geometry(const Shape& a_prev, Window window, Stride stride, const char* op) {
    require_rank4(a_prev, op, "A_prev", "(m, h, w, c)");
    MINICNN_REQUIRE(window.h > 0 && window.w > 0, op << ": kernel_shape must be positive, got ("
                                                     << window.h << ", " << window.w << ")");
    require_stride(stride, op);
    MINICNN_REQUIRE(window.h <= a_prev[1] && window.w <= a_prev[2],
                    op << ": kernel " << window.h << "x" << window.w << " is larger than the input "
                       << a_prev[1] << "x" << a_prev[2] << " (A_prev " << shape_str(a_prev) << ")");
    PoolGeom g;
    g.n = a_prev[0];
    g.h = a_prev[1];
    g.w = a_prev[2];
    g.c = a_prev[3];
    g.kh = window.h;
    g.kw = window.w;
    g.sh = stride.h;
    g.sw = stride.w;
    g.oh = out_size(g.h, g.kh, g.sh);
    g.ow = out_size(g.w, g.kw, g.sw);
    return g;
}

void check_geometry(const ConvGeom& g, const char* op) {
    MINICNN_REQUIRE(g.n >= 0 && g.h > 0 && g.w > 0 && g.c > 0 && g.k > 0,
                    op << ": expected positive sizes, got n=" << g.n << " h=" << g.h << " w=" << g.w
                       << " c=" << g.c << " k=" << g.k);
    MINICNN_REQUIRE(
        g.kh > 0 && g.kw > 0 && g.sh > 0 && g.sw > 0 && g.ph >= 0 && g.pw >= 0,
        op << ": expected positive kernel and stride and non-negative padding, got kernel (" << g.kh
           << ", " << g.kw << ") stride (" << g.sh << ", " << g.sw << ") padding (" << g.ph << ", "
           << g.pw << ")");
    const std::int64_t oh = (g.h + 2 * std::int64_t(g.ph) - g.kh) / g.sh + 1;
    const std::int64_t ow = (g.w + 2 * std::int64_t(g.pw) - g.kw) / g.sw + 1;
    MINICNN_REQUIRE(g.h + 2 * std::int64_t(g.ph) >= g.kh && g.w + 2 * std::int64_t(g.pw) >= g.kw &&
                        g.oh == oh && g.ow == ow,
                    op << ": output size (" << g.oh << ", " << g.ow << ") does not match input ("
                       << g.h << ", " << g.w << "), kernel (" << g.kh << ", " << g.kw
                       << "), stride (" << g.sh << ", " << g.sw << ") and padding (" << g.ph << ", "
                       << g.pw << "); expected (" << oh << ", " << ow << ")");
}

void check_geometry(const PoolGeom& g, const char* op) {
    MINICNN_REQUIRE(g.n >= 0 && g.h > 0 && g.w > 0 && g.c > 0,
                    op << ": expected positive sizes, got n=" << g.n << " h=" << g.h << " w=" << g.w
                       << " c=" << g.c);
    MINICNN_REQUIRE(g.kh > 0 && g.kw > 0 && g.sh > 0 && g.sw > 0,
                    op << ": expected positive window and stride, got window (" << g.kh << ", "
                       << g.kw << ") stride (" << g.sh << ", " << g.sw << ")");
    const std::int64_t oh = (g.h - g.kh) / g.sh + 1;
    const std::int64_t ow = (g.w - g.kw) / g.sw + 1;
    MINICNN_REQUIRE(g.h >= g.kh && g.w >= g.kw && g.oh == oh && g.ow == ow,
                    op << ": output size (" << g.oh << ", " << g.ow << ") does not match input ("
                       << g.h << ", " << g.w << "), window (" << g.kh << ", " << g.kw
                       << ") and stride (" << g.sh << ", " << g.sw << "); expected (" << oh << ", "
                       << ow << ")");
}

}  // namespace minicnn
