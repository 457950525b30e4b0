#!/usr/bin/python3
"""fuzz/make_corpus.py — writes the seed corpora fuzz/corpus/idx/, fuzz/corpus/checkpoint/ and
fuzz/corpus/safetensors/.

Small valid files and slightly broken ones, a few KB in all. The checkpoint writer here is a second,
independent implementation of the format in include/minicnn/checkpoint.h (tests/test_checkpoint.cpp
checks that the C++ loader reads its output). Run with /usr/bin/python3 from the repository root.
"""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def idx_images(count, rows, cols, payload=None):
    if payload is None:
        payload = bytes((k * 37 + 11) % 256 for k in range(count * rows * cols))
    return struct.pack(">IIII", 0x803, count, rows, cols) + payload


def idx_labels(labels, count=None):
    return struct.pack(">II", 0x801, len(labels) if count is None else count) + bytes(labels)


def gz(b):
    return gzip.compress(b, compresslevel=9, mtime=0)


DTYPES = {"f32": (0, 4), "f64": (1, 8), "i32": (2, 4)}


def checkpoint(meta, arrays):
    """meta: [(key, value bytes)], arrays: [(name, dtype, shape, data bytes)]."""
    body = b""
    for k, v in meta:
        kb = k.encode()
        body += struct.pack("<I", len(kb)) + kb + struct.pack("<Q", len(v)) + v
    for name, dt, shape, data in arrays:
        nb = name.encode()
        code, size = DTYPES[dt]
        n = 1
        for d in shape:
            n *= d
        assert len(data) == n * size
        body += struct.pack("<I", len(nb)) + nb + struct.pack("<II", code, len(shape))
        body += b"".join(struct.pack("<q", d) for d in shape) + struct.pack("<Q", len(data)) + data
    size = 32 + len(body) + 4
    head = b"MCNNCKPT" + struct.pack("<IIQII", 1, 0, size, len(meta), len(arrays))
    out = head + body
    return out + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)


def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, data bytes)], laid out in order."""
    header, off = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def write(sub, name, data):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    img = idx_images(2, 3, 4)
    write("idx", "images-2x3x4", img)
    write("idx", "images-2x3x4.gz", gz(img))
    write("idx", "images-1x28x28.gz", gz(idx_images(1, 28, 28)))
    write("idx", "labels-5", idx_labels([0, 9, 3, 3, 7]))
    write("idx", "labels-5.gz", gz(idx_labels([0, 9, 3, 3, 7])))
    write("idx", "images-truncated", img[:-3])
    write("idx", "images-trailing", img + b"xyz")
    write("idx", "images-huge-count", idx_images(0x7FFFFFFF, 28, 28, b"\0" * 20))
    write("idx", "images-huge-count.gz", gz(idx_images(0x7FFFFFFF, 28, 28, b"\0" * 20)))
    write("idx", "images-zero-rows", idx_images(3, 0, 4, b""))
    write("idx", "labels-wrong-magic", struct.pack(">II", 0x03080000, 2) + b"\1\2")
    write("idx", "multi-member.gz", gz(img[:20]) + gz(img[20:]))
    write("idx", "gzip-truncated.gz", gz(img)[:-5])

    ck = checkpoint(
        [("epoch", b"3"), ("rng", b"mt19937 5489"), ("optimizer", b"adam lr=0.001 b1=0.9 b2=0.999")],
        [("conv1.W", "f32", (2, 2, 1, 1), struct.pack("<4f", 1, -2, 0.5, 4)),
         ("conv1.b", "f64", (1, 1, 1, 1), struct.pack("<d", 0.25)),
         ("mask", "i32", (3,), struct.pack("<3i", 0, 1, -1)),
         ("empty", "f32", (0, 5), b""),
         ("scalar", "f32", (), struct.pack("<f", 42))])
    write("checkpoint", "valid", ck)
    write("checkpoint", "empty", checkpoint([], []))
    write("checkpoint", "meta-only", checkpoint([("k", b"v\0\xff")], []))
    write("checkpoint", "truncated", ck[:-7])
    bad = bytearray(ck)
    bad[40] ^= 0x10
    write("checkpoint", "bad-crc", bytes(bad))
    newer = bytearray(ck[:-4])
    newer[8] = 2
    write("checkpoint", "newer-version", bytes(newer) + struct.pack("<I", zlib.crc32(newer) & 0xFFFFFFFF))

    st = safetensors(
        [("conv2d.weight", "F32", (2, 1, 2, 2), struct.pack("<8f", *range(8))),
         ("conv2d.bias", "F32", (2,), struct.pack("<2f", 0.5, -1)),
         ("steps", "I64", (), struct.pack("<q", 7)),
         ("empty", "F64", (0, 3), b""),
         ("half", "BF16", (3,), b"\x80\x3f\x00\x40\x40\x40")],
        metadata={"format": "pt"})
    write("safetensors", "valid", st)
    write("safetensors", "empty", safetensors([]))
    write("safetensors", "unpadded", safetensors([("a", "U8", (3,), b"xyz")], pad=False))
    write("safetensors", "truncated", st[:-5])
    overlap = json.dumps({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                          "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}},
                         separators=(",", ":")).encode()
    write("safetensors", "overlap", struct.pack("<Q", len(overlap)) + overlap + b"abc")
    write("safetensors", "huge-header", struct.pack("<Q", 1 << 62) + b"{}")


if __name__ == "__main__":
    main()
