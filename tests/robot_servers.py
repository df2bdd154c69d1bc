"""Chat-group robots on loopback that check what the vendors check and answer as the vendors answer.

One HTTP server plays a WeCom group robot, a DingTalk custom robot and a Feishu custom bot at once, each
at the URL shape its vendor uses. The signatures are verified here independently of breach's code, from
the vendors' documentation:

- WeCom: the ``key`` query parameter must be the robot's key.
- DingTalk: ``access_token`` must match; ``timestamp`` (ms) within an hour of now; ``sign`` (URL-decoded)
  must equal base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret)).
- Feishu: ``timestamp`` (s, a string) within an hour; ``sign`` must equal
  base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg="")).

Refusals come as HTTP 200 with a non-zero code, as the vendors send them. Every request is recorded, and
every accepted message too (never deduplicated), so tests count what really arrived.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from escalation_servers import free_port

WECOM_KEY = "wecom-key-3f9a"
DINGTALK_TOKEN = "ding-token-77c1"
DINGTALK_SECRET = "SECdingtalk-secret-0b5e"
FEISHU_HOOK = "feishu-hook-52d0"
FEISHU_SECRET = "feishu-secret-9e1f"
SECRETS = (WECOM_KEY, DINGTALK_TOKEN, DINGTALK_SECRET, FEISHU_HOOK, FEISHU_SECRET)
HOUR = 3600


class RobotServer(ThreadingHTTPServer):
    """The three robots; ``queued[kind]`` lists replies (dicts) given before the real checks."""

    daemon_threads = True

    def __init__(self, delay: float = 0.0, keyword: str = "") -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.delay = delay
        self.keyword = keyword  # DingTalk and Feishu refuse text without it, when set
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.accepted: dict[str, list[dict[str, Any]]] = {"wecom": [], "dingtalk": [], "feishu": []}
        self.queued: dict[str, list[dict[str, Any]]] = {"wecom": [], "dingtalk": [], "feishu": []}
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def wecom_url(self) -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={WECOM_KEY}"

    @property
    def dingtalk_url(self) -> str:
        return f"{self.base}/robot/send?access_token={DINGTALK_TOKEN}"

    @property
    def feishu_url(self) -> str:
        return f"{self.base}/open-apis/bot/v2/hook/{FEISHU_HOOK}"

    def texts(self, kind: str) -> list[str]:
        """The text of every message the robot accepted, repeats included."""
        with self.lock:
            return [_text(kind, body) for body in self.accepted[kind]]

    def __enter__(self) -> RobotServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def _text(kind: str, body: dict[str, Any]) -> str:
    if kind == "wecom":
        return str(body.get(body["msgtype"], {}).get("content", ""))
    if kind == "dingtalk":
        return str(body["markdown"]["text"])
    return str(body["content"]["text"])


def _fresh(stamp: float) -> bool:
    return abs(time.time() - stamp) <= HOUR


def _check_wecom(query: dict[str, list[str]], body: dict[str, Any]) -> dict[str, Any]:
    if query.get("key") != [WECOM_KEY]:
        return {"errcode": 93000, "errmsg": "invalid webhook url"}
    if body.get("msgtype") not in ("markdown", "text") or not _text("wecom", body):
        return {"errcode": 40008, "errmsg": "invalid message type"}
    return {"errcode": 0, "errmsg": "ok"}


def _check_dingtalk(query: dict[str, list[str]], body: dict[str, Any], keyword: str) -> dict[str, Any]:
    if query.get("access_token") != [DINGTALK_TOKEN]:
        return {"errcode": 300001, "errmsg": "token is not exist"}
    stamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
    if not stamp.isdigit() or not _fresh(int(stamp) / 1000):
        return {"errcode": 310000, "errmsg": "invalid timestamp"}
    expected = hmac.new(
        DINGTALK_SECRET.encode(), f"{stamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(sign.encode(), base64.b64encode(expected)):
        return {"errcode": 310000, "errmsg": "sign not match"}
    if body.get("msgtype") != "markdown" or not body["markdown"].get("title"):
        return {"errcode": 40035, "errmsg": "缺少参数 markdown"}
    if keyword and keyword not in body["markdown"]["text"]:
        return {"errcode": 310000, "errmsg": "keywords not in content"}
    return {"errcode": 0, "errmsg": "ok"}


def _check_feishu(path: str, body: dict[str, Any], keyword: str) -> dict[str, Any]:
    if not path.endswith(f"/{FEISHU_HOOK}"):
        return {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}
    stamp, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
    if not isinstance(body.get("timestamp"), str) or not stamp.isdigit() or not _fresh(int(stamp)):
        return {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
    expected = hmac.new(f"{stamp}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()
    if not hmac.compare_digest(sign.encode(), base64.b64encode(expected)):
        return {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
    if body.get("msg_type") != "text" or not body.get("content", {}).get("text"):
        return {"code": 9499, "msg": "Bad Request"}
    if keyword and keyword not in body["content"]["text"]:
        return {"code": 19024, "msg": "Key Words Not Found"}
    return {"code": 0, "msg": "success"}


class _Handler(BaseHTTPRequestHandler):
    server: RobotServer

    def do_POST(self) -> None:
        robot = self.server
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = json.loads(raw)
        kind = (
            "wecom"
            if url.path == "/cgi-bin/webhook/send"
            else "dingtalk"
            if url.path == "/robot/send"
            else "feishu"
        )
        time.sleep(robot.delay)
        with robot.lock:
            if robot.queued[kind]:
                reply = robot.queued[kind].pop(0)
            elif kind == "wecom":
                reply = _check_wecom(query, body)
            elif kind == "dingtalk":
                reply = _check_dingtalk(query, body, robot.keyword)
            else:
                reply = _check_feishu(url.path, body, robot.keyword)
            robot.requests.append({"kind": kind, "path": self.path, "body": body, "reply": reply})
            if reply.get("errcode", reply.get("code")) == 0:
                robot.accepted[kind].append(body)
        data = json.dumps(reply).encode()
        self.send_response(200)  # the vendors answer refusals with 200 too
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def robots_toml(
    server: RobotServer,
    *,
    repeat: float = 30,
    dingtalk_secret: str = DINGTALK_SECRET,
    lease: float = 30,
    max_attempts: int = 3,
    extra_robot: str = "",
) -> str:
    """Settings with three levels: WeCom at the due time, DingTalk after 2 h, Feishu after 8 h.

    The DingTalk URL and the Feishu secret come from the environment (BREACH_TEST_DINGTALK_URL,
    BREACH_TEST_FEISHU_SECRET), as a workspace keeps them out of the file.
    """
    return f"""
[escalation]
channels = ["log"]
lease_seconds = {lease}
retry_seconds = 0
max_attempts = {max_attempts}

[alerts]
repeat_minutes = {repeat}

[[alerts.levels]]
name = "on-call"
after_minutes = 0
channels = ["log", "ops-wecom"]

[[alerts.levels]]
name = "DPO"
after_minutes = 120
channels = ["log", "dpo-dingtalk"]
mention = ["13800000001"]

[[alerts.levels]]
name = "management"
after_minutes = 480
channels = ["mgmt-feishu"]

[alerts.robots.ops-wecom]
kind = "wecom"
url = "{server.wecom_url}"
timeout_seconds = 2
attempts = 1

[alerts.robots.dpo-dingtalk]
kind = "dingtalk"
url_env = "BREACH_TEST_DINGTALK_URL"
secret = "{dingtalk_secret}"
timeout_seconds = 2
attempts = 1
{extra_robot}
[alerts.robots.mgmt-feishu]
kind = "feishu"
url = "{server.feishu_url}"
secret_env = "BREACH_TEST_FEISHU_SECRET"
timeout_seconds = 2
attempts = 1
"""


def robot_env(server: RobotServer) -> dict[str, str]:
    """The environment variables ``robots_toml`` names."""
    return {"BREACH_TEST_DINGTALK_URL": server.dingtalk_url, "BREACH_TEST_FEISHU_SECRET": FEISHU_SECRET}
