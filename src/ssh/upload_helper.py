# The host side of munero-infra's compressed and delta uploads. It arrives on the channel's stdin
# ahead of the data (nothing is left on the host) and needs only what every trial host has:
# python3's standard library and the `zstd` command that cloud-init installs.
#
#   receive PART OFFSET          zstd stream on stdin -> PART from OFFSET on; prints the sha256 of
#                                all of PART (the kept prefix included)
#   follow PART SIZE             sha256 of PART from its first byte while an SFTP upload writes it,
#                                until SIZE bytes were read; the rest of stdin is the caller's
#                                lifeline: when it closes first, the follower stops (exit 1)
#   sums DEST BLOCK              8-byte block hashes of DEST on stdout, cached in DEST.blocks
#   rebuild DEST PART SIZE BLOCK MODE
#                                zstd delta stream on stdin + DEST's own blocks -> PART; prints the
#                                sha256 of PART; when it is the one the stream ends with, PART
#                                replaces DEST (mode MODE, its hash in DEST.sha256, its block
#                                hashes in DEST.blocks), else PART is removed
#
# Exit 3: the stream ended early or was damaged; 4: the delta does not fit the copy it refers to.
# The part is on disk (fdatasync) before it is reported: the rename that follows must not put a
# file that a crash could leave empty under the name a later deploy trusts by its recorded hash.
# Writeback starts behind the writes, so that flush waits for the last stretch, not the file.
import hashlib
import os
import struct
import subprocess
import sys
import zlib

CHUNK = 1 << 20
HLEN = 8
END = (1 << 64) - 1


FLUSH_EVERY = 32 << 20


class Writeback:
    """Starts the kernel's writeback of each FLUSH_EVERY bytes once written (POSIX_FADV_DONTNEED
    writes dirty pages out without waiting and leaves them cached), then `sync` waits for it."""

    def __init__(self, fd, start):
        self.fd, self.done = fd, start

    def wrote(self, upto):
        if upto - self.done >= FLUSH_EVERY:
            try:
                os.posix_fadvise(self.fd, self.done, upto - self.done, os.POSIX_FADV_DONTNEED)
            except (AttributeError, OSError):
                pass
            self.done = upto

    def sync(self):
        os.fdatasync(self.fd)


def die(msg, code=1):
    sys.stderr.write("upload helper: %s\n" % msg)
    sys.exit(code)


def unzstd():
    """zstd reads the rest of our stdin (the bytes after this script) and writes to a pipe."""
    try:
        z = subprocess.Popen(["zstd", "-dcq"], stdin=0, stdout=subprocess.PIPE, bufsize=0)
    except FileNotFoundError:
        die("no zstd command on this host", 127)
    try:
        import fcntl
        fcntl.fcntl(z.stdout.fileno(), 1031, CHUNK)  # F_SETPIPE_SZ: fewer, larger reads
    except (ImportError, OSError):
        pass
    return z


def end_stream(z, fd, wb, what):
    """Waits for zstd; a whole stream's part goes to disk before it is reported."""
    rc = z.wait()
    if rc == 0:
        wb.sync()
    os.close(fd)
    if rc != 0:
        die("the compressed %s ended early or was damaged (zstd exit %d)" % (what, rc), 3)


def read_exact(f, n):
    parts, left = [], n
    while left:
        b = f.read(min(left, CHUNK))
        if not b:
            die("the stream ended early", 3)
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


def block_hash(b):
    return struct.pack(">II", zlib.crc32(b), zlib.adler32(b))


def nblocks(size, block):
    return (size + block - 1) // block


def recorded_sha(dest):
    try:
        with open(dest + ".sha256") as f:
            return f.read(64) or "-"
    except OSError:
        return "-"


def cache_header(path, block, sha):
    st = os.stat(path)
    return ("munero-blocks 2 %d %d %d %s\n" % (block, st.st_size, st.st_mtime_ns, sha)).encode()


def cached_sums(dest, block):
    """The cached hashes while DEST's size, mtime and recorded sha256 are those they describe."""
    try:
        with open(dest + ".blocks", "rb") as c:
            if c.readline() != cache_header(dest, block, recorded_sha(dest)):
                return None
            data = c.read()
    except OSError:
        return None
    return data if len(data) == HLEN * nblocks(os.stat(dest).st_size, block) else None


def write_sums(path, header, sums):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(header)
        f.write(sums)
    os.replace(tmp, path)


def receive(part, offset):
    offset = int(offset)
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
    if os.fstat(fd).st_size < offset:
        die("%s holds fewer bytes than the %d to resume from" % (part, offset), 4)
    os.ftruncate(fd, offset)
    h = hashlib.sha256()
    left = offset
    while left:
        b = os.pread(fd, min(CHUNK, left), offset - left)
        if not b:
            die("%s shrank while it was read" % part, 4)
        h.update(b)
        left -= len(b)
    os.lseek(fd, offset, os.SEEK_SET)
    wb = Writeback(fd, offset)
    at = offset
    z = unzstd()
    while True:
        b = z.stdout.read(CHUNK)
        if not b:
            break
        h.update(b)
        view = memoryview(b)
        while view:
            view = view[os.write(fd, view):]
        at += len(b)
        wb.wrote(at)
    end_stream(z, fd, wb, "stream")
    print(h.hexdigest())


def follow(part, size):
    """One process reading the part from the page cache into one buffer (no pipes), starting its
    writeback behind itself so the upload's fsync waits for the last stretch only."""
    import select
    size = int(size)

    def gone(wait):
        ready = select.select([0], [], [], wait)[0]
        return ready and not os.read(0, 1)

    while True:
        try:
            fd = os.open(part, os.O_RDONLY)
            break
        except FileNotFoundError:
            if gone(0.01):
                sys.exit(1)
    h, view, wb, at = hashlib.sha256(), memoryview(bytearray(CHUNK)), Writeback(fd, 0), 0
    while at < size:
        k = os.readv(fd, [view[:min(CHUNK, size - at)]])
        if k:
            h.update(view[:k])
            at += k
            wb.wrote(at)
        elif gone(0.003):
            sys.exit(1)
    print(h.hexdigest())


def sums(dest, block):
    block = int(block)
    cached = cached_sums(dest, block)
    if cached is not None:
        sys.stdout.buffer.write(cached)
        return
    header = cache_header(dest, block, recorded_sha(dest))
    out = bytearray()
    step = max(1, CHUNK // block) * block
    with open(dest, "rb") as f:
        while True:
            b = f.read(step)
            if not b:
                break
            view = memoryview(b)
            for i in range(0, len(b), block):
                out += block_hash(view[i:i + block])
    # Only when DEST did not change while it was read is the cache true.
    if cache_header(dest, block, recorded_sha(dest)) == header:
        write_sums(dest + ".blocks", header, out)
    sys.stdout.buffer.write(out)


class Hasher:
    """sha256 of the part in order, on a thread: hashlib and pread let go of the GIL, so the
    hashing runs beside the copy. Items are bytes, or (start, end) of the old file to read."""

    def __init__(self, old_fd):
        import queue
        import threading
        self.old_fd, self.h, self.q, self.error = old_fd, hashlib.sha256(), queue.Queue(16), None
        self.t = threading.Thread(target=self.guarded, daemon=True)
        self.t.start()

    def guarded(self):
        try:
            self.run()
        except OSError as e:
            self.error = e
            while self.q.get() is not None:
                pass

    def run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            if isinstance(item, tuple):
                at, end = item
                while at < end:
                    b = os.pread(self.old_fd, min(4 * CHUNK, end - at), at)
                    self.h.update(b)
                    at += len(b)
            else:
                self.h.update(item)

    def hexdigest(self):
        self.q.put(None)
        self.t.join()
        if self.error:
            die("reading the host's copy to hash it: %s" % self.error)
        return self.h.hexdigest()


def copy_range(src, dst, start, end):
    """Bytes start..end of src to the same offsets of dst, in the kernel where it can."""
    while start < end:
        try:
            n = os.copy_file_range(src, dst, end - start, start, start)
        except (AttributeError, OSError):
            b = os.pread(src, min(CHUNK, end - start), start)
            n = os.pwrite(dst, b, start) if b else 0
        if n <= 0:
            die("copying bytes %d-%d of the host's copy failed" % (start, end), 4)
        start += n


def rebuild(dest, part, size, block, mode="600"):
    """The delta stream ends with the sha256 the file must have: when the rebuilt part has it,
    the helper renames it into place and records it (one exec for the whole redeploy); when not,
    it removes the part and the block hashes that misled it. Either way it prints the hash."""
    size, block, mode = int(size), int(block), int(mode, 8)
    n = nblocks(size, block)
    old_sums = cached_sums(dest, block)
    new_sums = bytearray(HLEN * n) if old_sums is not None else None
    old = os.open(dest, os.O_RDONLY)
    old_size = os.fstat(old).st_size
    out = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(out, 0o600)
    wb = Writeback(out, 0)
    h = Hasher(old)
    z = unzstd()
    stream = z.stdout
    at = 0

    def copy_old(upto):
        start, end = at * block, min(upto * block, size)
        if end <= start:
            return
        if end > old_size:
            die("the delta reuses bytes %d-%d but %s holds %d" % (start, end, dest, old_size), 4)
        h.q.put((start, end))
        while start < end:
            step = min(FLUSH_EVERY, end - start)
            copy_range(old, out, start, start + step)
            start += step
            wb.wrote(start)
        if new_sums is not None:
            new_sums[at * HLEN:upto * HLEN] = old_sums[at * HLEN:upto * HLEN]

    while True:
        start, count = struct.unpack("<QI", read_exact(stream, 12))
        if start == END:
            break
        if start < at or count == 0 or start + count > n:
            die("a delta record (%d, %d) is out of order or range" % (start, count), 4)
        copy_old(start)
        data = read_exact(stream, min((start + count) * block, size) - start * block)
        h.q.put(data)
        view = memoryview(data)
        off = start * block
        while view:
            k = os.pwrite(out, view, off)
            view, off = view[k:], off + k
        wb.wrote(off)
        if new_sums is not None:
            view = memoryview(data)
            for i in range(count):
                new_sums[(start + i) * HLEN:(start + i + 1) * HLEN] = block_hash(view[i * block:(i + 1) * block])
        at = start + count
    copy_old(n)
    want = read_exact(stream, 32).hex()
    if stream.read(1):
        die("data after the end of the delta", 4)
    end_stream(z, out, wb, "delta")
    sha = h.hexdigest()
    os.close(old)
    if sha != want:
        for f in (part, part + ".blocks", dest + ".blocks"):
            try:
                os.unlink(f)
            except OSError:
                pass
        print(sha)
        return
    os.chmod(part, mode)
    os.replace(part, dest)
    if new_sums is not None:
        write_sums(dest + ".blocks", cache_header(dest, block, sha), new_sums)
    else:
        try:
            os.unlink(dest + ".blocks")
        except OSError:
            pass
    write_sums(dest + ".sha256", b"", (sha + "\n").encode())
    print(sha)


MODES = {"receive": receive, "follow": follow, "sums": sums, "rebuild": rebuild}
MODES[sys.argv[1]](*sys.argv[2:])
