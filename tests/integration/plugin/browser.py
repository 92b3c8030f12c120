"""Debian's headless Chromium driven over the DevTools protocol (a websocket, with aiohttp):
resize to a desktop or phone viewport, load a page, evaluate JavaScript, take screenshots."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import struct
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.harness import Process, eventually, free_port

DESKTOP = (1280, 800)
PHONE = (390, 844)


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise AssertionError("Debian's chromium is needed: apt-get install -y chromium")
    return found


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


class Page:
    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._ids = itertools.count(1)
        self._session = self._loop.run_until_complete(self._open_session())
        self._ws = self._loop.run_until_complete(
            self._session.ws_connect(url, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(
                ws_close=10)))

    @staticmethod
    async def _open_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    async def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ident = next(self._ids)
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = await asyncio.wait_for(self._ws.receive(), timeout=60)
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"DevTools connection ended: {message}")
            payload = json.loads(message.data)
            if payload.get("id") == ident:
                if "error" in payload:
                    raise AssertionError(f"{method}: {payload['error']}")
                result: dict[str, Any] = payload.get("result") or {}
                return result

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self._loop.run_until_complete(self._send(method, params))

    def resize(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=width < 600)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        eventually(lambda: self.evaluate(
            f"document.readyState === 'complete' && location.href === {json.dumps(url)}"),
            timeout=30, what=f"{url} to load")

    def screenshot(self, path: Path) -> tuple[int, int]:
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return png_size(data)

    def close(self) -> None:
        self._loop.run_until_complete(self._ws.close())
        self._loop.run_until_complete(self._session.close())
        self._loop.close()


class Chromium:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.process = Process(
            [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
             f"--remote-debugging-port={self.port}", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={workdir / 'chromium-profile'}", "about:blank"],
            workdir / "chromium.log",
        )

    def _endpoint(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def _answers(self) -> bool:
        try:
            return bool(self._endpoint("/json/version"))
        except OSError:
            return False

    def start(self) -> Chromium:
        self.process.start()
        eventually(self._answers, timeout=60,
                   what=f"chromium's DevTools endpoint\n{self.process.output()}")
        return self

    def page(self) -> Page:
        target = self._endpoint("/json/new?about:blank", method="PUT")
        return Page(str(target["webSocketDebuggerUrl"]))

    def stop(self) -> None:
        self.process.stop()
