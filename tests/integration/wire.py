"""A minimal msgpack codec and frame client, so tests can send the manager
requests that the swarmpki command line never would (bad CSRs, oversized
frames). Only the msgpack types the protocol uses are supported."""

import socket
import ssl
import struct


def pack(value):
    if isinstance(value, bool):
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        if value >= 0:
            return b"\xcf" + struct.pack(">Q", value)
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, str):
        data = value.encode()
        return b"\xdb" + struct.pack(">I", len(data)) + data
    if isinstance(value, bytes):
        return b"\xc6" + struct.pack(">I", len(value)) + value
    if isinstance(value, list):
        return b"\xdd" + struct.pack(">I", len(value)) + b"".join(pack(v) for v in value)
    if isinstance(value, dict):
        body = b"".join(pack(k) + pack(v) for k, v in value.items())
        return b"\xdf" + struct.pack(">I", len(value)) + body
    raise TypeError(f"cannot pack {type(value)}")


def unpack(data, pos=0):
    """Decode one value at pos; return (value, next position)."""
    b = data[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    if b >= 0xe0:
        return b - 0x100, pos
    if 0x80 <= b <= 0x8f:
        return unpack_map(data, pos, b & 0x0f)
    if 0x90 <= b <= 0x9f:
        return unpack_array(data, pos, b & 0x0f)
    if 0xa0 <= b <= 0xbf:
        n = b & 0x1f
        return data[pos:pos + n].decode(), pos + n
    fixed = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
             0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}
    if b in fixed:
        size = struct.calcsize(fixed[b])
        return struct.unpack(fixed[b], data[pos:pos + size])[0], pos + size
    if b in (0xc0, 0xc2, 0xc3):
        return {0xc0: None, 0xc2: False, 0xc3: True}[b], pos
    lengths = {0xd9: ">B", 0xda: ">H", 0xdb: ">I", 0xc4: ">B", 0xc5: ">H", 0xc6: ">I",
               0xdc: ">H", 0xdd: ">I", 0xde: ">H", 0xdf: ">I"}
    fmt = lengths[b]
    size = struct.calcsize(fmt)
    n = struct.unpack(fmt, data[pos:pos + size])[0]
    pos += size
    if b in (0xd9, 0xda, 0xdb):
        return data[pos:pos + n].decode(), pos + n
    if b in (0xc4, 0xc5, 0xc6):
        return bytes(data[pos:pos + n]), pos + n
    if b in (0xdc, 0xdd):
        return unpack_array(data, pos, n)
    return unpack_map(data, pos, n)


def unpack_array(data, pos, n):
    items = []
    for _ in range(n):
        item, pos = unpack(data, pos)
        items.append(item)
    return items, pos


def unpack_map(data, pos, n):
    result = {}
    for _ in range(n):
        key, pos = unpack(data, pos)
        value, pos = unpack(data, pos)
        result[key] = value
    return result, pos


def frame(message):
    body = pack(message)
    return struct.pack(">I", len(body)) + body


def tls_connect(addr, cert=None, key=None, timeout=10):
    """Open TLS to HOST:PORT without verifying the server, optionally with a
    client certificate."""
    host, port = addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    return ctx.wrap_socket(raw)


def read_frame(sock):
    header = recv_exact(sock, 4)
    if header is None:
        return None
    (length,) = struct.unpack(">I", header)
    body = recv_exact(sock, length)
    return unpack(body)[0] if body is not None else None


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def request(addr, message, cert=None, key=None):
    """Send one message over TLS and return the decoded response."""
    with tls_connect(addr, cert, key) as sock:
        sock.sendall(frame(message))
        return read_frame(sock)
