"""Credentials as the `kubernetes` package works them out, adapted for our client and kopf."""

from __future__ import annotations

import json
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltrl_operator.controllers.runtime import connection_info
from mltrl_operator.k8s import connection as connection_module
from mltrl_operator.k8s.connection import CredentialsError, load_connection

EXEC_API = "client.authentication.k8s.io/v1beta1"


def write_exec_plugin(directory: Path) -> Path:
    """A credential plugin as EKS/GKE/AKS ship them: prints an ExecCredential whose token
    it reads from a file (so a test can rotate it) and counts its runs."""
    plugin = directory / "credential-plugin"
    plugin.write_text(f"""#!{sys.executable}
import json, pathlib, sys, datetime
token_file, count_file, minutes = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
count_file.write_text(str(int(count_file.read_text() or 0) + 1) if count_file.exists() else "1")
token = token_file.read_text().strip()
if not token:
    print("no token for you", file=sys.stderr)
    sys.exit(1)
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=int(minutes))
print(json.dumps({{"apiVersion": "{EXEC_API}", "kind": "ExecCredential",
                  "status": {{"token": token,
                             "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}))
""")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    return plugin


def kubeconfig(
    path: Path,
    *,
    server: str = "https://127.0.0.1:6443",
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    context: str = "work",
    clusters: bool = True,
    users: bool = True,
) -> Path:
    document: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u",
                                                   "namespace": "team-a"}}],
    }
    if clusters:
        document["clusters"] = [{"name": "c", "cluster": {"server": server, **(cluster or {})}}]
    if users:
        document["users"] = [{"name": "u", "user": user if user is not None else {"token": "t"}}]
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)


async def test_an_exec_plugin_token_is_used_and_cached_until_it_expires(tmp_path: Path) -> None:
    plugin = write_exec_plugin(tmp_path)
    (tmp_path / "token").write_text("from-the-plugin")
    count = tmp_path / "runs"
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": EXEC_API, "command": str(plugin),
        "args": [str(tmp_path / "token"), str(count), "60"],
    }})
    connection = load_connection(str(path))
    assert connection.context == "work"
    assert connection.default_namespace == "team-a"
    assert await connection.authorization() == "Bearer from-the-plugin"
    connection.recheck()
    assert await connection.authorization() == "Bearer from-the-plugin"
    assert count.read_text() == "1", "the credential was fresh: the plugin must not run again"
    info = connection_info(connection)
    assert (info.scheme, info.token) == ("Bearer", "from-the-plugin")
    assert info.expiration is not None
    assert info.expiration < datetime.now(UTC) + timedelta(minutes=60)


async def test_an_expiring_exec_credential_runs_the_plugin_again(tmp_path: Path) -> None:
    plugin = write_exec_plugin(tmp_path)
    token = tmp_path / "token"
    token.write_text("first")
    count = tmp_path / "runs"
    # Expiring within the package's 5-minute margin: stale at once.
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": EXEC_API, "command": str(plugin), "args": [str(token), str(count), "1"],
    }})
    connection = load_connection(str(path))
    token.write_text("second")
    connection.recheck()
    assert await connection.authorization() == "Bearer second"


async def test_relogin_runs_the_plugin_afresh_once_for_many_failed_requests(
    tmp_path: Path,
) -> None:
    plugin = write_exec_plugin(tmp_path)
    token = tmp_path / "token"
    token.write_text("old")
    count = tmp_path / "runs"
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": EXEC_API, "command": str(plugin), "args": [str(token), str(count), "60"],
    }})
    connection = load_connection(str(path))
    seen = connection.generation
    token.write_text("rotated")
    await connection.relogin(seen)
    await connection.relogin(seen)  # a second request that met the same 401
    assert await connection.authorization() == "Bearer rotated"
    assert count.read_text() == "2"


def test_a_failing_exec_plugin_stops_with_one_line_naming_the_context(tmp_path: Path) -> None:
    plugin = write_exec_plugin(tmp_path)
    (tmp_path / "token").write_text("")
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": EXEC_API, "command": str(plugin),
        "args": [str(tmp_path / "token"), str(tmp_path / "runs"), "60"],
    }})
    with pytest.raises(CredentialsError) as raised:
        load_connection(str(path))
    message = str(raised.value)
    assert message.startswith('context "work": exec plugin')
    assert "no token for you" in message
    assert "\n" not in message


@pytest.mark.parametrize("user", [{}, {"client-key": "k.pem"}], ids=["empty", "key-only"])
def test_a_user_without_credentials_is_refused_not_anonymous(
    tmp_path: Path, user: dict[str, Any]
) -> None:
    path = kubeconfig(tmp_path / "config", user=user)
    with pytest.raises(CredentialsError, match=r'^context "work": user "u" has no credentials'):
        load_connection(str(path))


def test_a_missing_context_or_file_is_one_line(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    with pytest.raises(CredentialsError, match=r'^context "elsewhere": '):
        load_connection(str(path), "elsewhere")
    with pytest.raises(CredentialsError, match="no such file"):
        load_connection(str(tmp_path / "absent"))


async def test_two_merged_files_with_relative_paths(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The cluster in one file, the user in another, the CA path relative to its file."""
    (tmp_path / "clusters").mkdir()
    (tmp_path / "clusters" / "ca.crt").write_text("not read until TLS is set up")
    first = kubeconfig(tmp_path / "clusters" / "config", users=False,
                       cluster={"certificate-authority": "ca.crt"})
    second = tmp_path / "users.yaml"
    second.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "users": [{"name": "u", "user": {"tokenFile": "token"}}],
    }))
    (tmp_path / "token").write_text("from-a-token-file\n")
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{second}")
    connection = load_connection()
    assert connection.ca_file == str(tmp_path / "clusters" / "ca.crt")
    assert await connection.authorization() == "Bearer from-a-token-file"


def test_proxy_tls_server_name_and_ipv6_come_through(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config", server="https://[::1]:6443/",
        cluster={"proxy-url": "http://proxy.internal:3128", "tls-server-name": "api.internal",
                 "insecure-skip-tls-verify": True},
    )
    connection = load_connection(str(path))
    assert connection.server == "https://[::1]:6443"
    assert connection.proxy == "http://proxy.internal:3128"
    assert connection.tls_server_name == "api.internal"
    assert connection.insecure
    info = connection_info(connection)
    assert info.proxy_url == "http://proxy.internal:3128"
    assert info.server == "https://[::1]:6443"


async def test_in_cluster_the_token_file_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("first")
    ca.write_text("a CA")
    monkeypatch.setattr(connection_module, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(connection_module, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setattr(connection_module, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    connection = load_connection()
    assert connection.server == "https://[fd00::1]:443"
    assert connection.context == "in-cluster"
    assert await connection.authorization() == "bearer first"
    token.write_text("rotated by the kubelet")
    # The package re-reads the file a minute after the last read, as client-go does ...
    loader_expiry = connection.expiry()
    assert loader_expiry is not None
    # ... and a 401 re-reads it at once.
    await connection.relogin()
    assert await connection.authorization() == "bearer rotated by the kubelet"


def test_kopf_gets_the_same_credentials(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", user={"token": "secret"})
    info = connection_info(load_connection(str(path)))
    assert (info.server, info.scheme, info.token) == ("https://127.0.0.1:6443", "Bearer", "secret")
    assert info.default_namespace == "team-a"
    assert info.expiration is None
    assert json.dumps(info.server)


async def test_kopf_logs_in_afresh_after_a_401_rather_than_reusing_a_frozen_token(
    tmp_path: Path,
) -> None:
    """kopf calls its login handler at start and again after any 401 it meets."""
    import kopf

    from mltrl_operator.controllers.runtime import install_login

    plugin = write_exec_plugin(tmp_path)
    token = tmp_path / "token"
    token.write_text("before")
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": EXEC_API, "command": str(plugin),
        "args": [str(token), str(tmp_path / "runs"), "60"],
    }})
    connection = load_connection(str(path))
    registry = kopf.OperatorRegistry()
    install_login(registry, connection)
    from kopf._core.intents.causes import Activity

    [handler] = registry._activities.get_handlers(activity=Activity.AUTHENTICATION)
    first = await handler.fn()
    assert first.token == "before"
    token.write_text("after-rotation")
    again = await handler.fn()  # kopf met a 401 with the first one
    assert again.token == "after-rotation"
    assert await connection.authorization() == "Bearer after-rotation"


@pytest.mark.parametrize(("environment", "expected"), [
    ({"HTTPS_PROXY": "http://corp:3128"}, "http://corp:3128"),
    ({"https_proxy": "http://corp:3128", "NO_PROXY": ".internal,10.0.0.0"}, None),
    ({}, None),
], ids=["proxied", "no-proxy", "none"])
def test_https_proxy_from_the_environment_unless_no_proxy_spares_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: dict[str, str],
    expected: str | None,
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "HTTP_PROXY",
                 "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    connection = load_connection(str(kubeconfig(tmp_path / "c", server="https://api.internal")))
    assert connection.effective_proxy() == expected
    assert connection_info(connection).proxy_url == expected
