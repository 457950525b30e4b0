// host/file_io.h — reading a whole file and writing one atomically, for every file format of the
// library (checkpoints, safetensors, ONNX). Private to the library.
//
// write_file_atomic writes "<path>.tmp.<pid>", flushes and fsyncs it, renames it over `path` and
// fsyncs the directory: a reader sees the old file or the new one, never a mix. If anything fails
// the temporary file is removed, the previous file is left untouched, and an ArgumentError
// "<who>: cannot write '<path>': <step> '<tmp>' failed: <reason>; the previous <kind>, if any, is
// unchanged" says which step failed.
//
// read_file reads a regular file to its end (the buffer holds only bytes the file really has);
// errors are ArgumentErrors "<what> '<path>' not found", "... is not a regular file", ...
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace minicnn {

void write_file_atomic(const std::string& path, const std::vector<std::uint8_t>& bytes,
                       const std::string& who, const std::string& kind);

std::vector<std::uint8_t> read_file(const std::string& path, const std::string& what);

}  // namespace minicnn
