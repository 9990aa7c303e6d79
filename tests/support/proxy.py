"""A TCP proxy on the loopback that a test puts between a run and a server, to stop the run at a chosen point.

The run is pointed at the proxy's port; the proxy forwards both directions. With a `counter` (a protocol's framing:
`redis_commands(match)` counts the Redis commands `match` accepts) and `hold_after=N`, exactly N counted units reach
the server: a connection that brings the N+1-th is held there, that unit and everything after it on that connection
kept back, while the other connections and every reply still flow. The test sees the arrival
(`wait_for_hold()`), does its damage (kills the server), then cuts the connections (`cut()`) or lets the held
traffic through (`release()`). No sleep, no timing guess: a slow machine only waits longer at the gate, a fast one
cannot run past it.

Bounded in time: a connection held longer than `max_hold` seconds is cut (and `expired_holds` counts it), every
wait of the test has a timeout, the threads are daemons and `close()` shuts every socket. It listens on 127.0.0.1
only and forwards only to a loopback address.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

CHUNK = 65536
SCRIPT_COMMANDS = frozenset((b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"))


class GateMissed(AssertionError):
    pass


class _RedisCommandStream(object):
    """Splits one client's byte stream to a Redis server into commands (RESP arrays of bulk strings, or inline
    commands) and says which `match` counts."""

    def __init__(self, match):
        self._match = match
        self._buffer = bytearray()
        self._base = 0  # stream offset of the buffer's first byte

    def feed(self, data):
        """[(stream offset just after the command, counted)] for each command completed by `data`."""
        self._buffer += data
        units = []
        pos = 0
        while True:
            parsed = _parse_command(self._buffer, pos)
            if parsed is None:
                break
            end, args = parsed
            units.append((self._base + end, bool(args) and bool(self._match(args))))
            pos = end
        del self._buffer[:pos]
        self._base += pos
        return units


def _parse_command(buffer, pos):
    """(end, [arguments as bytes]) of the command starting at `pos`, or None while it is incomplete."""
    if pos >= len(buffer):
        return None
    line_end = buffer.find(b"\r\n", pos)
    if line_end < 0:
        return None
    if buffer[pos:pos + 1] != b"*":
        return line_end + 2, bytes(buffer[pos:line_end]).split()  # an inline command
    count = int(buffer[pos + 1:line_end])
    args = []
    cursor = line_end + 2
    for index in range(count):
        header_end = buffer.find(b"\r\n", cursor)
        if header_end < 0:
            return None
        if buffer[cursor:cursor + 1] != b"$":
            raise ValueError("not a RESP bulk string at offset {0} (argument {1})".format(cursor, index))
        length = int(buffer[cursor + 1:header_end])
        start = header_end + 2
        if start + length + 2 > len(buffer):
            return None
        args.append(bytes(buffer[start:start + length]))
        cursor = start + length + 2
    return cursor, args


def redis_commands(match=None):
    """A `counter` for TcpProxy: Redis commands, those `match(args)` accepts (args: the command's words as bytes,
    the name first, as sent); every command when `match` is None."""
    return lambda: _RedisCommandStream(match or (lambda args: True))


def redis_script_calls(touching=None):
    """A `match` for redis_commands: script calls (EVAL, EVALSHA, FCALL and their _RO forms), only those whose keys
    include `touching` when given (e.g. BullMQ's addJob calls of one queue: its delayed set's key)."""
    key = touching.encode() if isinstance(touching, str) else touching

    def match(args):
        if args[0].upper() not in SCRIPT_COMMANDS or len(args) < 3:
            return False  # not a script call, or one Redis refuses (wrong number of arguments) and so never runs
        if key is None:
            return True
        try:
            numkeys = int(args[2])
        except ValueError:
            return False  # Redis refuses it too
        return key in args[3:3 + numkeys]
    return match


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _Connection(object):
    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.held_since = None


class TcpProxy(object):
    """Forwards 127.0.0.1:`port` to a loopback server; see the module's docstring. Use as a context manager, or
    `start()` and `close()`.

    counter: a factory called once per connection, returning an object whose `feed(data)` lists the units that data
      completes, as (stream offset after the unit, counted); `redis_commands(match)` is one. Without it the proxy
      forwards bytes as they come and never holds.
    hold_after: how many counted units (over all connections) reach the server before the gate holds the next.
    max_hold: seconds a connection may wait at the gate before the proxy cuts it.
    """

    def __init__(self, upstream_port, upstream_host="127.0.0.1", counter=None, hold_after=None, max_hold=600.0):
        if not _is_loopback(upstream_host):
            raise ValueError("TcpProxy forwards to the loopback only, not to {0}".format(upstream_host))
        if hold_after is not None and counter is None:
            raise ValueError("hold_after needs a counter to count with")
        self.host = "127.0.0.1"
        self.upstream = (upstream_host, upstream_port)
        self._counter = counter
        self._hold_after = hold_after
        self._max_hold = max_hold
        self._cond = threading.Condition()
        self._connections = []
        self._released = False
        self._closed = False
        self.forwarded = 0  # counted units sent to the server
        self.held = 0  # connections that reached the gate
        self.expired_holds = 0
        self.connections = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, 0))
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy-accept", daemon=True)

    def start(self):
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._acceptor.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # --- what the test calls ------------------------------------------------------------------------------------

    def wait_for_hold(self, timeout=300, runner=None, explain=lambda: ""):
        """Return once a connection waits at the gate; fail at once when `runner` (the run's thread) ended without
        reaching it, or after `timeout` seconds, with `explain()` (e.g. the run's output) in the message."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.held:
                if runner is not None and not runner.is_alive():
                    raise GateMissed("the run ended before it reached the gate ({0} of {1} counted units "
                                     "forwarded): {2}".format(self.forwarded, self._hold_after, explain()))
                if time.monotonic() >= deadline:
                    raise GateMissed("no connection reached the gate within {0}s ({1} of {2} counted units "
                                     "forwarded): {3}".format(timeout, self.forwarded, self._hold_after, explain()))
                self._cond.wait(0.1)

    def release(self):
        """Open the gate for good: the held traffic goes on to the server, nothing is held again."""
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def cut(self):
        """Close every open connection at both ends now; what was held is dropped. Later connections are served."""
        with self._cond:
            connections = list(self._connections)
        for connection in connections:
            self._drop(connection)

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.cut()
        self._listener.close()
        if self._acceptor.is_alive():
            self._acceptor.join(5)

    # --- the pumps ----------------------------------------------------------------------------------------------

    def _accept(self):
        while not self._closed:
            try:
                client = self._listener.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _shut(client)  # the server is not there: the client sees its connection closed
                continue
            upstream.settimeout(None)
            connection = _Connection(client, upstream)
            with self._cond:
                if self._closed:
                    _shut(client)
                    _shut(upstream)
                    return
                self._connections.append(connection)
                self.connections += 1
            for target, name in ((self._client_to_server, "up"), (self._server_to_client, "down")):
                threading.Thread(target=target, args=(connection,), name="tcp-proxy-" + name, daemon=True).start()

    def _drop(self, connection):
        with self._cond:
            if connection.closed:
                return
            connection.closed = True
            if connection in self._connections:
                self._connections.remove(connection)
            self._cond.notify_all()
        _shut(connection.client)
        _shut(connection.upstream)

    def _server_to_client(self, connection):
        try:
            while True:
                data = connection.upstream.recv(CHUNK)
                if not data:
                    break
                connection.client.sendall(data)
        except OSError:
            pass
        self._drop(connection)

    def _client_to_server(self, connection):
        stream = self._counter() if self._counter else None
        pending = bytearray()  # what the client sent and the server has not been given yet
        sent = 0  # stream offset of pending's first byte
        try:
            while True:
                data = connection.client.recv(CHUNK)
                if not data:
                    break
                if stream is None:
                    connection.upstream.sendall(data)
                    continue
                pending += data
                ready = sent  # up to here the units are complete and may go
                for end, counted in stream.feed(data):
                    if counted and not self._count():
                        # The gate: what came before this unit goes, then this connection waits.
                        connection.upstream.sendall(pending[:ready - sent])
                        del pending[:ready - sent]
                        sent = ready
                        if not self._wait_at_gate(connection):
                            return
                    ready = end
                connection.upstream.sendall(pending[:ready - sent])
                del pending[:ready - sent]
                sent = ready
        except OSError:
            pass
        finally:
            self._drop(connection)

    def _count(self):
        """Count a unit about to be sent; False when the gate holds it."""
        with self._cond:
            if self._hold_after is None or self._released or self.forwarded < self._hold_after:
                self.forwarded += 1
                return True
            return False

    def _wait_at_gate(self, connection):
        """Wait until released (True: the unit is counted and goes), cut, closed or past max_hold (False)."""
        with self._cond:
            connection.held_since = time.monotonic()
            self.held += 1
            self._cond.notify_all()
            while not (self._released or connection.closed or self._closed):
                left = connection.held_since + self._max_hold - time.monotonic()
                if left <= 0:
                    self.expired_holds += 1
                    return False
                self._cond.wait(min(left, 1.0))
            if connection.closed or self._closed:
                return False
            self.forwarded += 1
            return True
