"""Starting the receiver: a token is mandatory, rotates with its file, and TLS can be mutual."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from mltrl_operator.alerts.config import (
    TOKEN_ENV,
    ConfigError,
    ReceiverConfig,
    TLSFiles,
    TokenSource,
    tls_files,
)
from mltrl_operator.alerts.server import AlertReceiver
from mltrl_operator.cli import main

from .conftest import NOW, World, alert, notification


def test_no_token_means_no_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError, match="needs a token: --alerts-token-file or"):
        TokenSource.from_options(None)


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        TokenSource.from_options(str(empty))
    with pytest.raises(ConfigError, match="cannot read the alerts token file"):
        TokenSource.from_options(str(tmp_path / "missing"))


def test_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, " from-env\n")
    assert TokenSource.from_options(None).current() == b"from-env"


def test_a_rotated_token_file_takes_effect_and_a_vanished_one_refuses_all(
    tmp_path: Path,
) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    source = TokenSource.from_options(str(path))
    assert source.current() == b"first"
    path.write_text("second-token\n")
    os.utime(path, ns=(1, 1))  # a new mtime even on filesystems with coarse clocks
    assert source.current() == b"second-token"
    path.unlink()
    assert source.current() is None


def test_the_cli_refuses_to_start_the_receiver_without_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    code = main(["run", "--kubeconfig", str(kubeconfig), "--alerts-port", "0"])
    assert code == 2
    assert "needs a token" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cert", "key", "ca", "message"),
    [("c", None, None, "go together"), (None, None, "ca", "needs --alerts-tls-cert")],
)
def test_tls_options_must_be_complete(
    cert: str | None, key: str | None, ca: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        tls_files(cert, key, ca)
    assert tls_files(None, None, None) is None


async def test_mutual_tls_wants_a_client_certificate_and_still_the_token(
    world: World, tmp_path: Path
) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("alertmanager")
    paths: dict[str, Any] = {}
    for name, blob in (
        ("server.pem", server_cert.private_key_and_cert_chain_pem),
        ("client.pem", client_cert.private_key_and_cert_chain_pem),
        ("ca.pem", ca.cert_pem),
    ):
        paths[name] = tmp_path / name
        blob.write_to_path(str(paths[name]))
    config = ReceiverConfig(
        port=0, host="127.0.0.1", token=TokenSource(token="t0ken"),
        tls=TLSFiles(str(paths["server.pem"]), str(paths["server.pem"]), str(paths["ca.pem"])),
    )
    async with AlertReceiver(config, world.kube, lambda: NOW) as receiver:
        url = f"https://127.0.0.1:{receiver.port}/alerts"
        payload = notification(alert())
        anonymous = ssl.create_default_context(cafile=str(paths["ca.pem"]))
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.post(url, json=payload, ssl=anonymous) as response:
                    await response.read()
            known = ssl.create_default_context(cafile=str(paths["ca.pem"]))
            known.load_cert_chain(str(paths["client.pem"]))
            async with http.post(url, json=payload, ssl=known) as response:
                assert response.status == 401
            async with http.post(
                url, json=payload, ssl=known, headers={"Authorization": "Bearer t0ken"}
            ) as response:
                assert response.status == 200
                assert (await response.json())["results"][0]["outcome"] == "recorded"
