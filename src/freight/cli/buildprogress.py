"""The build's progress on the terminal: the daemon's message stream shown as
``plain``, ``tty`` (a live view redrawn in place) or ``quiet`` (see
``cli.commands.build`` for what each looks like and the freight extensions of
the stream that drive the step views).

Owns: which step a line of output belongs to, the step rows and their
states/times, and the three renderings. Knows nothing of flags or of the API
call: ``drive`` takes any iterable of decoded JSON messages.
"""

from __future__ import annotations

import os
import time

from freight.cli.session import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any, TextIO

LOG_TAIL = 6  # output lines shown under a running step in the live view
ERROR_TAIL = 12  # ... and under a failed one in the final frame
REDRAW_INTERVAL = 0.1  # seconds between live-view frames


def drive(messages: Iterable[dict[str, Any]], view: BuildView) -> str:
    """Feed the stream to the view; the image ID, or CliError (status 1) on failure."""
    if isinstance(view, LiveView):
        _drive_live(messages, view)
    else:
        for message in messages:
            view.feed(message)
    return view.finish()


def _drive_live(messages: Iterable[dict[str, Any]], view: LiveView) -> None:
    """Read in a thread so the view keeps ticking while a step prints nothing."""
    import queue
    import threading

    items: queue.Queue[tuple[str, Any]] = queue.Queue()

    def read() -> None:
        try:
            for message in messages:
                items.put(("message", message))
            items.put(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            items.put(("raise", e))

    threading.Thread(target=read, name="build-stream", daemon=True).start()
    view.start()
    try:
        while True:
            try:
                kind, item = items.get(timeout=REDRAW_INTERVAL)
            except queue.Empty:
                view.tick()
                continue
            if kind == "end":
                return
            if kind == "raise":
                raise item
            view.feed(item)
            view.tick()
    except BaseException:
        view.abandon()
        raise


def make_view(mode: str, out: TextIO, tags: list[str]) -> BuildView:
    if mode == "quiet":
        return QuietView(out, tags)
    if mode == "tty":
        return LiveView(out, tags)
    return PlainView(out, tags)


# ------------------------------------------------------------------ the views


class StepRow:
    """One Dockerfile step as the daemon reported it."""

    __slots__ = ("number", "total", "stage", "instruction", "state", "seconds", "started", "logs")

    def __init__(self, info: dict[str, Any], now: float) -> None:
        self.number = int(info.get("step") or 0)
        self.total = int(info.get("total") or 0)
        stage = str(info.get("stage", ""))
        self.stage = f"stage-{stage}" if stage.isdigit() else stage
        self.instruction = " ".join(str(info.get("instruction", "")).split())
        self.state = "running"
        self.seconds = 0.0
        self.started = now
        self.logs: list[str] = []

    def title(self) -> str:
        """BuildKit's ``[stage-0 2/5] RUN make``."""
        return f"[{self.stage} {self.number}/{self.total}] {self.instruction}"

    def finished(self) -> bool:
        return self.state != "running"


class BuildView:
    """What every view needs from the stream: step states, which step a line of
    output belongs to, the image ID and the error.

    Lines are whole lines (a partial one waits for its end); the daemon's
    ``Step N/M : ...`` header is held back one message and dropped when a freight
    step message follows (the step views draw their own header), so a daemon
    without the extension gets its classic output untouched.
    """

    def __init__(self, out: TextIO, tags: list[str], clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.tags = tags
        self.clock = clock
        self.rows: dict[int, StepRow] = {}
        self.running: list[int] = []  # started, not finished; latest last
        self.recent: int | None = None  # the step of the latest step message
        self.image_id = ""
        self.error = ""
        self.after_id = False  # lines after the image ID: "Successfully built ..."
        self.success_seen = False
        self._partial = ""
        self._step_partials: dict[int, str] = {}  # unfinished lines of tagged output
        self._header: str | None = None
        self.sent = 0  # context bytes uploaded so far
        self.sent_done: float | None = None  # seconds the upload took, once done

    # input ---------------------------------------------------------------------
    def sending(self, body: Any) -> Iterator[bytes]:
        """Wrap the context body to count (and show) what is uploaded."""
        read = getattr(body, "read", None)
        pieces: Iterable[bytes] = iter(lambda: read(65536), b"") if read else body
        started = self.clock()
        for piece in pieces:
            self.sent += len(piece)
            self.on_sending()
            yield piece
        self.sent_done = self.clock() - started
        self.on_sent()

    def feed(self, message: dict[str, Any]) -> None:
        freight = (message.get("aux") or {}).get("freight") if "aux" in message else None
        if self._header is not None:
            header, self._header = self._header, None
            if not (freight and freight.get("state") == "running"):
                self._line(header)
        error = message.get("error") or (message.get("errorDetail") or {}).get("message")
        if error:
            self._flush_partial()
            self._flush_step_partials()
            self.error = str(error)
            self.on_error(self.error)
        elif freight:
            self._flush_partial()
            self._step(freight)
        elif "aux" in message:
            ident = (message["aux"] or {}).get("ID")
            if ident:
                self._flush_partial()
                self.image_id = str(ident)
                self.after_id = True
        elif "stream" in message:
            step = message.get("freightStep")
            if isinstance(step, int) and step > 0:
                self._step_text(str(message["stream"]), step)
            else:
                self._text(str(message["stream"]))
        elif message.get("status"):
            text = (f"{message['id']}: " if message.get("id") else "") + str(message["status"])
            self._line(text + (f" {message['progress']}" if message.get("progress") else ""))

    def finish(self) -> str:
        """End of stream: the image ID; CliError(status 1) if the build failed."""
        if self._header is not None:
            self._line(self._header)
            self._header = None
        self._flush_partial()
        self._flush_step_partials()
        if not self.error and not self.image_id:
            self.error = "the build ended without an image ID"
        self.on_finish()
        if self.error:
            raise CliError(self.error, 1)
        return self.image_id

    def success_lines(self) -> list[str]:
        """The legacy builder's closing lines, when the daemon did not send them."""
        if self.success_seen or not self.image_id:
            return []
        short = self.image_id.removeprefix("sha256:")[:12]
        return [f"Successfully built {short}"] + [f"Successfully tagged {t}" for t in self.tags]

    def _step(self, info: dict[str, Any]) -> None:
        number = int(info.get("step") or 0)
        state = str(info.get("state") or "running")
        if state != "running":
            self._flush_step_partials(number)
        row = self.rows.get(number)
        if row is None or state == "running":
            row = self.rows[number] = StepRow(info, self.clock())
        if number in self.running:
            self.running.remove(number)
        row.state = state
        if state == "running":
            self.running.append(number)
        else:
            row.seconds = float(info.get("seconds") or 0.0)
        self.recent = number
        self.on_step(row)

    def _text(self, text: str) -> None:
        text = self._partial + text
        *lines, self._partial = text.split("\n")
        for line in lines:
            if self._header is not None:
                self._line(self._header)
                self._header = None
            if _is_step_header(line):
                self._header = line
            else:
                self._line(line)

    def _step_text(self, text: str, step: int) -> None:
        """Output the daemon tagged with its step (freightStep: stages run side by
        side, so the latest step is no guide); its `Step N/M` header is dropped, the
        step views draw their own."""
        text = self._step_partials.pop(step, "") + text
        *lines, rest = text.split("\n")
        if rest:
            self._step_partials[step] = rest
        for line in lines:
            if not _is_step_header(line):
                self._line(line, step)

    def _flush_step_partials(self, step: int | None = None) -> None:
        for number in [step] if step is not None else list(self._step_partials):
            line = self._step_partials.pop(number, "") if number is not None else ""
            if line:
                self._line(line, number)

    def _flush_partial(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            self._line(line)

    def _line(self, line: str, step: int | None = None) -> None:
        if self.after_id and line.startswith("Successfully built "):
            self.success_seen = True
        owner = step if step is not None else self.owner(line)
        self.on_line(None if self.after_id else owner, line)

    def owner(self, line: str) -> int | None:
        """The step a line of output belongs to (streams carry no step number)."""
        recent = self.rows.get(self.recent) if self.recent is not None else None
        if recent is not None and (not recent.finished() or line.startswith(" ---> ")):
            return recent.number  # " ---> <id>" follows its step's end
        return self.running[-1] if self.running else None

    # output, per view ------------------------------------------------------------
    def on_sending(self) -> None:
        pass

    def on_sent(self) -> None:
        pass

    def on_step(self, row: StepRow) -> None:
        raise NotImplementedError

    def on_line(self, step: int | None, line: str) -> None:
        raise NotImplementedError

    def on_error(self, message: str) -> None:
        pass

    def on_finish(self) -> None:
        pass


def _is_step_header(line: str) -> bool:
    """The legacy ``Step 3/7 : RUN make`` line."""
    head, sep, _ = line.partition(" : ")
    words = head.split(" ")
    if not sep or len(words) != 2 or words[0] != "Step":
        return False
    n, slash, m = words[1].partition("/")
    return bool(slash) and n.isdigit() and m.isdigit()


class QuietView(BuildView):
    """``-q``: nothing but the image ID at the end."""

    def on_step(self, row: StepRow) -> None:
        pass

    def on_line(self, step: int | None, line: str) -> None:
        pass

    def on_finish(self) -> None:
        if self.image_id and not self.error:
            self.out.write(self.image_id + "\n")
        self.out.flush()


class PlainView(BuildView):
    """Classic stream text, prefixed per step (``#N``) with BuildKit-plain step lines.

    A step's ``DONE`` waits for the next message, so the ``---> <id>`` line the
    legacy builder prints after a step stays above it.
    """

    def __init__(self, out: TextIO, tags: list[str], clock: Callable[[], float] = time.monotonic):
        super().__init__(out, tags, clock)
        self._pending: tuple[int, str] | None = None

    def _write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _flush_pending(self) -> None:
        if self._pending is not None:
            self._write(self._pending[1])
            self._pending = None

    def on_sent(self) -> None:
        from freight.dockerapi.humanize import human_size

        self._write("#0 [internal] load build context")
        self._write(f"#0 transferring context: {human_size(self.sent)} done")
        self._write(f"#0 DONE {self.sent_done or 0.0:.1f}s")

    def on_step(self, row: StepRow) -> None:
        self._flush_pending()
        n = row.number
        if row.state == "running":
            self._write(f"#{n} {row.title()}")
        elif row.state == "cached":
            self._pending = (n, f"#{n} CACHED")
        elif row.state == "done":
            self._pending = (n, f"#{n} DONE {row.seconds:.1f}s")

    def on_line(self, step: int | None, line: str) -> None:
        pending = self._pending
        if pending is None or step != pending[0] or not line.startswith(" ---> "):
            self._flush_pending()
        self._write(f"#{step} {line}" if step is not None else line)

    def on_error(self, message: str) -> None:
        self._flush_pending()
        failed = [r for r in self.rows.values() if r.state == "error"]
        for row in failed:
            self._write(f"#{row.number} ERROR: {message}")

    def on_finish(self) -> None:
        self._flush_pending()
        if not self.error:
            for line in self.success_lines():
                self._write(line)


class LiveView(BuildView):
    """The terminal view: a frame of step lines redrawn in place.

    Lines that belong to no step (warnings, pull text before the first step)
    scroll above the frame; the closing "Successfully ..." lines come after
    the final frame. The frame is cut to the terminal's height, because the
    cursor cannot go back up to lines that scrolled off the screen.
    """

    def __init__(
        self,
        out: TextIO,
        tags: list[str],
        clock: Callable[[], float] = time.monotonic,
        size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(out, tags, clock)
        self.begun = clock()
        self.size = size  # (columns, lines); None: ask the terminal at each frame
        self.scroll: list[str] = []  # to print above the next frame
        self.trailer: list[str] = []
        self._drawn = 0  # lines of the frame on screen
        self._dirty = True
        self._last_draw = 0.0

    # input ---------------------------------------------------------------------
    def on_sending(self) -> None:
        self._dirty = True
        self.tick()

    def on_step(self, row: StepRow) -> None:
        self._dirty = True

    def on_line(self, step: int | None, line: str) -> None:
        row = self.rows.get(step) if step is not None else None
        if row is not None:
            if not _is_bookkeeping(line):
                row.logs.append(_printable(line))
                del row.logs[:-ERROR_TAIL]
        elif self.after_id:
            self.trailer.append(line)
        else:
            self.scroll.append(line)
        self._dirty = True

    # drawing -------------------------------------------------------------------
    def start(self) -> None:
        self.out.write("\x1b[?25l")  # hide the cursor while redrawing
        self.draw()

    def tick(self) -> None:
        now = self.clock()
        if (self._dirty or self.running) and now - self._last_draw >= REDRAW_INTERVAL:
            self.draw()

    def draw(self, final: bool = False) -> None:
        columns, lines = self._size()
        frame = self.frame(columns, final, None if final else lines - 1)
        parts = [f"\x1b[{self._drawn}A" if self._drawn else "", "\r\x1b[J"]
        parts += [_fit(s, columns) + "\n" for s in self.scroll]
        parts += [s + "\n" for s in frame]
        self.scroll.clear()
        self.out.write("".join(parts))
        self.out.flush()
        self._drawn = len(frame)
        self._dirty = False
        self._last_draw = self.clock()

    def frame(self, columns: int, final: bool = False, height: int | None = None) -> list[str]:
        """The view's lines now, each shorter than ``columns``, at most ``height`` of them:
        finished steps leave first, then output lines, then the oldest running steps."""
        now = self.clock()
        rows = [self.rows[n] for n in sorted(self.rows)]
        if not rows and not self.sent and self.sent_done is None:
            return []  # nothing to show yet (or a daemon without step messages)
        total = max((r.total for r in rows), default=0)
        done = sum(1 for r in rows if r.state in ("done", "cached"))
        head = f"[+] Building {now - self.begun:.1f}s ({done}/{total})"
        if final and not self.error:
            head += " FINISHED"
        blocks: list[tuple[bool, str, list[str]]] = []  # (finished, line, output lines)
        if self.sent or self.sent_done is not None:
            blocks.append((self.sent_done is not None, self._context_line(columns, now), []))
        for row in rows:
            tail = LOG_TAIL if row.state == "running" else ERROR_TAIL if row.state == "error" else 0
            logs = row.logs[-tail:] if tail and (not final or row.state == "error") else []
            finished = row.state in ("done", "cached")
            blocks.append((finished, _row_line(row, now, columns), logs))
        if height is not None:
            blocks = _fit_height(blocks, height - 1)
        out = [_fit(head, columns)]
        for _, line, logs in blocks:
            out.append(line)
            out += [_fit(f" => => # {log}", columns) for log in logs]
        return out

    def _context_line(self, columns: int, now: float) -> str:
        from freight.dockerapi.humanize import human_size

        seconds = self.sent_done if self.sent_done is not None else now - self.begun
        text = f" => [internal] load build context: {human_size(self.sent)}"
        return _with_time(text, f"{seconds:.1f}s", columns)

    def _size(self) -> tuple[int, int]:
        if self.size is not None:
            return self.size
        try:
            size = os.get_terminal_size(self.out.fileno())
        except (OSError, ValueError, AttributeError):
            return 80, 24
        return size.columns or 80, size.lines or 24

    def abandon(self) -> None:
        """Interrupted: leave the last frame on screen and the cursor visible."""
        self.out.write("\x1b[?25h")
        self.out.flush()

    def on_finish(self) -> None:
        self.draw(final=True)
        columns, _ = self._size()
        extra = [] if self.error else self.success_lines()
        text = "".join(_fit(s, columns) + "\n" for s in self.trailer + extra)
        self.out.write(text + "\x1b[?25h")
        self.out.flush()


def _fit_height(
    blocks: list[tuple[bool, str, list[str]]], height: int
) -> list[tuple[bool, str, list[str]]]:
    def size() -> int:
        return sum(1 + len(logs) for _, _, logs in blocks)

    while size() > height and any(finished for finished, _, _ in blocks):
        first = next(i for i, (finished, _, _) in enumerate(blocks) if finished)
        del blocks[first]
    if size() > height:
        with_logs = sum(1 for _, _, logs in blocks if logs) or 1
        keep = max((height - len(blocks)) // with_logs, 0)
        blocks = [(f, line, logs[-keep:] if keep else []) for f, line, logs in blocks]
    return blocks[max(len(blocks) - height, 0) :] if height > 0 else []


def _row_line(row: StepRow, now: float, columns: int) -> str:
    mark = {"cached": "CACHED ", "error": "ERROR "}.get(row.state, "")
    seconds = now - row.started if row.state == "running" else row.seconds
    return _with_time(f" => {mark}{row.title()}", f"{seconds:.1f}s", columns)


def _with_time(text: str, right: str, columns: int) -> str:
    """``text`` then ``right`` flush to the right edge, within ``columns - 1``."""
    room = max(columns - 2 - len(right), 1)
    return _fit(text, room + 1).ljust(room) + " " + right


def _fit(text: str, columns: int) -> str:
    # One character short of the width: a full line wraps on some terminals,
    # and a wrapped line breaks the cursor-up count of the next frame.
    width = max(columns - 1, 1)
    return text if len(text) <= width else text[: width - 1] + "…"


def _printable(line: str) -> str:
    """The visible part of an output line: after the last \\r, without control codes."""
    line = line.rstrip("\r").rsplit("\r", 1)[-1].expandtabs()
    return "".join(c for c in line if c >= " " and c != "\x7f")


def _is_bookkeeping(line: str) -> bool:
    """The legacy builder's own lines, which the step rows already say."""
    return line.startswith((" ---> ", "Removing intermediate container "))
