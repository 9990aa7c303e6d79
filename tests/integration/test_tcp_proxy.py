"""tests/support/proxy.py against a real redis-server: the gate lets exactly N counted commands through."""

import threading

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.proxy import GateMissed, TcpProxy, redis_commands, redis_script_calls

SETS = redis_commands(lambda args: args[0].upper() == b"SET")


def client(port, **kwargs):
    """A client of the proxy that does not retry (redis-py's default retries with backoff for seconds)."""
    return redis.Redis(port=port, password="test-redis-pw", retry=Retry(NoBackoff(), 0), **kwargs)


def pipelined_sets(port, outcome, count=10, prefix="k"):
    def run():
        try:
            pipe = client(port, socket_timeout=600).pipeline(transaction=False)
            for index in range(count):
                pipe.set("{0}{1}".format(prefix, index), index)
                pipe.get("{0}{1}".format(prefix, index))
            outcome["replies"] = pipe.execute()
        except redis.exceptions.RedisError as exc:
            outcome["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def pipelined_sets_until_held(proxy):
    """pipelined_sets through the proxy, returned once the proxy holds it: (its thread, its outcome)."""
    outcome = {}
    thread = pipelined_sets(proxy.port, outcome)
    proxy.wait_for_hold(timeout=120, runner=thread, explain=lambda: repr(outcome))
    return thread, outcome


def test_exactly_n_counted_commands_pass_until_released_and_other_connections_flow(private_redis):
    server = private_redis.client()
    with TcpProxy(private_redis.port, counter=SETS, hold_after=3) as proxy:
        thread, outcome = pipelined_sets_until_held(proxy)
        # The three SETs and the GETs between them ran; the fourth SET and all after it wait.
        assert sorted(server.keys("k*")) == ["k0", "k1", "k2"] and proxy.forwarded == 3
        # Another connection's uncounted commands are not held.
        assert client(proxy.port).get("k1") == b"1"
        proxy.release()
        thread.join(120)
        # Every SET and GET answered, in order, once.
        assert outcome["replies"] == [reply for index in range(10) for reply in (True, str(index).encode())]
        assert server.dbsize() == 10 and proxy.forwarded == 10 and proxy.held == 1


def test_a_server_killed_behind_the_gate_ran_only_what_passed_and_the_cut_fails_the_client(private_redis):
    server = private_redis.client()
    with TcpProxy(private_redis.port, counter=SETS, hold_after=2) as proxy:
        thread, outcome = pipelined_sets_until_held(proxy)
        assert server.dbsize() == 2
        private_redis.kill()
        proxy.cut()
        thread.join(120)
        assert isinstance(outcome.get("error"), redis.exceptions.ConnectionError), outcome
        # A new connection finds no server behind the proxy.
        with pytest.raises(redis.exceptions.ConnectionError):
            client(proxy.port).ping()


def test_script_calls_are_counted_by_the_keys_they_touch(private_redis):
    with TcpProxy(private_redis.port, counter=redis_commands(redis_script_calls(touching="counted")),
                  hold_after=1) as proxy:
        proxied = client(proxy.port)
        script = "return redis.call('INCR', KEYS[1])"
        assert [proxied.eval(script, 1, "other") for index in range(3)] == [1, 2, 3]
        assert proxied.eval(script, 1, "counted") == 1 and proxy.forwarded == 1
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(reply=proxied.eval(script, 1, "counted")))
        thread.start()
        proxy.wait_for_hold(timeout=120, runner=thread)
        assert private_redis.client().get("counted") == "1"
        proxy.release()
        thread.join(120)
        assert outcome["reply"] == 2


def test_the_gate_missed_and_the_loopback_only_are_said():
    with pytest.raises(ValueError, match="loopback only"):
        TcpProxy(6379, upstream_host="192.0.2.1")
    with TcpProxy(9, counter=SETS, hold_after=1) as proxy:
        finished = threading.Thread(target=lambda: None)
        finished.start()
        finished.join()
        with pytest.raises(GateMissed, match="the run ended before it reached the gate"):
            proxy.wait_for_hold(timeout=120, runner=finished, explain=lambda: "nothing ran")
