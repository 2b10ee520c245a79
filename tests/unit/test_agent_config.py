"""The agent's settings: defaults < YAML file < SYSHUB_AGENT_* < flags; every
problem one line naming the setting and where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from syshub.agent.config import DEFAULT_SOCKET, AgentConfigError, build_config
from syshub.cli.errors import UsageError
from syshub.cli.parser import parse_args


def test_defaults() -> None:
    cfg = build_config({}, environ={})
    assert cfg.socket == DEFAULT_SOCKET and cfg.listen is None and not cfg.insecure
    assert cfg.node_name and cfg.stream_queue == 65536 and cfg.tracepoint_syscalls == 16


def test_file_env_flags_precedence(tmp_path: Path) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text("node-name: from-file\nstream_queue: 10\nmax_streams: 3\nlog_level: debug\n")
    env = {"SYSHUB_AGENT_STREAM_QUEUE": "20", "SYSHUB_AGENT_MAX_STREAMS": "4"}
    cfg = build_config({"max_streams": 5, "socket": None}, environ=env, config_file=str(f))
    assert (cfg.node_name, cfg.stream_queue, cfg.max_streams) == ("from-file", 20, 5)
    assert cfg.log_level == "debug" and cfg.socket == DEFAULT_SOCKET
    env["SYSHUB_AGENT_CONFIG"] = str(f)
    assert build_config({}, environ=env).node_name == "from-file"


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"listen": "127.0.0.1:7000"}, {}, "--insecure"),
        ({"listen": "nonsense"}, {}, "listen must be HOST:PORT"),
        ({"tls_cert": "c.pem"}, {}, "tls_cert and tls_key go together"),
        ({}, {"SYSHUB_AGENT_RING_BYTES": "12"}, "ring_bytes ($SYSHUB_AGENT_RING_BYTES)"),
        ({}, {"SYSHUB_AGENT_COLOUR": "red"}, "SYSHUB_AGENT_COLOUR: unknown setting"),
        ({"stream_queue": 0}, {}, "stream_queue (--stream-queue)"),
        ({"socket": ""}, {}, "nothing to listen on"),
        ({"log_level": "loud"}, {}, "log_level must be"),
        ({"k8s_groups": "syshub,k8s"}, {}, "k8s_groups must be"),
        ({"metrics_mode": "pods"}, {}, "metrics_mode must be"),
    ],
)
def test_bad_settings_name_the_field(
    flags: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(AgentConfigError) as e:
        build_config(flags, environ=env)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_file(tmp_path: Path) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text("listen: [unclosed\n")
    with pytest.raises(AgentConfigError, match="invalid YAML"):
        build_config({}, environ={}, config_file=str(f))
    f.write_text("- a list\n")
    with pytest.raises(AgentConfigError, match="expected a mapping"):
        build_config({}, environ={}, config_file=str(f))
    f.write_text("colour: red\n")
    with pytest.raises(AgentConfigError, match=r"colour \(file .*agent.yaml\)"):
        build_config({}, environ={}, config_file=str(f))
    with pytest.raises(AgentConfigError, match="No such file"):
        build_config({}, environ={}, config_file=str(tmp_path / "missing.yaml"))


def test_tls_and_insecure_listen() -> None:
    cfg = build_config({"listen": "[::1]:0", "insecure": True}, environ={})
    assert cfg.listen == "[::1]:0" and not cfg.tls
    cfg = build_config({"listen": "0.0.0.0:7443", "tls_cert": "c", "tls_key": "k"}, environ={})
    assert cfg.tls


def test_command_line() -> None:
    args = parse_args(["agent", "--listen", "127.0.0.1:0", "--insecure", "--ring-bytes", "4M"])
    assert (args.command, args.listen, args.insecure, args.ring_bytes) == (
        "agent",
        "127.0.0.1:0",
        True,
        4 << 20,
    )
    assert args.kubernetes is None and args.token_file is None
    with pytest.raises(UsageError, match="ring-bytes"):
        parse_args(["agent", "--ring-bytes", "3M"])
    args = parse_args(["watch", "t1", "-o", "json", "--agent", "unix:///a", "--agent", "h:1"])
    assert (args.name, args.output, args.agent) == ("t1", "json", ["unix:///a", "h:1"])
    args = parse_args(["traces", "create", "-f", "t.yaml"])
    assert (args.traces_command, args.file, args.namespace) == ("create", "t.yaml", "default")


def test_agent_help_says_what_insecure_means() -> None:
    from syshub.cli.parser import build_parser

    sub = build_parser()._subparsers
    assert sub is not None
    text = (
        next(a for a in sub._group_actions if getattr(a, "choices", None))
        .choices["agent"]
        .format_help()
    )
    assert "no encryption" in text and "no authentication" in text


def test_metrics_latency_from_file_env_and_flags(tmp_path: Path) -> None:
    assert build_config({}, environ={}).metrics_latency is False
    f = tmp_path / "agent.yaml"
    f.write_text("metrics-latency: false\n")
    assert build_config({}, environ={}, config_file=str(f)).metrics_latency is False
    env = {"SYSHUB_AGENT_METRICS_LATENCY": "true"}
    assert build_config({}, environ=env, config_file=str(f)).metrics_latency is True
    env = {"SYSHUB_AGENT_METRICS_LATENCY": "no"}
    assert build_config({}, environ=env).metrics_latency is False
    with pytest.raises(
        AgentConfigError, match=r"metrics_latency \(\$SYSHUB_AGENT_METRICS_LATENCY\)"
    ):
        build_config({}, environ={"SYSHUB_AGENT_METRICS_LATENCY": "sometimes"})
    from syshub.cli.agent_cmd import _flags

    for argv, want in (
        ([], None),
        (["--no-metrics-latency"], False),
        (["--metrics-latency"], True),
    ):
        args = parse_args(["agent", *argv])
        assert args.metrics_latency is want
        flags = _flags(args)
        assert flags["metrics_latency"] is want
        # a flag beats the file; no flag leaves the file's value
        got = build_config(flags, environ={}, config_file=str(f)).metrics_latency
        assert got is (False if want is None else want)
