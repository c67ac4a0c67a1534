"""Sends pre-signed requests (a gen.py file) over keep-alive connections and
reads each answer: a load generator for the instruction-count profile, where
the gateway runs under valgrind and so a slow, exact client is what is needed.

    send.py PORT FILE RECORD_BYTES COUNT CONNECTIONS

Prints `sent <n> 2xx <n>`. Exits 1 if any answer is not 2xx.
"""

import socket
import sys
import threading


def read_answer(sock, buffer):
    """One HTTP/1.1 answer (status, rest of the buffer)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[length:]


def main():
    port, path, size, count, connections = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    with open(path, "rb") as f:
        data = f.read(size * count)
    if len(data) < size * count:
        sys.exit(f"send.py: {path} holds fewer than {count} requests")
    ok = [0] * connections

    def worker(w):
        sock = socket.create_connection(("127.0.0.1", int(port)))
        buffer = b""
        for i in range(w, count, connections):
            sock.sendall(data[i * size:(i + 1) * size])
            status, buffer = read_answer(sock, buffer)
            ok[w] += 200 <= status < 300
        sock.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"sent {count} 2xx {sum(ok)}")
    sys.exit(0 if sum(ok) == count else 1)


if __name__ == "__main__":
    main()
