// host/safetensors.cpp — the safetensors format (minicnn/export.h): serialiser and validating
// parser, nlohmann-json for the header. The model's weights in that format are
// host/torch_layout.cpp's.
//
// The parser reads the 8-byte header length, checks it against the bytes that follow, parses the
// JSON without exceptions (a callback refuses a duplicate name as it is read: nlohmann-json would
// keep the last one silently), checks each entry in full, and only then copies the data: every
// size and offset is checked, with overflow in mind, before it is used.
#include "minicnn/export.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "minicnn/error.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors stores little-endian data; minicnn copies it as is (a little-endian host only)"
#endif

namespace minicnn {

// ---- the format ---------------------------------------------------------------------------------

const SafetensorsTensor* Safetensors::find(const std::string& name) const {
    for (const SafetensorsTensor& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

namespace {

using json = nlohmann::json;

// Bytes per element of the format's dtypes; 0 for an unknown one.
std::size_t st_dtype_size(const std::string& d) {
    static const std::map<std::string, std::size_t> sizes = {
        {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
        {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
        {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8}};
    const auto it = sizes.find(d);
    return it == sizes.end() ? 0 : it->second;
}

// numel * elem_size, or false on overflow past 2^63.
bool byte_count(const Shape& shape, std::size_t elem, std::uint64_t& out) {
    std::uint64_t n = elem;
    for (std::int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, std::uint64_t(d), &n)) return false;
    }
    if (n > std::uint64_t(std::numeric_limits<std::int64_t>::max())) return false;
    out = n;
    return true;
}

// A JSON value as a non-negative integer (JSON numbers that are whole and fit in int64).
bool as_count(const json& v, std::uint64_t& out) {
    if (v.is_number_unsigned()) {
        out = v.get<std::uint64_t>();
        return out <= std::uint64_t(std::numeric_limits<std::int64_t>::max());
    }
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
        out = std::uint64_t(v.get<std::int64_t>());
        return true;
    }
    return false;
}

struct Entry {
    SafetensorsTensor t;
    std::uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& name, const json& v, const std::string& file) {
    const std::string where = file + ": tensor '" + name + "'";
    MINICNN_REQUIRE(!name.empty(), file << ": a tensor with an empty name");
    MINICNN_REQUIRE(v.is_object(), where << ": expected an object {\"dtype\", \"shape\", "
                                            "\"data_offsets\"}, got "
                                         << v.type_name());
    for (auto it = v.begin(); it != v.end(); ++it) {
        MINICNN_REQUIRE(
            it.key() == "dtype" || it.key() == "shape" || it.key() == "data_offsets",
            where << ": unknown field '" << it.key() << "' (expected dtype, shape, data_offsets)");
    }
    for (const char* f : {"dtype", "shape", "data_offsets"})
        MINICNN_REQUIRE(v.contains(f), where << ": the field '" << f << "' is missing");
    Entry e;
    e.t.name = name;
    const json& dt = v["dtype"];
    MINICNN_REQUIRE(dt.is_string(), where << ": dtype must be a string, got " << dt.dump());
    e.t.dtype = dt.get<std::string>();
    const std::size_t elem = st_dtype_size(e.t.dtype);
    MINICNN_REQUIRE(elem > 0, where << ": unknown dtype '" << e.t.dtype
                                    << "' (expected F32, F64, F16, BF16, I64, I32, ...)");
    const json& sh = v["shape"];
    MINICNN_REQUIRE(
        sh.is_array() && sh.size() <= 64,
        where << ": shape must be an array of at most 64 sizes, got " << sh.dump().substr(0, 80));
    for (const json& d : sh) {
        std::uint64_t n = 0;
        MINICNN_REQUIRE(as_count(d, n), where << ": shape " << sh.dump().substr(0, 80) << " holds "
                                              << d.dump().substr(0, 40)
                                              << " (sizes are integers >= 0)");
        e.t.shape.push_back(std::int64_t(n));
    }
    const json& off = v["data_offsets"];
    MINICNN_REQUIRE(
        off.is_array() && off.size() == 2 && as_count(off[0], e.begin) && as_count(off[1], e.end),
        where << ": data_offsets must be [begin, end] (integers >= 0), got "
              << off.dump().substr(0, 80));
    MINICNN_REQUIRE(e.begin <= e.end, where << ": data_offsets [" << e.begin << ", " << e.end
                                            << "] end before they begin");
    std::uint64_t bytes = 0;
    MINICNN_REQUIRE(byte_count(e.t.shape, elem, bytes),
                    where << ": shape " << shape_str(e.t.shape) << " is too large");
    MINICNN_REQUIRE(e.end - e.begin == bytes, where << ": dtype " << e.t.dtype << " and shape "
                                                    << shape_str(e.t.shape) << " need " << bytes
                                                    << " bytes, data_offsets [" << e.begin << ", "
                                                    << e.end << "] hold " << e.end - e.begin);
    return e;
}

}  // namespace

std::vector<std::uint8_t> serialize_safetensors(const Safetensors& st) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!st.metadata.empty()) {
        nlohmann::ordered_json meta = nlohmann::ordered_json::object();
        for (const auto& [k, v] : st.metadata) meta[k] = v;
        header["__metadata__"] = meta;
    }
    std::uint64_t offset = 0;
    std::set<std::string> names;
    for (const SafetensorsTensor& t : st.tensors) {
        MINICNN_REQUIRE(!t.name.empty() && t.name != "__metadata__",
                        "serialize_safetensors: bad tensor name '" << t.name << "'");
        MINICNN_REQUIRE(names.insert(t.name).second,
                        "serialize_safetensors: tensor '" << t.name << "' appears twice");
        const std::size_t elem = st_dtype_size(t.dtype);
        std::uint64_t bytes = 0;
        MINICNN_REQUIRE(elem > 0 && byte_count(t.shape, elem, bytes) && bytes == t.bytes.size(),
                        "serialize_safetensors: tensor '"
                            << t.name << "' (dtype " << t.dtype << ", shape " << shape_str(t.shape)
                            << ") holds " << t.bytes.size() << " bytes");
        header[t.name] = {
            {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::vector<std::uint8_t> out(8 + text.size() + offset);
    const std::uint64_t n = text.size();
    std::memcpy(out.data(), &n, 8);
    std::memcpy(out.data() + 8, text.data(), text.size());
    std::size_t pos = 8 + text.size();
    for (const SafetensorsTensor& t : st.tensors) {
        if (!t.bytes.empty()) std::memcpy(out.data() + pos, t.bytes.data(), t.bytes.size());
        pos += t.bytes.size();
    }
    return out;
}

Safetensors parse_safetensors(const std::uint8_t* data, std::size_t size, const std::string& name) {
    const std::string file = "safetensors file '" + name + "'";
    MINICNN_REQUIRE(size >= 8, file << ": truncated: " << size
                                    << " bytes, but the file starts with an 8-byte header length");
    std::uint64_t header_len = 0;
    std::memcpy(&header_len, data, 8);
    MINICNN_REQUIRE(header_len <= size - 8,
                    file << ": the header length " << header_len << " exceeds the " << size - 8
                         << " bytes that follow it (truncated or not safetensors)");
    const char* text = reinterpret_cast<const char*>(data + 8);

    // Names seen at the top level, so that a duplicate is refused as it is read.
    std::set<std::string> keys;
    std::string duplicate;
    const json::parser_callback_t refuse_duplicates = [&](int depth, json::parse_event_t event,
                                                          json& parsed) {
        if (depth == 1 && event == json::parse_event_t::key && parsed.is_string()) {
            if (!keys.insert(parsed.get<std::string>()).second && duplicate.empty())
                duplicate = parsed.get<std::string>();
        }
        return true;
    };
    const json header =
        json::parse(text, text + header_len, refuse_duplicates, /*allow_exceptions=*/false);
    MINICNN_REQUIRE(!header.is_discarded(),
                    file << ": the " << header_len << "-byte header is not valid JSON");
    MINICNN_REQUIRE(duplicate.empty(), file << ": tensor '" << duplicate << "' appears twice");
    MINICNN_REQUIRE(header.is_object(),
                    file << ": the header must be a JSON object, got " << header.type_name());

    Safetensors out;
    std::vector<Entry> entries;
    for (auto it = header.begin(); it != header.end(); ++it) {
        if (it.key() == "__metadata__") {
            MINICNN_REQUIRE(it.value().is_object(),
                            file << ": __metadata__ must be an object of strings");
            for (auto m = it.value().begin(); m != it.value().end(); ++m) {
                MINICNN_REQUIRE(m.value().is_string(), file << ": __metadata__ '" << m.key()
                                                            << "' must be a string, got "
                                                            << m.value().type_name());
                out.metadata.emplace_back(m.key(), m.value().get<std::string>());
            }
            continue;
        }
        entries.push_back(parse_entry(it.key(), it.value(), file));
    }

    // The entries must tile the data section: in offset order, each begins where the last ended.
    const std::uint64_t data_len = size - 8 - header_len;
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t pos = 0;
    const Entry* prev = nullptr;
    for (const Entry& e : entries) {
        MINICNN_REQUIRE(e.end <= data_len, file << ": tensor '" << e.t.name << "' data_offsets ["
                                                << e.begin << ", " << e.end
                                                << "] exceed the data section of " << data_len
                                                << " bytes (truncated?)");
        MINICNN_REQUIRE(e.begin >= pos, file << ": tensor '" << e.t.name << "' data_offsets ["
                                             << e.begin << ", " << e.end << "] overlap tensor '"
                                             << prev->t.name << "' [" << prev->begin << ", "
                                             << prev->end << "]");
        MINICNN_REQUIRE(e.begin == pos, file << ": tensor '" << e.t.name << "' begins at "
                                             << e.begin << " but the data before it ends at " << pos
                                             << " (a hole in the data section)");
        pos = e.end;
        prev = &e;
    }
    MINICNN_REQUIRE(pos == data_len, file << ": the tensors end at " << pos
                                          << " but the data section holds " << data_len
                                          << " bytes (bytes no tensor names)");
    const std::uint8_t* base = data + 8 + header_len;
    for (Entry& e : entries) {
        e.t.bytes.assign(base + e.begin, base + e.end);
        out.tensors.push_back(std::move(e.t));
    }
    return out;
}

}  // namespace minicnn
