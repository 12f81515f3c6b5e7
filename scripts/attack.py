#!/usr/bin/python3
"""Hostile load for scripts/bench-attack.sh: from 127.0.0.2 and up, keep
CONNS connections per address open against each PORT, a third idle, a third
sending a request head that announces a large body and then two bytes of it
(or, on TLS ports, a TLS record header that announces 512 bytes and sends 4),
a third streaming garbage; a connection the server closes is opened again.
Runs until killed; prints what it holds every 5 seconds.

    attack.py ADDRESSES CONNS PLAIN_PORT TLS_PORT [TLS_PORT ...]
"""
import selectors
import socket
import sys
import time

SLOW_HTTP = b"POST /scep?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\nab"
SLOW_TLS = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC])
GARBAGE = b"\x5a" * 1024


def main():
    addresses, conns = int(sys.argv[1]), int(sys.argv[2])
    plain, tls = int(sys.argv[3]), [int(p) for p in sys.argv[4:]]
    targets = [(plain, False)] + [(p, True) for p in tls]
    sel = selectors.DefaultSelector()
    held = {}

    def open_one(src, port, is_tls, kind):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((src, 0))
            s.connect_ex(("127.0.0.1", port))
        except OSError:
            s.close()
            return
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, (src, port, is_tls, kind, False))
        held[s] = True

    slots = []
    for a in range(addresses):
        src = "127.0.0.%d" % (2 + a)
        for port, is_tls in targets:
            for i in range(conns):
                slots.append((src, port, is_tls, i % 3))
    for slot in slots:
        open_one(*slot)
    last = last_garbage = time.time()
    reopened = 0
    while True:
        for key, events in sel.select(timeout=0.5):
            s = key.fileobj
            src, port, is_tls, kind, sent = key.data
            if events & selectors.EVENT_READ:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                    held.pop(s, None)
                    reopened += 1
                    open_one(src, port, is_tls, kind)
                    continue
            if events & selectors.EVENT_WRITE:
                # Connected: the first (and, for garbage, every later) send.
                try:
                    if kind == 1:
                        s.send(SLOW_TLS if is_tls else SLOW_HTTP)
                    elif kind == 2:
                        s.send(GARBAGE)
                except OSError:
                    pass
                sel.modify(s, selectors.EVENT_READ, (src, port, is_tls, kind, True))
        # Garbage again, once a second, on every garbage connection.
        if time.time() - last_garbage > 1:
            last_garbage = time.time()
            for key in list(sel.get_map().values()):
                if key.data[3] == 2 and key.data[4]:
                    try:
                        key.fileobj.send(GARBAGE)
                    except OSError:
                        pass
        if time.time() - last > 5:
            print("attack: %d connections held, %d reopened" % (len(held), reopened), flush=True)
            last = time.time()


if __name__ == "__main__":
    main()
