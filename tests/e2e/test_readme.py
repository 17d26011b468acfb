"""README.md runs as written: its shell blocks against a fresh ``make run``.

The stack is what ``make run`` starts (``python -m cascade.local``, its own process, default key
and settings, ``CASCADE_TIME_SCALE=7200`` as the quick start suggests). Every ``curl`` of every
runnable block is run verbatim by the real ``curl`` in bash, from the repository root (so
``-d @events/…`` works), with ``$U`` and ``$K`` from README's ``export`` line (``$U`` on this
stack's port). Placeholders are filled the way a reader fills them, from an earlier answer or the
outbox. Each answer is checked against README's ``# →`` comment (status code, and the JSON it
shows, ``…`` standing for any text); a command without one must succeed (2xx). A JSON block right
after a block is the answer of its last command. Every event README posts must start a cascade
that sends something, and the event example of "The API" is posted too.

A shell block this test cannot run fails it, unless it is in :data:`SKIPPED` with the reason."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TIME_SCALE = "7200"
# README's shell blocks that do not talk to the local stack, by the heading above them.
SKIPPED = {
    "Two commands": "`make run` is what this test starts (python -m cascade.local); `make test` is the suite itself",
    "Watch the demo": "`make demo` plays every preset in tests/e2e/test_demo.py",
    "Deploy to AWS": "needs an AWS account",
    "Operating on AWS": "needs a deployed stack and its queue",
}
# A placeholder a reader fills from the outbox: the message of this channel in the last cascade.
FROM_OUTBOX = {"<call sid>": "voice"}
SECRET = "readme-secret-0123456789abcdef"  # what a reader makes up for "<16-256 characters>"


@dataclass
class Block:
    heading: str
    lang: str
    text: str
    answer: str | None = None  # a JSON block right after it: the answer of its last command


def blocks(markdown: str) -> list[Block]:
    """README's fenced blocks, each with the heading it is under."""
    found: list[Block] = []
    heading, fence, last_end = "", None, -1
    body: list[str] = []
    lines = markdown.splitlines()
    for number, line in enumerate(lines):
        if fence is None and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif fence is None and line.startswith("```"):
            fence, body = line[3:].strip(), []
        elif fence is not None and line.startswith("```"):
            if fence == "json" and found and last_end == number - len(body) - 2 and found[-1].lang == "bash":
                found[-1].answer = "\n".join(body)
            else:
                found.append(Block(heading, fence, "\n".join(body)))
            fence, last_end = None, number
        elif fence is not None:
            body.append(line)
    return found


def _complete(command: str) -> bool:
    """Whether a shell line closes every quote it opens (a comment's apostrophe does not count)."""
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return False
    return True


def commands(block: Block) -> list[tuple[str, str | None]]:
    """Each command of a shell block (continuation lines and a quoted body's lines joined) with its
    ``# →`` comment: on its own line, or on the comment line right after it."""
    joined = block.text.replace("\\\n", " ")
    found: list[tuple[str, str | None]] = []
    lines: list[str] = []
    for line in joined.splitlines():  # a quoted JSON body may go on over several lines
        if lines and not _complete(lines[-1]):
            lines[-1] += "\n" + line
        else:
            lines.append(line)
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("# →") and found and found[-1][1] is None:
            found[-1] = (found[-1][0], stripped[3:].strip())
        elif stripped and not stripped.startswith("#"):
            comment = re.search(r"\s#\s*(.*)$", stripped)
            said = comment.group(1) if comment else ""
            found.append((stripped, said[1:].strip() if said.startswith("→") else None))
    return found


def matches(expected: Any, actual: Any) -> bool:
    """README's JSON against an answer: objects by the keys README shows, lists item by item, and
    ``…`` in a string for any text."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            matches(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, str) and "…" in expected and isinstance(actual, str):
        return re.fullmatch(".*".join(map(re.escape, expected.split("…"))), actual, re.S) is not None
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (expected, actual))
    if numbers and (isinstance(expected, float) or isinstance(actual, float)):
        return abs(expected - actual) < 1e-6
    return bool(expected == actual)


def expectation(comment: str) -> tuple[int | None, Any]:
    """``# → 202 {"cascade_id": "c_…"}``, ``# → "status": "succeeded"``, ``# → 204: prose``."""
    found = re.match(r"(\d{3})?\s*(.*)$", comment)
    assert found is not None
    status, rest = found.group(1), found.group(2).strip()
    shown: Any = None
    try:
        if rest.startswith("{"):
            shown, _ = json.JSONDecoder().raw_decode(rest)
        elif rest.startswith('"'):
            shown = json.loads("{" + rest + "}")
    except json.JSONDecodeError as exc:
        raise AssertionError(f"README's answer is not JSON this test can check ({exc}): → {comment}") from None
    return (int(status) if status else None), shown


@dataclass
class Reader:
    """A newcomer at a terminal: runs each command, reads each answer."""

    base: str
    env: dict[str, str]
    answers: list[Any] = field(default_factory=list)
    cascades: dict[str, str] = field(default_factory=dict)  # cascade id → the command that started it
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def run(self, command: str) -> tuple[int, str]:
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, f"{command}\nexit {done.returncode}: {done.stderr}"
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body

    def last(self, key: str) -> Any:
        return next((a[key] for a in reversed(self.answers) if isinstance(a, dict) and key in a), None)

    def outbox(self, cascade_id: str) -> list[dict[str, Any]]:
        return list(self.http.get(f"{self.base}/local/outbox", params={"cascade_id": cascade_id}).json()["messages"])

    def fill(self, command: str, before: str) -> str:
        """Put in what a reader would: ids from the previous answers, messages from the outbox."""
        for placeholder in re.findall(r"<[^<>]+>", command.split(" #")[0]):
            if placeholder == "<cascade_id>":
                value = self.last("cascade_id")
            elif placeholder == "<link>":
                value = self.last("link")
            elif placeholder == "<id>":
                # "copy the email's provider_message_id" said the command before: run it until it has one.
                said = re.search(r"the (\w+)'s provider_message_id", before)
                assert said, f"README does not say where {placeholder} comes from: {command}"
                value = self.from_answer(before, said.group(1))
            elif placeholder in FROM_OUTBOX:  # "let it reach the call": watch the outbox until it does
                value = self.in_outbox(self.last("cascade_id"), FROM_OUTBOX[placeholder])
            elif placeholder == "<16-256 characters>":
                value = SECRET
            else:
                raise AssertionError(f"README has a placeholder this test cannot fill: {placeholder} in {command}")
            assert value, f"no earlier answer gives {placeholder} for: {command}"
            command = command.replace(placeholder, str(value))
        return command

    def in_outbox(self, cascade_id: str, channel: str) -> str:
        def found() -> str | None:
            return next((m["provider_message_id"] for m in self.outbox(cascade_id) if m["channel"] == channel), None)
        return str(wait_for(f"a {channel} message of {cascade_id} in the outbox", found, timeout=90, every=0.2))

    def from_answer(self, command: str, channel: str) -> str:
        def found() -> str | None:
            _, body = self.run(self.fill(command, ""))
            return next((m["provider_message_id"] for m in json.loads(body)["messages"] if m["channel"] == channel),
                        None)
        return str(wait_for(f"a {channel} message from: {command}", found, timeout=60, every=0.3))

    def step(self, command: str, comment: str | None, before: str) -> Any:
        assert command.startswith("curl "), f"README has a command this test cannot run: {command}"
        status, body = self.run(self.fill(command, before))
        answer = json.loads(body) if body.strip() else None
        self.answers.append(answer)
        if comment is not None:
            expected_status, shown = expectation(comment)
            if expected_status is not None:
                assert status == expected_status, f"{command}\nREADME says {expected_status}, got {status}: {body}"
            if shown is not None:
                assert matches(shown, answer), f"{command}\nREADME shows {shown}\ngot {body}"
        assert 200 <= status < 300, f"{command}\n→ {status}: {body}"
        assert SECRET not in body, f"{command}: the CRM secret is shown in {body}"
        posted = re.search(r"-X POST \$U/v1/events\b", command) is not None
        if posted and isinstance(answer, dict) and "cascade_id" in answer and not answer.get("duplicate"):
            self.started(answer, command)
        return answer

    def started(self, answer: dict[str, Any], command: str) -> None:
        """An event README posts starts a cascade that sends something, and nothing says otherwise."""
        assert "warnings" not in answer, f"{command}\n→ {answer}"
        cascade_id = answer["cascade_id"]
        self.cascades[cascade_id] = command
        # A reader looks at the outbox before going on (the OTP's code expires within seconds here).
        wait_for(f"a message of {cascade_id}, started by {command}", lambda: self.outbox(cascade_id), timeout=90,
                 every=0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``make run`` in its own process: the defaults README's export line relies on (port aside)."""
    port = free_port()
    log = tmp_path_factory.mktemp("make-run") / "stack.log"
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_API_KEY", "SMS_PROVIDER")}
    env.update(PORT=str(port), CASCADE_TIME_SCALE=TIME_SCALE, PYTHONUNBUFFERED="1")
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cascade.local"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, f"the stack exited: {log.read_text()[-3000:]}"
        try:
            return httpx.get(f"{base}/local/info", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("make run to answer", up, timeout=120, every=0.3)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as README says
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def reader_for(base: str, tmp: Path) -> Reader:
    """``$U`` and ``$K`` as README's export line sets them (U on this stack's port), and a curl
    that also prints each answer's status code (from a config file: the commands stay as written)."""
    text = README.read_text()
    line = next((ln for b in blocks(text) for ln in b.text.splitlines() if ln.startswith("export U=")), None)
    assert line, "README's quick start sets U and K with an export line"
    exported = dict(word.split("=", 1) for word in shlex.split(line.split(" #")[0])[1:])
    assert exported["U"] == "http://127.0.0.1:3000", exported  # make run's default port
    (tmp / ".curlrc").write_text('write-out = "\\n%{http_code}"\n')
    env = {**os.environ, "U": base, "K": exported["K"], "CURL_HOME": str(tmp)}
    return Reader(base, env)


def test_every_shell_block_is_run_or_skipped_for_a_reason() -> None:
    shell = [b for b in blocks(README.read_text()) if b.lang in ("bash", "sh", "shell", "console")]
    runnable = [b for b in shell if "$U" in b.text]
    assert runnable and runnable[0].heading.startswith("Watch a cascade"), "the quick start has no curl on $U"
    for b in shell:
        if b in runnable:
            continue
        assert b.heading in SKIPPED, f"a shell block under {b.heading!r} that this test neither runs nor skips"
        assert "curl" not in b.text, f"a curl under {b.heading!r} that does not use $U: this test cannot run it"
    assert set(SKIPPED) == {b.heading for b in shell if b not in runnable}, "SKIPPED names a block README dropped"


def test_readme_runs_as_written(made_run: str, tmp_path: Path) -> None:
    """Given a fresh `make run`, when a reader runs README's shell blocks in order, then every
    answer is what README says, and every event it posts sends something."""
    reader = reader_for(made_run, tmp_path)
    ran = 0
    for block in blocks(README.read_text()):
        if "$U" not in block.text:
            continue
        before = ""
        steps = [(c, said) for c, said in commands(block) if not c.startswith("export ")]
        for number, (command, comment) in enumerate(steps):
            answer = reader.step(command, comment, before)
            ran += 1
            if number == len(steps) - 1 and block.answer is not None:
                assert matches(json.loads(block.answer), answer), (
                    f"{command}\nREADME shows {block.answer}\ngot {json.dumps(answer, ensure_ascii=False)}")
            before = command
        if block.heading.startswith("Watch a cascade"):
            # "the same file again → the same cascade_id, by its idempotency_key"
            first = next(c for c, _ in steps if "-d @events/" in c)
            started = next(i for i, c in reader.cascades.items() if c == first)
            assert reader.step(first, None, "")["cascade_id"] == started
    assert ran >= 20, f"only {ran} commands ran: README's blocks were not found"


def test_the_api_event_example_starts_a_cascade_that_sends(made_run: str, tmp_path: Path) -> None:
    """The event example under "The API" (`POST /v1/events`), posted as it is, is accepted with
    no warnings and its cascade sends its first message."""
    reader = reader_for(made_run, tmp_path)
    example = next(b for b in blocks(README.read_text())
                   if b.heading == "The API" and b.lang == "json" and '"recipient"' in b.text)
    (tmp_path / "event.json").write_text(example.text)
    command = f'curl -s -X POST $U/v1/events -H "$K" -d @{tmp_path / "event.json"}'
    reader.step(command, "202", "")
    assert reader.cascades, reader.answers
