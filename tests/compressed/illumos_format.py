#!/usr/bin/env -S python3 -I -S
"""Independent test-only encoder/decoder for the illumos lofi compressed image
format (what `lofiadm -C` writes).  Used by the VM tests to cross-check the
kernel driver and lofiadm; it deliberately shares no code with lofiadm.

Layout (integers big-endian):
    char algorithm[36]     NUL-padded name
    u32  segment_size      power of two
    u32  index_entries     segments + 1 (last entry is an end sentinel)
    u32  last_segment_size uncompressed size of the final segment
    u64  index[index_entries]  offsets relative to the end of header+index
    segments: 1 type byte (0 stored, 1 compressed) + data
    zero padding to a multiple of 512 bytes

Exit status: 0 ok, 1 I/O or input error, 2 malformed image, 3 algorithm not
supported by this decoder (zstd, lz4), 64 usage error, 70 internal error.
"""

import argparse
import lzma
import random
import struct
import sys
import zlib

HEADER = struct.Struct(">36sIII")
NAME_LEN = 36
SECTOR = 512
MIN_SEG = 512
MAX_SEG = 8 << 20
DEFAULT_SEG = 131072
# lofiadm keeps a segment compressed only if that saves at least this much;
# tiny savings are not worth a decompression on every read.
COMPRESS_THRESHOLD = 2048
SEG_STORED = 0
SEG_COMPRESSED = 1

# name -> (family, zlib level)
ALGORITHMS = {
    "gzip": ("zlib", 6),
    "gzip-6": ("zlib", 6),
    "gzip-9": ("zlib", 9),
    "lzma": ("lzma", None),
}
# Valid in lofi, but Python's stdlib cannot decode them.
UNSUPPORTED = ("zstd", "lz4")

LZMA_DICT = 1 << 23
LZMA_LC, LZMA_LP, LZMA_PB = 3, 0, 2
LZMA_HDR = 13  # 5 property bytes + u64 LE uncompressed size


class FormatError(Exception):
    """The image violates the format (exit 2)."""


class Unsupported(Exception):
    """Known lofi algorithm this decoder cannot handle (exit 3)."""


class InputError(Exception):
    """Bad input to a command other than a malformed image (exit 1)."""


# ---------------------------------------------------------------- parsing

class Image:
    def __init__(self, buf):
        self.buf = buf
        if len(buf) < HEADER.size:
            raise FormatError("file too short for the %d-byte header (%d bytes)"
                              % (HEADER.size, len(buf)))
        raw, self.seg_size, self.entries, self.last_size = HEADER.unpack_from(buf, 0)
        nul = raw.find(b"\0")
        if nul <= 0:
            raise FormatError("algorithm name empty or not NUL-terminated")
        # Strict: bytes after the terminator must be NUL too, so that any
        # change to the name field is noticed.
        if raw[nul:].strip(b"\0"):
            raise FormatError("junk after NUL in algorithm name")
        try:
            self.name = raw[:nul].decode("ascii")
        except UnicodeDecodeError:
            raise FormatError("algorithm name is not ASCII") from None
        if self.name in UNSUPPORTED:
            self.family = None
        elif self.name in ALGORITHMS:
            self.family = ALGORITHMS[self.name][0]
        else:
            raise FormatError("unknown algorithm %r" % self.name)
        s = self.seg_size
        if s < MIN_SEG or s > MAX_SEG or s & (s - 1):
            raise FormatError("segment size %d is not a power of two in %d..%d"
                              % (s, MIN_SEG, MAX_SEG))
        if self.entries < 2:
            raise FormatError("index has %d entries, need at least 2" % self.entries)
        self.base = HEADER.size + 8 * self.entries
        # Check before unpacking so a huge entry count cannot exhaust memory.
        if self.base > len(buf):
            raise FormatError("index of %d entries extends past end of file"
                              % self.entries)
        if not 1 <= self.last_size <= s:
            raise FormatError("last segment size %d not in 1..%d" % (self.last_size, s))
        self.index = struct.unpack_from(">%dQ" % self.entries, buf, HEADER.size)
        if self.index[0] != 0:
            raise FormatError("index[0] is %d, must be 0" % self.index[0])
        for i in range(1, self.entries):
            if self.index[i] <= self.index[i - 1]:
                raise FormatError("index not strictly increasing at entry %d" % i)
        self.data_end = self.base + self.index[-1]
        if self.data_end > len(buf):
            raise FormatError("sentinel points to %d, past end of file (%d)"
                              % (self.data_end, len(buf)))
        self.segments = self.entries - 1
        self.usize = (self.segments - 1) * s + self.last_size

    def seg_usize(self, i):
        return self.last_size if i == self.segments - 1 else self.seg_size

    def segment(self, i):
        """(type byte, payload) with the structural checks applied."""
        start = self.base + self.index[i]
        end = self.base + self.index[i + 1]
        kind = self.buf[start]
        payload = self.buf[start + 1:end]
        if kind == SEG_STORED:
            if len(payload) != self.seg_usize(i):
                raise FormatError("segment %d: stored length %d, expected %d"
                                  % (i, len(payload), self.seg_usize(i)))
        elif kind != SEG_COMPRESSED:
            raise FormatError("segment %d: unknown type byte %d" % (i, kind))
        return kind, payload

    def decode_segment(self, i):
        kind, payload = self.segment(i)
        if kind == SEG_STORED:
            return payload
        if self.family is None:
            raise Unsupported("algorithm %r is unsupported by this decoder" % self.name)
        want = self.seg_usize(i)
        try:
            if self.family == "zlib":
                out = zlib_decode(payload, want)
            else:
                out = lzma_decode(payload, want)
        except (zlib.error, lzma.LZMAError, ValueError, MemoryError, EOFError) as e:
            raise FormatError("segment %d: %s: %s" % (i, self.family, e)) from None
        except FormatError as e:
            raise FormatError("segment %d: %s" % (i, e)) from None
        return out

    def decode(self):
        if self.family is None:
            raise Unsupported("algorithm %r is unsupported by this decoder" % self.name)
        return b"".join(self.decode_segment(i) for i in range(self.segments))


def zlib_decode(payload, want):
    d = zlib.decompressobj()
    out = d.decompress(payload, want)
    if len(out) == want and not d.eof:
        # Output is complete but the stream end (adler32) may still follow.
        if d.decompress(d.unconsumed_tail, 1):
            raise FormatError("decodes to more than %d bytes" % want)
    if len(out) < want:
        raise FormatError("decodes to only %d of %d bytes" % (len(out), want))
    if not d.eof:
        raise FormatError("zlib stream incomplete")
    if d.unused_data:
        raise FormatError("%d trailing bytes after zlib stream" % len(d.unused_data))
    return out


def lzma_decode(payload, want):
    if len(payload) < LZMA_HDR:
        raise FormatError("payload shorter than the %d-byte lzma header" % LZMA_HDR)
    props = payload[0]
    if props >= 9 * 5 * 5:
        raise FormatError("invalid lzma properties byte 0x%02x" % props)
    lc, rest = props % 9, props // 9
    lp, pb = rest % 5, rest // 5
    dict_size = int.from_bytes(payload[1:5], "little")
    size = int.from_bytes(payload[5:13], "little")
    if size != want:
        raise FormatError("lzma header says %d bytes, index implies %d" % (size, want))
    d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[{
        "id": lzma.FILTER_LZMA1, "dict_size": max(dict_size, 4096),
        "lc": lc, "lp": lp, "pb": pb}])
    # max_length: illumos writes no end-of-payload marker, so the expected
    # size is what tells us where the stream stops.
    out = d.decompress(payload[LZMA_HDR:], max_length=want)
    if len(out) < want:
        raise FormatError("decodes to only %d of %d bytes" % (len(out), want))
    if not d.eof and d.decompress(b"", max_length=1):
        raise FormatError("decodes to more than %d bytes" % want)
    # With an end marker we can also tell whether the segment is too long.
    if d.eof and d.unused_data:
        raise FormatError("%d trailing bytes after lzma end marker" % len(d.unused_data))
    return out


# ---------------------------------------------------------------- encoding

def compress_segment(family, level, data):
    if family == "zlib":
        return zlib.compress(data, level)
    body = lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{
        "id": lzma.FILTER_LZMA1, "dict_size": LZMA_DICT,
        "lc": LZMA_LC, "lp": LZMA_LP, "pb": LZMA_PB, "preset": 6}])
    props = (LZMA_PB * 5 + LZMA_LP) * 9 + LZMA_LC
    return (bytes([props]) + LZMA_DICT.to_bytes(4, "little")
            + len(data).to_bytes(8, "little") + body)


def encode(data, algorithm, seg_size):
    family, level = ALGORITHMS[algorithm]
    segs = []
    for off in range(0, len(data), seg_size):
        chunk = data[off:off + seg_size]
        comp = None
        # Threshold is relative to the full segment size, even for a short
        # last segment, as in lofiadm.
        if seg_size > COMPRESS_THRESHOLD:
            comp = compress_segment(family, level, chunk)
            if len(comp) > seg_size - COMPRESS_THRESHOLD:
                comp = None
        segs.append(bytes([SEG_STORED]) + chunk if comp is None
                    else bytes([SEG_COMPRESSED]) + comp)
    index = [0]
    for s in segs:
        index.append(index[-1] + len(s))
    last = len(data) - (len(segs) - 1) * seg_size
    out = bytearray(HEADER.pack(algorithm.encode(), seg_size, len(index), last))
    out += struct.pack(">%dQ" % len(index), *index)
    for s in segs:
        out += s
    out += bytes(-len(out) % SECTOR)
    return bytes(out)


# ---------------------------------------------------------------- corruption

def _attempt_header(buf, img, rng):
    b = bytearray(buf)
    if rng.random() < 0.5:
        field, off = rng.choice([("segment_size", 36), ("index_entries", 40),
                                 ("last_segment_size", 44)])
        old = int.from_bytes(b[off:off + 4], "big")
        new = rng.choice([0, 1, 256, old + 1, max(old - 1, 0), old * 2, old // 2,
                          0xFFFFFFFF, rng.randrange(1 << 32)])
        if new == old:
            new = old ^ 1
        b[off:off + 4] = new.to_bytes(4, "big")
        return bytes(b), "header: %s %d -> %d" % (field, old, new)
    changes = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        pos = rng.randrange(36, 48) if rng.random() < 0.7 else rng.randrange(0, 36)
        old = b[pos]
        b[pos] = (old + rng.randrange(1, 256)) & 0xFF
        changes.append("byte %d 0x%02x->0x%02x" % (pos, old, b[pos]))
    return bytes(b), "header: " + ", ".join(changes)


def _attempt_index(buf, img, rng):
    b = bytearray(buf)
    n = img.entries
    idx = list(img.index)
    mode = rng.choice(["bytes", "decreasing", "past-end", "huge", "first"])
    if mode == "bytes":
        changes = []
        for _ in range(rng.choice([1, 1, 2])):
            pos = HEADER.size + rng.randrange(8 * n)
            old = b[pos]
            b[pos] = (old + rng.randrange(1, 256)) & 0xFF
            changes.append("byte %d 0x%02x->0x%02x" % (pos, old, b[pos]))
        return bytes(b), "index: " + ", ".join(changes)
    if mode == "first":
        i, new = 0, rng.randrange(1, idx[1] + 16)
    else:
        i = rng.randrange(1, n)
        if mode == "decreasing":
            new = rng.randrange(0, idx[i - 1] + 1)
        elif mode == "past-end":
            new = len(buf) - img.base + rng.randrange(1, 1 << 20)
        else:
            new = rng.choice([1 << 63, (1 << 64) - 1, rng.randrange(1 << 40, 1 << 64)])
    old = idx[i]
    struct.pack_into(">Q", b, HEADER.size + 8 * i, new)
    return bytes(b), "index: %s entry %d %d -> %d" % (mode, i, old, new)


def _attempt_segment(buf, img, rng):
    comp = [i for i in range(img.segments) if img.segment(i)[0] == SEG_COMPRESSED]
    if not comp:
        raise InputError("image has no compressed segment to damage")
    i = rng.choice(comp)
    start = img.base + img.index[i] + 1   # keep the type byte
    end = img.base + img.index[i + 1]
    b = bytearray(buf)
    offs = sorted({rng.randrange(start, end) for _ in range(rng.choice([1, 1, 2, 4, 8]))})
    for p in offs:
        b[p] ^= rng.randrange(1, 256)
    return bytes(b), "segment %d (%d payload bytes): flipped payload offsets %s" % (
        i, end - start, ",".join(str(p - start) for p in offs))


def _attempt_truncate(buf, img, rng):
    # Every multiple of 512 below the end of the data cuts into it.
    cut = SECTOR * rng.randrange(0, (img.data_end - 1) // SECTOR + 1)
    return buf[:cut], "truncate: %d -> %d bytes" % (len(buf), cut)


ATTEMPTS = {"header": _attempt_header, "index": _attempt_index,
            "segment": _attempt_segment, "truncate": _attempt_truncate}


def corrupt(buf, part, seed):
    img = Image(buf)
    original = img.decode()
    # A string seed hashes the same on every run (random uses sha512 on it).
    rng = random.Random("%s:%d" % (part, seed))
    for _ in range(200):
        new, desc = ATTEMPTS[part](buf, img, rng)
        # Redraw damage this decoder cannot tell apart from the original (e.g.
        # gzip-6 -> gzip-9, a flipped lzma dictionary-size byte above the
        # segment size, range-coder flush bytes never read) or that merely
        # renames it to zstd/lz4: every output must be genuinely broken.
        try:
            if Image(new).decode() == original:
                continue
        except Unsupported:
            continue
        except FormatError:
            pass
        return new, desc
    raise InputError("could not produce an effective corruption")


# ---------------------------------------------------------------- mkimage

WORDS = (b"the lofi driver maps a file onto a block device and decompresses "
         b"segments on demand each segment is stored or compressed with gzip or "
         b"lzma index entries point at segment offsets").split()


def mkimage(size, seed):
    rng = random.Random("mkimage:%d" % seed)
    out = bytearray()
    # Start with one text and one random region (seeded order) so that a
    # sample of a megabyte or so always yields both stored and compressed
    # 128 KiB segments; a random region of >= 272 KiB covers an aligned one.
    kinds = rng.sample(["text", "random"], 2)
    while len(out) < size:
        kind = kinds.pop(0) if kinds else rng.choice(["text", "zeros", "random", "mixed"])
        if kind == "random":
            n = rng.randrange(272 << 10, 400 << 10)
        else:
            n = rng.randrange(64 << 10, 320 << 10)
        out += region(rng, kind, n)
    return bytes(out[:size])


def region(rng, kind, n):
    if kind == "zeros":
        return bytes(n)
    if kind == "random":
        return rng.randbytes(n)
    if kind == "text":
        parts, total = [], 0
        while total < n:
            line = b" ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 14)))
            line += b" %d\n" % rng.randrange(100000)
            parts.append(line)
            total += len(line)
        return b"".join(parts)[:n]
    # mixed: small sub-regions, so small segment sizes see both kinds too
    out = bytearray()
    while len(out) < n:
        out += region(rng, rng.choice(["zeros", "random", "text"]),
                      rng.randrange(512, 8192))
    return bytes(out[:n])


# ---------------------------------------------------------------- CLI

def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def parse_size(text):
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower()
    try:
        if t and t[-1] in mult:
            return int(t[:-1]) * mult[t[-1]]
        return int(t, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("bad size %r" % text) from None


def cmd_encode(a):
    data = read_file(a.input)
    if not data or len(data) % SECTOR:
        raise InputError("input size %d is not a non-zero multiple of %d"
                         % (len(data), SECTOR))
    s = a.segment_size
    if s < MIN_SEG or s > MAX_SEG or s & (s - 1):
        raise InputError("segment size must be a power of two in %d..%d" % (MIN_SEG, MAX_SEG))
    write_file(a.output, encode(data, a.algorithm, s))


def cmd_decode(a):
    write_file(a.output, Image(read_file(a.input)).decode())


def cmd_info(a):
    img = Image(read_file(a.input))
    kinds = [img.segment(i)[0] for i in range(img.segments)]
    print("algorithm=%s" % img.name)
    print("segment_size=%d" % img.seg_size)
    print("segments=%d" % img.segments)
    print("last_segment_size=%d" % img.last_size)
    print("uncompressed_size=%d" % img.usize)
    print("stored_segments=%d" % kinds.count(SEG_STORED))
    print("compressed_segments=%d" % kinds.count(SEG_COMPRESSED))
    print("image_size=%d" % len(img.buf))
    print("decodable=%s" % ("no" if img.family is None else "yes"))


def cmd_corrupt(a):
    new, desc = corrupt(read_file(a.input), a.part, a.seed)
    write_file(a.output, new)
    print(desc)


def cmd_mkimage(a):
    if a.size <= 0:
        raise InputError("size must be positive")
    write_file(a.output, mkimage(a.size, a.seed))


class Parser(argparse.ArgumentParser):
    def error(self, message):
        # Keep exit 2 for "malformed image"; usage errors get EX_USAGE.
        self.print_usage(sys.stderr)
        print("%s: error: %s" % (self.prog, message), file=sys.stderr)
        sys.exit(64)


def main(argv=None):
    p = Parser(prog="illumos_format.py",
               description="test-only illumos lofi compressed image tool")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    e = sub.add_parser("encode")
    e.add_argument("--algorithm", choices=sorted(ALGORITHMS), default="gzip")
    e.add_argument("--segment-size", type=parse_size, default=DEFAULT_SEG)
    e.add_argument("input")
    e.add_argument("output")
    e.set_defaults(fn=cmd_encode)
    d = sub.add_parser("decode")
    d.add_argument("input")
    d.add_argument("output")
    d.set_defaults(fn=cmd_decode)
    i = sub.add_parser("info")
    i.add_argument("input")
    i.set_defaults(fn=cmd_info)
    c = sub.add_parser("corrupt")
    c.add_argument("--seed", type=int, required=True)
    c.add_argument("--part", choices=sorted(ATTEMPTS), required=True)
    c.add_argument("input")
    c.add_argument("output")
    c.set_defaults(fn=cmd_corrupt)
    m = sub.add_parser("mkimage")
    m.add_argument("--size", type=parse_size, required=True)
    m.add_argument("--seed", type=int, required=True)
    m.add_argument("output")
    m.set_defaults(fn=cmd_mkimage)
    a = p.parse_args(argv)
    prefix = "illumos_format.py %s: " % a.cmd
    try:
        a.fn(a)
    except FormatError as e:
        print(prefix + "malformed image: %s" % e, file=sys.stderr)
        return 2
    except Unsupported as e:
        print(prefix + str(e), file=sys.stderr)
        return 3
    except (InputError, OSError) as e:
        print(prefix + str(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback; still a distinct failure
        print(prefix + "internal error: %r" % e, file=sys.stderr)
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
