"""The ``wecom-actors`` command, called in-process (plus one subprocess check of ``-m``)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import wecom_actors.cli as cli
from wecom_actors import _logging
from wecom_actors._version import __version__
from wecom_actors.errors import AuthError, KickedOut

SECRET = "S3cr3t-Value-xyzzy"
TOKEN = "Tok3n-Value-plugh"
AES_KEY = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456"
HANDLER_MODULE = "wecom_test_handlers_inline"


async def handle(turn):  # the inline module's handler
    return None


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No WECOM_* from the outer environment; logging state restored after each test."""
    for name in list(os.environ):
        if name.startswith("WECOM_"):
            monkeypatch.delenv(name)
    logger = logging.getLogger(_logging.LOGGER_NAME)
    saved = (logger.handlers[:], logger.level, logger.propagate, set(_logging._secrets))
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[:3]
    _logging._secrets.clear()
    _logging._secrets.update(saved[3])


@pytest.fixture
def handlers_module(monkeypatch):
    module = types.ModuleType(HANDLER_MODULE)
    module.handle = handle
    module.not_callable = 42
    module.ns = types.SimpleNamespace(handle=handle)
    monkeypatch.setitem(sys.modules, HANDLER_MODULE, module)
    return module


@pytest.fixture
def lc_env(monkeypatch):
    monkeypatch.setenv("WECOM_BOT_ID", "bot-1")
    monkeypatch.setenv("WECOM_BOT_SECRET", SECRET)


@pytest.fixture
def seam(monkeypatch):
    """Replace the runtime seam; record what it was called with."""
    calls = []

    def fake_serve(config, handler):
        calls.append((config, handler))
        return cli.EXIT_OK

    monkeypatch.setattr(cli, "_serve", fake_serve)
    return calls


def assert_no_secrets(capsys):
    out, err = capsys.readouterr()
    for secret in (SECRET, TOKEN, AES_KEY):
        assert secret not in out and secret not in err
    return out, err


# --- --version / --help ------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"wecom-actors {__version__}"


@pytest.mark.parametrize(
    "argv", [["--help"], ["run", "--help"], ["demo", "-h"], ["fake-server", "-h"]]
)
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    assert "usage: wecom-actors" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["run", "--mode", "grpc"]])
def test_bad_usage_exits_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == cli.EXIT_CONFIG


def test_exit_code_constants():
    assert (cli.EXIT_OK, cli.EXIT_CONFIG, cli.EXIT_AUTH, cli.EXIT_KICKED) == (0, 2, 3, 4)
    assert (AuthError.exit_code, KickedOut.exit_code) == (cli.EXIT_AUTH, cli.EXIT_KICKED)


def test_module_entry_point_subprocess():
    root = Path(cli.__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "wecom_actors.cli", "--version"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wecom-actors {__version__}"


# --- run: settings -----------------------------------------------------------------------------


def test_run_without_credentials(capsys, seam):
    assert cli.main(["run"]) == cli.EXIT_CONFIG
    _, err = capsys.readouterr()
    assert err.startswith("wecom-actors: error: WECOM_BOT_ID")
    assert "WECOM_TOKEN" in err
    assert seam == []


@pytest.mark.parametrize(
    ("argv", "env_port"), [(["run", "--port", "99999"], None), (["run"], "http"), (["run"], "-3")]
)
def test_run_bad_port(capsys, monkeypatch, lc_env, seam, argv, env_port):
    if env_port is not None:
        monkeypatch.setenv("WECOM_PORT", env_port)
    assert cli.main(argv) == cli.EXIT_CONFIG
    _, err = assert_no_secrets(capsys)
    assert "WECOM_PORT" in err
    assert seam == []


def test_run_bad_config_file(capsys, lc_env, seam, tmp_path):
    path = tmp_path / "bot.toml"
    path.write_text("prot = 1\n")
    assert cli.main(["run", "--config", str(path)]) == cli.EXIT_CONFIG
    _, err = capsys.readouterr()
    assert "'prot'" in err and str(path) in err


def test_run_bad_aes_key_not_echoed(capsys, monkeypatch, seam):
    monkeypatch.setenv("WECOM_TOKEN", TOKEN)
    monkeypatch.setenv("WECOM_ENCODING_AES_KEY", AES_KEY[:-2])
    assert cli.main(["run"]) == cli.EXIT_CONFIG
    _, err = assert_no_secrets(capsys)
    assert "WECOM_ENCODING_AES_KEY" in err and AES_KEY[:-2] not in err


def test_run_reaches_seam(capsys, monkeypatch, lc_env, handlers_module, seam, tmp_path):
    path = tmp_path / "bot.toml"
    path.write_text("ack_timeout = 2\nhost = '10.1.1.1'\n")
    monkeypatch.setenv("WECOM_HOST", "10.2.2.2")
    argv = ["run", "--handler", f"{HANDLER_MODULE}:handle", "--config", str(path)]
    argv += ["--log-level", "debug", "--port", "0"]
    assert cli.main(argv) == cli.EXIT_OK
    [(config, handler)] = seam
    assert handler is handle
    assert config.mode == "long-connection"
    assert (config.bot_id, config.bot_secret) == ("bot-1", SECRET)
    assert (config.host, config.port, config.log_level) == ("10.2.2.2", 0, "DEBUG")
    assert config.ack_timeout == 2.0
    assert_no_secrets(capsys)


def test_run_webhook_flags(capsys, monkeypatch, handlers_module, seam):
    monkeypatch.setenv("WECOM_TOKEN", TOKEN)
    monkeypatch.setenv("WECOM_ENCODING_AES_KEY", AES_KEY)
    argv = ["run", "--mode", "webhook", "--handler", f"{HANDLER_MODULE}:ns.handle"]
    assert cli.main([*argv, "--host", "0.0.0.0", "--port", "9000"]) == cli.EXIT_OK
    [(config, handler)] = seam
    assert (config.mode, config.host, config.port) == ("webhook", "0.0.0.0", 9000)
    assert handler is handle
    assert_no_secrets(capsys)


def test_run_echo_is_resolved_lazily(monkeypatch, lc_env, seam):
    module = types.ModuleType("wecom_actors.handlers.echo")
    module.echo = handle
    monkeypatch.setitem(sys.modules, "wecom_actors.handlers.echo", module)
    assert cli.main(["run"]) == cli.EXIT_OK
    assert seam[0][1] is handle


# --- run: bad handlers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("nocolon", "package.module:callable"),
        (":handle", "package.module:callable"),
        (f"{HANDLER_MODULE}:", "package.module:callable"),
        ("wecom_no_such_module_xyz:handle", "cannot import"),
        (f"{HANDLER_MODULE}:missing", "no attribute"),
        (f"{HANDLER_MODULE}:ns.missing", "no attribute"),
        (f"{HANDLER_MODULE}:not_callable", "not a callable"),
        ("wecom_test_broken_module:handle", "RuntimeError: boom"),
    ],
)
def test_run_bad_handler(
    capsys, monkeypatch, lc_env, handlers_module, seam, tmp_path, spec, fragment
):
    (tmp_path / "wecom_test_broken_module.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wecom_test_broken_module", raising=False)
    assert cli.main(["run", "--handler", spec]) == cli.EXIT_CONFIG
    _, err = assert_no_secrets(capsys)
    assert err.startswith("wecom-actors: error: --handler")
    assert fragment in err
    assert seam == []


# --- run: the seam and what comes out of it ----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"), [(AuthError("subscribe refused"), 3), (KickedOut("replaced"), 4)]
)
def test_run_terminal_errors_map_to_exit_codes(
    capsys, monkeypatch, lc_env, handlers_module, error, code
):
    def serve(config, handler):
        raise error

    monkeypatch.setattr(cli, "_serve", serve)
    assert cli.main(["run", "--handler", f"{HANDLER_MODULE}:handle"]) == code
    assert str(error) in capsys.readouterr().err


def test_run_masks_secrets_in_logs(capsys, monkeypatch, lc_env, handlers_module):
    def serve(config, handler):
        log = logging.getLogger("wecom_actors.test")
        log.warning("oops, the secret is %s", config.bot_secret)
        try:
            raise ValueError(f"bad {config.bot_secret}")
        except ValueError:
            log.exception("failed")
        return 0

    monkeypatch.setattr(cli, "_serve", serve)
    assert cli.main(["run", "--handler", f"{HANDLER_MODULE}:handle"]) == 0
    _, err = assert_no_secrets(capsys)
    assert "WARNING wecom_actors.test: oops, the secret is ***" in err
    assert "ValueError: bad ***" in err


# --- demo / fake-server ------------------------------------------------------------------------


def test_seams_receive_args(monkeypatch):
    seen = {}

    def recorder(key):
        def seam(args):
            seen[key] = args
            return 0

        return seam

    monkeypatch.setattr(cli, "_demo", recorder("demo"))
    monkeypatch.setattr(cli, "_fake_server", recorder("fake"))
    assert cli.main(["demo", "--mode", "webhook"]) == 0
    assert cli.main(["fake-server", "--host", "0.0.0.0", "--port", "7000", "--bot-id", "b"]) == 0
    assert seen["demo"].mode == "webhook"
    fake = seen["fake"]
    assert (fake.host, fake.port, fake.bot_id, fake.secret) == ("0.0.0.0", 7000, "b", None)


def test_short_secrets_do_not_mangle_logs():
    from wecom_actors import _logging

    before = set(_logging._secrets)
    try:
        _logging.register_secret("t")
        _logging.register_secret("s3cr3t-value")
        assert _logging.mask_secrets("the token is s3cr3t-value") == "the token is ***"
    finally:
        _logging._secrets.clear()
        _logging._secrets.update(before)
