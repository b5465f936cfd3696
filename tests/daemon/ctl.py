#!/usr/bin/env python3
"""Control-socket helper for the ferryd tests (standard library only).

Usage: ctl.py COMMAND ARGS...   (see the functions below; each prints its
result and exits 0, or prints a reason to stderr and exits 1).
Every wait is bounded by a timeout in seconds.
"""
import json
import os
import random
import socket
import struct
import sys
import time


def die(msg):
    print("ctl.py: " + msg, file=sys.stderr)
    sys.exit(1)


def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


class Conn:
    """One connection; replies are read line by line."""

    def __init__(self, path, timeout=5.0):
        self.s = connect(path, timeout)
        self.buf = b""

    def send_raw(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def req(self, obj):
        self.send_raw((json.dumps(obj) + "\n").encode())
        return self.line()

    def close(self):
        self.s.close()


def req(path, obj, timeout=5.0):
    c = Conn(path, timeout)
    try:
        return c.req(obj)
    finally:
        c.close()


def ok(reply):
    if not reply.get("ok"):
        die("request failed: " + json.dumps(reply))
    return reply["result"]


def cmd_ports(n):
    """N distinct free UDP ports on 127.0.0.1."""
    socks = []
    for _ in range(int(n)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_wait_ready(path, timeout):
    end = time.time() + float(timeout)
    while time.time() < end:
        try:
            ok(req(path, {"cmd": "id"}, 1.0))
            return
        except (OSError, EOFError, ValueError):
            time.sleep(0.05)
    die("no answer on %s within %s s" % (path, timeout))


def cmd_req(path, text):
    c = Conn(path)
    c.send_raw(text.encode() + b"\n")
    print(json.dumps(c.line()))
    c.close()


def cmd_get(path, cmd, *keys):
    """Print result[k1][k2]... of a command without arguments."""
    v = ok(req(path, {"cmd": cmd}))
    for k in keys:
        v = v[int(k)] if isinstance(v, list) else v[k]
    print(v if not isinstance(v, (dict, list)) else json.dumps(v))


def cmd_wait_user(path, name, timeout):
    end = time.time() + float(timeout)
    while time.time() < end:
        users = ok(req(path, {"cmd": "users"}))["users"]
        if any(u["name"] == name for u in users):
            return
        time.sleep(0.1)
    die("user %s not known on %s within %s s" % (name, path, timeout))


def cmd_send(path, to, text):
    print(ok(req(path, {"cmd": "send", "to": to, "text": text}))["message_id"])


def inbox(path):
    """The whole inbox, read or not, a page at a time (a reply holds at most
    1,000 messages)."""
    msgs, after = [], 0
    for _ in range(10000):
        page = ok(req(path, {"cmd": "inbox", "after": after, "limit": 1000,
                             "mark_read": False}))["messages"]
        if not page:
            return msgs
        msgs += page
        after = page[-1]["seq"]
    die("inbox on %s: more than 10,000 pages" % path)


def cmd_wait_inbox(path, want_file, timeout):
    """Wait until every message id listed in want_file is in the inbox."""
    with open(want_file) as f:
        want = {line.split()[0] for line in f if line.strip()}
    end = time.time() + float(timeout)
    have = set()
    while time.time() < end:
        have = {m["message_id"] for m in inbox(path)}
        if want <= have:
            return
        time.sleep(0.2)
    die("%d of %d messages missing from the inbox after %s s" %
        (len(want - have), len(want), timeout))


def cmd_wait_status(path, mid, state, timeout):
    end = time.time() + float(timeout)
    while time.time() < end:
        if ok(req(path, {"cmd": "status", "message_id": mid}))["state"] == state:
            return
        time.sleep(0.1)
    die("message %s not %s within %s s" % (mid, state, timeout))


def cmd_inbox_has(path, mid, text):
    for m in inbox(path):
        if m["message_id"] == mid:
            if m["text"] != text:
                die("message %s has text %r, not %r" % (mid, m["text"], text))
            print(m["from_name"])
            return
    die("message %s not in the inbox" % mid)


def cmd_bad_requests(path):
    """The error replies of docs/API.md, all on one connection, which must
    stay usable; each check is followed by a working `id`."""
    c = Conn(path)

    def expect(data, code, with_id=None):
        c.send_raw(data)
        r = c.line()
        if r.get("ok") is not False or r["error"]["code"] != code:
            die("sent %r...: expected %s, got %s" % (data[:40], code, json.dumps(r)[:200]))
        if with_id is not None and r.get("id") != with_id:
            die("reply does not echo the id: " + json.dumps(r))
        r = c.req({"id": 7, "cmd": "id"})
        if not r.get("ok") or r.get("id") != 7:
            die("id after %s failed: %s" % (code, json.dumps(r)))

    expect(b'{"cmd": "id"\n', "bad_request")                   # truncated JSON
    expect(b'not json at all\n', "bad_request")
    expect(b'[1, 2, 3]\n', "bad_request")                      # not an object
    expect(b'"id"\n', "bad_request")
    expect(b'{"id": 1}\n', "bad_request", with_id=1)           # no cmd
    expect(b'{"id": 2, "cmd": 5}\n', "bad_request", with_id=2)  # cmd not a string
    expect(b'{"id": [3], "cmd": "fly"}\n', "unknown_command", with_id=[3])
    expect(b'{"cmd": "send", "to": "nobody-here", "text": "x"}\n', "unknown_user")
    expect(b'{"cmd": "send", "to": 5, "text": "x"}\n', "bad_request")
    expect(b'{"cmd": "status", "message_id": "zz"}\n', "bad_request")
    expect(b'{"cmd": "status", "message_id": "0011223344556677"}\n', "not_found")
    # 100 KB line: too_large, the rest of the line is discarded, and what
    # follows on the same connection is served.
    big = b'{"cmd": "id", "pad": "' + b"x" * 100000 + b'"}\n'
    expect(big, "too_large")
    # The limit itself: 65,536 bytes are served, 65,537 are not.
    head, tail = b'{"id": 9, "cmd": "id", "pad": "', b'"}'
    exact = head + b"y" * (65536 - len(head) - len(tail)) + tail
    assert len(exact) == 65536
    c.send_raw(exact + b"\n")
    r = c.line()
    if not r.get("ok") or r.get("id") != 9:
        die("a 65,536-byte request was not served: " + json.dumps(r)[:200])
    expect(head + b"y" * (65537 - len(head) - len(tail)) + tail + b"\n", "too_large")
    # A request split across many small writes is one request.
    msg = b'{"id": "split", "cmd": "id"}\n'
    for i in range(len(msg)):
        c.send_raw(msg[i:i + 1])
        time.sleep(0.001)
    r = c.line()
    if not r.get("ok") or r.get("id") != "split":
        die("split request failed: " + json.dumps(r))
    # Pipelined requests are answered in order.
    c.send_raw(b"".join(b'{"id": %d, "cmd": "id"}\n' % i for i in range(50)))
    for i in range(50):
        r = c.line()
        if r.get("id") != i:
            die("pipelined replies out of order: %s" % json.dumps(r))
    c.close()
    print("ok")


def garbage_frames(n, seed):
    """n datagrams that no decoder may accept, of several kinds."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:    # wrong protocol version
            first = rnd.choice([0x00, 0x80, 0xC0]) | rnd.randrange(64)
            body = bytes([first]) + rnd.randbytes(rnd.randrange(0, 1100))
        elif kind == 1:  # version 1, type 7: no such type
            body = bytes([0x40 | 0x38 | rnd.randrange(8)]) + rnd.randbytes(rnd.randrange(0, 200))
        elif kind == 2:  # a receipt of the wrong length
            ln = rnd.choice([n_ for n_ in range(1, 60) if n_ != 20])
            body = bytes([0x40 | (3 << 3)]) + rnd.randbytes(ln - 1)
        else:            # a private message shorter than its fixed header
            body = bytes([0x40]) + rnd.randbytes(rnd.randrange(0, 39))
        out.append(body)
    return out


def cmd_garbage(port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    frames = garbage_frames(int(n), 4747)
    for i in range(0, len(frames), 50):
        for f in frames[i:i + 50]:
            s.sendto(f, ("127.0.0.1", int(port)))
        time.sleep(0.01)  # stay within the receiver's socket buffer
    s.close()
    print(len(frames))


def cmd_wait_stat(path, section, key, minimum, timeout):
    end = time.time() + float(timeout)
    v = None
    while time.time() < end:
        v = ok(req(path, {"cmd": "stats"}))[section][key]
        if v >= int(minimum):
            print(v)
            return
        time.sleep(0.1)
    die("stats %s.%s is %s, wanted >= %s within %s s" % (section, key, v, minimum, timeout))


def cmd_flood(path, to, n, outfile):
    """Send n messages "msg-<i>" pipelined in small batches; append
    "<message_id> <i>" to outfile for every ok reply as it arrives. Ends
    quietly when the daemon goes away (the crash test kills it)."""
    c = Conn(path, timeout=10.0)
    out = open(outfile, "a", buffering=1)
    n = int(n)
    sent = got = 0
    try:
        while got < n:
            while sent < n and sent - got < 10:
                c.send_raw((json.dumps({"id": sent, "cmd": "send", "to": to,
                                        "text": "msg-%d" % sent}) + "\n").encode())
                sent += 1
            r = c.line()
            if r.get("ok"):
                out.write("%s %d\n" % (r["result"]["message_id"], r["id"]))
            got += 1
            time.sleep(0.002)
    except (OSError, EOFError, ValueError):
        pass
    out.close()
    print(got)


def cmd_check_once(path, okfile, n, timeout):
    """Crash test verdict, at the receiver: every acknowledged message is in
    the inbox exactly once, and no message text appears twice."""
    with open(okfile) as f:
        acked = {}
        for line in f:
            if line.strip():
                mid, idx = line.split()
                acked[mid] = int(idx)
    end = time.time() + float(timeout)
    msgs = []
    while time.time() < end:
        msgs = inbox(path)
        if set(acked) <= {m["message_id"] for m in msgs}:
            break
        time.sleep(0.2)
    ids = [m["message_id"] for m in msgs]
    texts = [m["text"] for m in msgs]
    missing = set(acked) - set(ids)
    if missing:
        die("%d acknowledged messages never arrived, e.g. %s" %
            (len(missing), sorted(missing)[:3]))
    if len(ids) != len(set(ids)):
        die("a message id is in the inbox twice")
    if len(texts) != len(set(texts)):
        dup = sorted({t for t in texts if texts.count(t) > 1})
        die("delivered twice: %s" % dup[:5])
    for m in msgs:
        if m["message_id"] in acked and m["text"] != "msg-%d" % acked[m["message_id"]]:
            die("message %s has the wrong text %r" % (m["message_id"], m["text"]))
    extra = len(msgs) - len(acked)
    print("%d acknowledged, %d delivered (%d sent without an ok reply arrived)" %
          (len(acked), len(msgs), extra))


def write_events(path, seconds, outfile, line_of):
    """Subscribe, then for seconds write line_of(event) for every event, one
    a line, to outfile (which exists once the subscription is in place);
    events for which line_of gives None are skipped."""
    c = Conn(path, timeout=0.5)
    ok(c.req({"cmd": "subscribe"}))
    end = time.time() + float(seconds)
    with open(outfile, "w", buffering=1) as out:
        while time.time() < end:
            try:
                ev = c.line()
            except socket.timeout:
                continue
            except (OSError, EOFError):
                break
            text = line_of(ev) if "event" in ev else None
            if text is not None:
                out.write(text + "\n")
    c.close()


def cmd_count_events(path, seconds, outfile):
    """Write every `message` event's id, one a line, for a while (a second
    channel for counting deliveries)."""
    write_events(path, seconds, outfile,
                 lambda ev: ev["message"]["message_id"] if ev["event"] == "message" else None)


def cmd_exec_limited(limit, *argv):
    """Run argv with files capped at limit bytes (RLIMIT_FSIZE) and SIGXFSZ
    ignored, so a write past the cap fails like a full disk."""
    import resource
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # stays ignored across exec
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
    os.execv(argv[0], list(argv))


def cmd_send_until_store(path, to, most, okfile, failfile):
    """Send "fill-<i>" one at a time until 5 replies are `store` errors (or
    most sends); "<id> <i>" of acknowledged ones go to okfile, the numbers
    of refused ones to failfile. The daemon must answer every request."""
    c = Conn(path, timeout=10.0)
    failed = 0
    with open(okfile, "w") as okf, open(failfile, "w") as ff:
        for i in range(int(most)):
            r = c.req({"cmd": "send", "to": to, "text": "fill-%d" % i})
            if r.get("ok"):
                okf.write("%s %d\n" % (r["result"]["message_id"], i))
            elif r["error"]["code"] == "store":
                ff.write("%d\n" % i)
                failed += 1
                if failed == 5:
                    break
            else:
                die("unexpected reply: " + json.dumps(r))
    c.close()
    if not failed:
        die("no `store` error after %s sends: the cap was not reached" % most)
    print(failed)


def cmd_inbox_lacks(path, failfile):
    """None of the refused messages ("fill-<i>" for i in failfile) arrived."""
    with open(failfile) as f:
        refused = {"fill-%s" % line.strip() for line in f if line.strip()}
    arrived = refused & {m["text"] for m in inbox(path)}
    if arrived:
        die("messages answered `store` were delivered anyway: %s" % sorted(arrived)[:5])


def cmd_commands_tour(a, b):
    """Every command of docs/API.md once, between two daemons that know each
    other (a = alice, b = bob), with its result checked."""
    def expect_error(path, obj, code):
        r = req(path, obj)
        if r.get("ok") is not False or r["error"]["code"] != code:
            die("%s: expected %s, got %s" % (json.dumps(obj), code, json.dumps(r)))

    def wait_for(pred, what, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            v = pred()
            if v:
                return v
            time.sleep(0.1)
        die("timed out waiting for " + what)

    ida, idb = ok(req(a, {"cmd": "id"})), ok(req(b, {"cmd": "id"}))
    assert ida["name"] == "alice" and len(ida["address"]) == 32, ida
    assert len(ida["public_key"]) == 64 and len(ida["fingerprint"]) == 39, ida

    # Events: bob subscribes before anything happens.
    sub = Conn(b, timeout=20.0)
    assert sub.req({"id": "s", "cmd": "subscribe"}) == {"id": "s", "ok": True, "result": {}}

    # users, with filters and fields.
    users = ok(req(a, {"cmd": "users", "filter": "online"}))["users"]
    bob = [u for u in users if u["name"] == "bob"]
    assert bob and bob[0]["address"] == idb["address"] and bob[0]["online"] is True, users
    assert bob[0]["fingerprint"] == idb["fingerprint"] and bob[0]["verified"] is False, bob
    assert not ok(req(a, {"cmd": "users", "filter": "offline"}))["users"]
    expect_error(a, {"cmd": "users", "filter": "sometimes"}, "bad_request")

    # verify: remembered, also across the next request.
    assert ok(req(a, {"cmd": "verify", "user": "bob"})) == {}
    users = ok(req(a, {"cmd": "users"}))["users"]
    assert [u for u in users if u["name"] == "bob"][0]["verified"] is True, users
    expect_error(a, {"cmd": "verify", "user": "nobody"}, "unknown_user")

    # send by name, by address prefix; errors.
    r = ok(req(a, {"cmd": "send", "to": "bob", "text": "one"}))
    assert r["to"] == idb["address"] and r["to_name"] == "bob" and len(r["message_id"]) == 16
    m1 = r["message_id"]
    m2 = ok(req(a, {"cmd": "send", "to": idb["address"][:5], "text": "two"}))["message_id"]
    m3 = ok(req(a, {"cmd": "send", "to": "bob", "text": "three", "anonymous": True}))["message_id"]
    expect_error(a, {"cmd": "send", "to": "bob", "text": "x" * 1025}, "too_big")
    expect_error(a, {"cmd": "send", "to": "bob", "text": "x", "anonymous": "yes"}, "bad_request")
    expect_error(a, {"cmd": "send", "to": idb["address"][:3], "text": "x"}, "unknown_user")
    expect_error(a, {"cmd": "send", "to": "bob"}, "bad_request")

    # bob's subscriber sees the three messages; alice sees receipts.
    seen = {}
    while len(seen) < 3:
        ev = sub.line()
        if ev.get("event") == "message":
            seen[ev["message"]["message_id"]] = ev["message"]
    assert seen[m1]["text"] == "one" and seen[m1]["from_name"] == "alice", seen[m1]
    assert seen[m1]["type"] == "private" and seen[m1]["from"] == ida["address"]
    assert seen[m2]["text"] == "two"
    assert seen[m3]["type"] == "anonymous" and seen[m3]["from"] == "" and seen[m3]["from_name"] == ""
    for m in (m1, m2, m3):
        wait_for(lambda: ok(req(a, {"cmd": "status", "message_id": m}))["state"] == "delivered",
                 "receipt of " + m)
    st = ok(req(a, {"cmd": "status", "message_id": m1}))
    assert st["to"] == idb["address"] and st["age_s"] >= 0 and st["delivered_after_s"] >= 0, st

    # inbox: unread first, marked read, then only with unread_only false.
    msgs = ok(req(b, {"cmd": "inbox", "mark_read": False}))["messages"]
    assert [m["message_id"] for m in msgs] == [m1, m2, m3], msgs
    assert len(ok(req(b, {"cmd": "inbox", "limit": 2}))["messages"]) == 2
    assert [m["message_id"] for m in ok(req(b, {"cmd": "inbox"}))["messages"]] == [m3]
    assert ok(req(b, {"cmd": "inbox"}))["messages"] == []
    assert len(ok(req(b, {"cmd": "inbox", "unread_only": False}))["messages"]) == 3
    expect_error(b, {"cmd": "inbox", "limit": -1}, "bad_request")
    # paging with "after": read or not, strictly after the given seq.
    first = ok(req(b, {"cmd": "inbox", "after": 0, "limit": 1}))["messages"]
    assert [m["message_id"] for m in first] == [m1], first
    rest = ok(req(b, {"cmd": "inbox", "after": first[0]["seq"]}))["messages"]
    assert [m["message_id"] for m in rest] == [m2, m3], rest
    assert ok(req(b, {"cmd": "inbox", "after": rest[-1]["seq"]}))["messages"] == []
    expect_error(b, {"cmd": "inbox", "after": "x"}, "bad_request")

    # groups: create, join by invite, send both ways, invite by message, leave.
    g = ok(req(a, {"cmd": "group_create", "name": "camp"}))
    assert g["name"] == "camp" and len(g["group_id"]) == 32, g
    assert g["invite"].startswith("ferry-invite:camp:") and len(g["invite"].split(":")[2]) == 64
    expect_error(a, {"cmd": "group_create", "name": "camp"}, "bad_request")
    expect_error(a, {"cmd": "group_create", "name": ""}, "bad_request")
    expect_error(b, {"cmd": "group_join", "invite": "ferry-invite:camp:abcd"}, "bad_request")
    j = ok(req(b, {"cmd": "group_join", "invite": g["invite"]}))
    assert j == {"group_id": g["group_id"], "name": "camp"}, j
    assert ok(req(b, {"cmd": "groups"}))["groups"] == [j]
    gm = ok(req(a, {"cmd": "group_send", "group": "camp", "text": "to the camp"}))["message_id"]
    while True:
        ev = sub.line()
        if ev.get("event") == "message" and ev["message"]["message_id"] == gm:
            break
    assert ev["message"]["type"] == "group" and ev["message"]["group_id"] == g["group_id"]
    assert ev["message"]["group_name"] == "camp" and ev["message"]["from_name"] == "alice"
    ok(req(b, {"cmd": "group_send", "group": g["group_id"], "text": "back"}))
    wait_for(lambda: any(m["text"] == "back" for m in
                         ok(req(a, {"cmd": "inbox", "unread_only": False}))["messages"]),
             "group reply at alice")
    inv = ok(req(a, {"cmd": "group_invite", "group": "camp", "user": "bob"}))["message_id"]
    wait_for(lambda: any(m["message_id"] == inv and m["text"] == g["invite"] for m in
                         ok(req(b, {"cmd": "inbox", "unread_only": False}))["messages"]),
             "invite message at bob")
    expect_error(a, {"cmd": "group_send", "group": "nowhere", "text": "x"}, "not_found")
    assert ok(req(b, {"cmd": "group_leave", "group": "camp"})) == {}
    assert ok(req(b, {"cmd": "groups"}))["groups"] == []
    expect_error(b, {"cmd": "group_leave", "group": "camp"}, "not_found")

    # announce is rate-limited (each daemon announced at start).
    expect_error(a, {"cmd": "announce"}, "full")

    # peers and stats.
    links = ok(req(a, {"cmd": "peers"}))["links"]
    assert len(links) == 1 and links[0]["kind"] == "broadcast" and links[0]["up"] is True, links
    assert links[0]["mtu"] == 1200 and links[0]["tx_frames"] > 0 and links[0]["rx_frames"] > 0
    stats = ok(req(a, {"cmd": "stats"}))
    assert stats["engine"]["frames_out"] > 0 and stats["store"]["sent"] >= 5, stats["store"]
    assert stats["links"][0]["name"] == links[0]["name"] and stats["uptime_s"] >= 0
    assert stats["daemon"]["commits"] > 0 and stats["daemon"]["commit_failures"] == 0
    sub.close()
    print("ok")


def cmd_wait_offline(path, name, timeout):
    end = time.time() + float(timeout)
    while time.time() < end:
        users = ok(req(path, {"cmd": "users"}))["users"]
        if any(u["name"] == name and not u["online"] for u in users):
            return
        time.sleep(0.1)
    die("%s not seen offline on %s within %s s" % (name, path, timeout))


def cmd_pid(path):
    """The pid of the daemon serving path (SO_PEERCRED)."""
    s = connect(path)
    cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    s.close()
    print(struct.unpack("3i", cred)[0])


def cmd_flood_texts(path, to, n, prefix, outfile, window="10"):
    """Send n messages "<prefix>-<i>" pipelined (at most window unanswered);
    append "<message_id> <text>" to outfile for every ok reply as it
    arrives. Ends quietly when the daemon goes away (the kill tests kill
    it); prints the number of ok replies."""
    n, window = int(n), int(window)
    acked = sent = got = 0
    try:
        c = Conn(path, timeout=10.0)
    except OSError:
        print(0)
        return
    texts = {}
    with open(outfile, "a", buffering=1) as out:
        try:
            while got < n:
                while sent < n and sent - got < window:
                    texts[sent] = "%s-%d" % (prefix, sent)
                    c.send_raw((json.dumps({"id": sent, "cmd": "send", "to": to,
                                            "text": texts[sent]}) + "\n").encode())
                    sent += 1
                r = c.line()
                if r.get("ok"):
                    out.write("%s %s\n" % (r["result"]["message_id"], texts[r["id"]]))
                    acked += 1
                got += 1
        except (OSError, EOFError, ValueError):
            pass
    c.close()
    print(acked)


def texts_with(path, prefix):
    return [m["text"] for m in inbox(path) if m["text"].startswith(prefix)]


def cmd_check_texts(path, okfile, prefix, timeout):
    """Kill-test verdict at the receiver, by text: every acknowledged text
    ("<id> <text>" lines of okfile) delivered exactly once, and no text
    with prefix delivered twice. Waits up to timeout for the missing ones.
    Prints the figures; exits 1 on a loss or a duplicate."""
    with open(okfile) as f:
        acked = {line.split(" ", 1)[1].rstrip("\n") for line in f if line.strip()}
    end = time.time() + float(timeout)
    texts = []
    while time.time() < end:
        texts = texts_with(path, prefix)
        if acked <= set(texts):
            break
        time.sleep(0.2)
    lost = acked - set(texts)
    dups = {t for t in texts if texts.count(t) > 1}
    print("accepted=%d delivered=%d lost=%d duplicated=%d unacknowledged_delivered=%d" %
          (len(acked), len(set(texts)), len(lost), len(dups), len(set(texts) - acked)))
    if lost:
        die("%d acknowledged messages never arrived, e.g. %s" % (len(lost), sorted(lost)[:3]))
    if dups:
        die("delivered twice: %s" % sorted(dups)[:5])


def cmd_wait_texts(path, prefix, n, timeout):
    """Wait until at least n distinct texts with prefix are in the inbox, or
    timeout; print how many distinct ones and how many in all (exit 0
    either way: the caller judges)."""
    end = time.time() + float(timeout)
    texts = []
    while True:
        texts = texts_with(path, prefix)
        if len(set(texts)) >= int(n) or time.time() >= end:
            break
        time.sleep(0.2)
    print("%d %d" % (len(set(texts)), len(texts)))


def cmd_stats(path):
    """The whole `stats` result, as JSON."""
    print(json.dumps(ok(req(path, {"cmd": "stats"}))))


# --- for the adversarial tests (test_forged_*, test_replay, test_flood_raw,
# test_tampered, test_readonly_dir) ---

def cmd_events(path, seconds, outfile):
    """Every event as one JSON line, for seconds."""
    write_events(path, seconds, outfile, json.dumps)


def cmd_statuses(path, idfile):
    """How many of the message ids (first word of each line of idfile) are
    queued and how many delivered, as the sender sees them."""
    with open(idfile) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    states = [ok(req(path, {"cmd": "status", "message_id": m}))["state"] for m in ids]
    print("queued=%d delivered=%d" % (states.count("queued"), states.count("delivered")))


def cmd_inbox_count(path):
    """Messages in the inbox, read or not."""
    print(len(inbox(path)))


def cmd_db_check(db):
    """SQLite's integrity check of a store, opened read-only (no daemon may
    be running on it)."""
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    res = con.execute("PRAGMA integrity_check").fetchall()
    con.close()
    if res != [("ok",)]:
        die("%s: integrity check failed: %s" % (db, res[:5]))
    print("ok")


def main():
    if len(sys.argv) < 2:
        die("usage: ctl.py COMMAND ARGS...")
    name = "cmd_" + sys.argv[1].replace("-", "_")
    fn = globals().get(name)
    if not fn:
        die("unknown command " + sys.argv[1])
    fn(*sys.argv[2:])


if __name__ == "__main__":
    main()
