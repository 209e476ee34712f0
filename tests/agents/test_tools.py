"""Built-in agent tools as an agent meets them: schemas, error results, limits and confinement."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from hanlin.agents.tools import AgentTool, ToolResult, tool
from hanlin.agents.tools.builtins import (
    calculator,
    current_time,
    evaluate,
    http_get,
    kb_ask,
    kb_search,
)
from hanlin.agents.tools.files import workspace_tools
from hanlin.agents.tools.sandbox import SandboxLimits, python_exec


def call(t: AgentTool, args: dict[str, Any] | str) -> ToolResult:
    return asyncio.run(t.run(args))


# --- the decorator ----------------------------------------------------------------------------


def test_schema_comes_from_hints_and_docstring() -> None:
    @tool(side_effects=("network",))
    def weather(city: str, days: int = 3, units: str | None = None) -> str:
        """Forecast for a city.

        Args:
            city: the city's name
            days: how many days ahead
        """
        return f"{city}:{days}:{units}"

    params = weather.parameters
    assert weather.name == "weather" and weather.description == "Forecast for a city."
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string", "description": "the city's name"}
    assert params["properties"]["days"]["type"] == "integer"
    assert params["properties"]["days"]["default"] == 3
    assert params["additionalProperties"] is False
    assert weather.needs_approval and weather.spec().name == "weather"
    assert call(weather, '{"city": "Paris"}').content == "Paris:3:None"


class Attachment(BaseModel):
    """A file by its content."""

    name: str = Field(description="file name")
    encoding: Literal["text", "base64"] = "text"


class Node(BaseModel):
    label: str
    children: list[Node] = []


def test_constraints_enums_and_nested_models_reach_the_schema() -> None:
    @tool
    def attach(
        k: Annotated[int, Field(ge=1, le=50)] = 5,
        mode: Literal["fast", "slow"] = "fast",
        files: Annotated[list[Attachment], Field(max_length=2)] = [],  # noqa: B006
        tree: Node | None = None,
    ) -> str:
        """Attach files.

        Args:
            k: how many
        """
        return f"{k}:{mode}:{[f.name for f in files]}"

    props = attach.parameters["properties"]
    assert props["k"] == {"default": 5, "description": "how many", "type": "integer"} | {
        "minimum": 1,
        "maximum": 50,
    }
    assert props["mode"]["enum"] == ["fast", "slow"]
    item = props["files"]["items"]  # inlined: some providers reject $ref
    assert props["files"]["maxItems"] == 2 and item["type"] == "object"
    assert item["properties"]["name"] == {"type": "string", "description": "file name"}
    assert "title" not in item and "$defs" in attach.parameters  # the recursive Node keeps them
    assert call(attach, {"files": [{"name": "a.md"}]}).content == "5:fast:['a.md']"
    for bad in ({"k": 51}, {"mode": "medium"}, {"files": [{"name": "a"}] * 3}):
        assert call(attach, bad).is_error


def test_bad_arguments_become_error_results() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    assert call(add, {"a": 1, "b": 2}).content == "3"
    wrong_type = call(add, {"a": "x", "b": 2})
    assert wrong_type.is_error and "a:" in wrong_type.content
    extra = call(add, {"a": 1, "b": 2, "c": 3})
    assert extra.is_error and "c" in extra.content
    missing = call(add, {"a": 1})
    assert missing.is_error and "b" in missing.content
    assert call(add, "{not json").is_error
    assert call(add, "[1, 2]").is_error


def test_exceptions_and_timeouts_become_error_results() -> None:
    @tool
    def boom() -> str:
        """Fails."""
        raise RuntimeError("disk on fire")

    @tool(timeout=0.2)
    async def slow() -> str:
        """Hangs."""
        await asyncio.sleep(30)
        return "never"

    failed = call(boom, {})
    assert failed.is_error and "disk on fire" in failed.content
    start = time.monotonic()
    hung = call(slow, {})
    assert hung.is_error and "timed out" in hung.content
    assert time.monotonic() - start < 2


# --- calculator and time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 // 2 + 7 % 2", 4),
        ("2 ** 10", 1024),
        ("-3 ** 2", -9),
        ("sqrt(16) + abs(-2)", 6.0),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("round(pi, 2)", 3.14),
        ("log(e)", 1.0),
        ("1 / 4", 0.25),
    ],
)
def test_calculator_is_correct(expression: str, expected: float) -> None:
    assert evaluate(expression) == pytest.approx(expected)
    result = call(calculator(), {"expression": expression})
    assert not result.is_error and result.data == pytest.approx(expected)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('echo hi')",
        "(1).__class__",
        "().__class__.__bases__",
        "'a' * 3",
        "open('/etc/passwd')",
        "[1, 2]",
        "lambda: 1",
        "1 / 0",
        "x + 1",
    ],
)
def test_calculator_refuses_anything_but_arithmetic(expression: str) -> None:
    result = call(calculator(), {"expression": expression})
    assert result.is_error and "cannot evaluate" in result.content


def test_calculator_refuses_huge_numbers_quickly() -> None:
    start = time.monotonic()
    for expression in ("9**9**9", "10**100000", "(10**3000) * (10**3000) * (10**3000)", "1" * 5000):
        result = call(calculator(), {"expression": expression})
        assert result.is_error, expression
    assert time.monotonic() - start < 1
    assert "too large" in call(calculator(), {"expression": "9**9**9"}).content


def test_current_time_in_a_zone_and_unknown_zone() -> None:
    result = call(current_time(), {"timezone": "Asia/Shanghai"})
    assert not result.is_error and result.data["iso"].endswith("+08:00")
    assert call(current_time(), {}).data["iso"].endswith("+00:00")
    bad = call(current_time(), {"timezone": "Mars/Olympus"})
    assert bad.is_error and "IANA" in bad.content
    assert call(current_time(), {"timezone": "../../etc/passwd"}).is_error


# --- workspace files --------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict[str, AgentTool]]:
    root = tmp_path / "ws"
    tools = {t.name: t for t in workspace_tools(root, max_bytes=100)}
    return root, tools


def test_workspace_read_write_list(workspace: tuple[Path, dict[str, AgentTool]]) -> None:
    root, tools = workspace
    assert tools["write_file"].side_effects == {"writes"} and tools["write_file"].needs_approval
    assert not tools["read_file"].needs_approval
    wrote = call(tools["write_file"], {"path": "notes/todo.md", "content": "buy milk"})
    assert not wrote.is_error and (root / "notes" / "todo.md").read_text() == "buy milk"
    assert call(tools["read_file"], {"path": "notes/todo.md"}).content == "buy milk"
    listing = call(tools["list_dir"], {})
    assert listing.data["entries"] == [{"name": "notes", "type": "dir"}]
    inner = call(tools["list_dir"], {"path": "notes"}).data["entries"]
    assert inner == [{"name": "todo.md", "type": "file", "size": 8}]


def test_workspace_size_caps(workspace: tuple[Path, dict[str, AgentTool]]) -> None:
    root, tools = workspace
    too_big = call(tools["write_file"], {"path": "big.txt", "content": "x" * 101})
    assert too_big.is_error and not (root / "big.txt").exists()
    (root / "big.txt").write_text("y" * 500)
    read = call(tools["read_file"], {"path": "big.txt"})
    assert read.content.startswith("y" * 100) and "truncated" in read.content
    assert "y" * 101 not in read.content


def test_workspace_escapes_are_refused(
    workspace: tuple[Path, dict[str, AgentTool]], tmp_path: Path
) -> None:
    root, tools = workspace
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (root / "out").symlink_to(tmp_path)
    (root / "link.txt").symlink_to(secret)
    for path in ("../secret.txt", str(secret), "out/secret.txt", "link.txt", "a/../../secret.txt"):
        result = call(tools["read_file"], {"path": path})
        assert result.is_error and "top secret" not in result.content, path
    for path in ("../evil.txt", "/tmp/evil.txt", "out/evil.txt"):
        assert call(tools["write_file"], {"path": path, "content": "x"}).is_error, path
    assert not (tmp_path / "evil.txt").exists()
    assert secret.read_text() == "top secret"
    assert call(tools["write_file"], {"path": "link.txt", "content": "x"}).is_error
    assert secret.read_text() == "top secret"
    assert call(tools["list_dir"], {"path": ".."}).is_error
    assert call(tools["list_dir"], {"path": "out"}).is_error


# --- http_get ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ("hello from the test server " * 100).encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/page"
    httpd.shutdown()
    httpd.server_close()


def test_http_get_refuses_loopback_by_default(server: str) -> None:
    fetch = http_get()
    assert fetch.side_effects == {"network"} and fetch.needs_approval
    result = call(fetch, {"url": server})
    assert result.is_error and "loopback" in result.content
    assert call(fetch, {"url": "file:///etc/passwd"}).is_error


def test_http_get_fetches_when_private_allowed(server: str) -> None:
    result = call(http_get(allow_private=True, max_chars=50), {"url": server})
    assert not result.is_error
    assert result.data["status"] == 200 and result.data["content_type"].startswith("text/plain")
    assert result.data["text"].startswith("hello from the test server")
    assert "truncated" in result.data["text"]
    too_big = call(http_get(allow_private=True, max_bytes=100), {"url": server})
    assert too_big.is_error and "larger than" in too_big.content


# --- python sandbox ---------------------------------------------------------------------------


def test_python_returns_output() -> None:
    py = python_exec()
    assert py.side_effects == {"exec"} and py.needs_approval
    result = call(py, {"code": "import sys\nprint(6 * 7)\nprint('warn', file=sys.stderr)"})
    assert not result.is_error
    assert result.data["stdout"] == "42\n" and "warn" in result.data["stderr"]
    failed = call(py, {"code": "raise ValueError('bad input')"})
    assert failed.is_error and "ValueError: bad input" in failed.content


def test_python_wall_clock_limit() -> None:
    start = time.monotonic()
    result = call(
        python_exec(SandboxLimits(wall_seconds=1, cpu_seconds=30)), {"code": "while True: pass"}
    )
    assert time.monotonic() - start < 5
    assert result.is_error and "wall-clock limit" in result.content


def test_python_cpu_and_memory_limits() -> None:
    cpu = call(
        python_exec(SandboxLimits(cpu_seconds=1, wall_seconds=20)), {"code": "while True: pass"}
    )
    assert cpu.is_error and "CPU time limit" in cpu.content
    hog = call(python_exec(SandboxLimits(memory_mb=256)), {"code": "x = bytearray(2 * 1024**3)"})
    assert hog.is_error and "memory limit of 256 MB" in hog.content


def test_python_has_no_network() -> None:
    code = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(2)\n"
        "try:\n"
        "    s.connect(('93.184.216.34', 80))\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = call(python_exec(), {"code": code})
    assert "refused: network access is disabled" in result.data["stdout"]
    spawn = call(python_exec(), {"code": "import subprocess\nsubprocess.run(['true'])"})
    assert spawn.is_error and "starting processes is disabled" in spawn.content


# --- knowledge bases --------------------------------------------------------------------------


def test_kb_search_and_ask_over_a_tiny_kb(tmp_path: Path) -> None:
    from hanlin import KnowledgeBase

    doc = tmp_path / "garden.md"
    doc.write_text(
        "# Gardening\n\nTomatoes need full sun and regular watering.\n\n"
        "## Soil\n\nLoamy soil with compost gives the best harvest of tomatoes.\n",
        "utf-8",
    )
    with KnowledgeBase.create("garden") as kb:
        assert kb.add(doc).ok
    search = kb_search("garden")
    assert "garden" in search.description and not search.needs_approval
    result = call(search, {"query": "what soil do tomatoes need", "k": 2})
    assert not result.is_error
    hits = json.loads(result.content)
    assert hits and hits[0]["source"].endswith("garden.md") and "soil" in json.dumps(hits).lower()
    assert {"source", "title", "page", "text"} <= hits[0].keys()
    missing = call(kb_search("nope"), {"query": "x"})
    assert missing.is_error and "no knowledge base named 'nope'" in missing.content
    answer = call(
        kb_ask("garden", mode="extractive"), {"question": "What soil is best for tomatoes?"}
    )
    assert not answer.is_error
    assert "compost" in answer.data["answer"].lower()
    assert answer.data["citations"][0]["source"].endswith("garden.md")
