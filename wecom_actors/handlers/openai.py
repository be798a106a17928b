"""The ``openai`` handler: answers with any OpenAI-compatible chat completions server.

OpenAI, vLLM, Ollama, llama.cpp's server, DeepSeek, Qwen... anything that serves
``POST /v1/chat/completions`` with ``"stream": true``. Use it as ``wecom-actors run --handler
openai`` (settings from ``OPENAI_*``/``WECOM_LLM_*`` and the config file's ``[llm]`` table), or
from Python::

    handler = OpenAIHandler(LLMSettings(base_url="http://127.0.0.1:11434/v1", model="qwen3"))
    await serve_bot(config, handler, task_status=...)

The answer streams into one reply (frames coalesced by the library); reasoning shows as a
collapsed quote while it streams and is not part of the final text; each conversation (each
sender, in a group) has a bounded memory that ``/reset`` clears; images reach multimodal models
as data URLs. With no server configured, a bundled fake model answers, and says so.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Hashable, Mapping
from typing import Any

import httpx
import trio

from .._logging import register_secret
from ..errors import MediaError
from ..protocol.inbound import EnterChatEvent, FileMessage, VideoMessage
from ._llm_client import LLMError, stream_completion
from ._llm_config import LLMSettings
from ._llm_memory import Memory, memory_key
from ._llm_view import AnswerWriter
from ._think import ThinkSplitter
from .turn import Turn

__all__ = ["LLMError", "LLMSettings", "OpenAIHandler", "from_cli"]

log = logging.getLogger("wecom_actors.llm")

RESET_COMMAND = "/reset"
RESET_DONE = "Done: I have forgotten our conversation. The next message starts a new one."
RESET_EMPTY = "There was nothing to forget: the next message starts a new conversation."
NO_FILES = "Sorry, I can only read text and images, not files or videos."
NO_IMAGES = "Sorry, I cannot see images. Please describe it in words."
EMPTY_ANSWER = "The model returned an empty answer."
FINISH_NOTES = {
    "length": "The answer was cut at the model's token limit.",
    "content_filter": "The model's content filter stopped the answer.",
}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The media type of a PNG, JPEG, GIF or WebP image, from its first bytes; else ``None``."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class OpenAIHandler:
    """A handler (``await handler(turn)``) answering with a chat completions server.

    ``transport`` replaces httpx's network transport (tests: ``FakeOpenAI().transport``). With
    neither ``base_url`` nor ``api_key`` set, the bundled fake model answers.
    """

    def __init__(self, settings: LLMSettings | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings or LLMSettings()
        register_secret(self.settings.api_key)  # LLMSettings.load does too; direct construction not
        if transport is None and self.settings.uses_fake:
            from ..testing.fake_openai import FakeOpenAI

            transport = FakeOpenAI().transport
            log.warning(
                "no OPENAI_BASE_URL or OPENAI_API_KEY set: answering with the bundled fake model "
                "(no network); see docs/llm.md"
            )
        else:
            url = httpx.URL(self.settings.endpoint)  # shown without any user:password@
            port = f":{url.port}" if url.port else ""
            log.info("answering with model %r at %s://%s%s%s", self.settings.model, url.scheme, url.host, port, url.path)
        self.uses_fake = self.settings.uses_fake
        self._transport = transport
        self.memory = Memory(
            turns=self.settings.history_turns,
            max_bytes=self.settings.history_bytes,
            conversations=self.settings.history_conversations,
        )
        self._http: httpx.AsyncClient | None = None
        self._http_run: object = None
        self._announced = False
        self.__name__ = "openai"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, config_file: str | os.PathLike[str] | None = None
    ) -> OpenAIHandler:
        """Settings from the environment and the ``[llm]`` table of ``config_file``."""
        return cls(LLMSettings.load(environ=environ, config_file=config_file))

    def _client(self) -> httpx.AsyncClient:
        """One connection pool per trio run (a pool cannot outlive the run that made it)."""
        run = trio.lowlevel.current_root_task()
        if self._http is None or self._http_run is not run:
            timeout = self.settings.timeout
            self._http = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
                follow_redirects=False,
            )
            self._http_run = run
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- one turn --------------------------------------------------------------------------------

    async def __call__(self, turn: Turn) -> None:
        msg = turn.message
        if isinstance(msg, EnterChatEvent):
            if self.settings.welcome:
                await turn.welcome(self.settings.welcome)
            return
        if turn.is_event:
            return
        key = memory_key(bot=msg.aibotid, chat=msg.chatid, group=msg.is_group, user=msg.userid)
        text = turn.text.strip()
        if text.lower() == RESET_COMMAND:
            await turn.reply_text(RESET_DONE if self.memory.clear(key) else RESET_EMPTY)
            return
        if isinstance(msg, FileMessage | VideoMessage):
            await turn.reply_text(NO_FILES)
            return
        refs = turn.media_refs()
        if refs and not text and not self.settings.multimodal:
            log.info("an image-only message, and the model is not multimodal (WECOM_LLM_MULTIMODAL)")
            await turn.reply_text(NO_IMAGES)
            return
        if not text and not refs:
            return  # nothing to answer (an empty message)
        content, remembered = await self._user_content(turn, text, refs)
        messages = self._messages(key, content)
        answer = await self._answer(turn, messages)
        if answer:
            self.memory.add(key, remembered, answer)

    async def _user_content(self, turn: Turn, text: str, refs: list[Any]) -> tuple[Any, str]:
        """The user message's content (text, or parts with images) and what memory keeps."""
        if not refs:
            return text, text
        images: list[str] = []
        notes: list[str] = []
        for ref in refs:
            if not self.settings.multimodal:
                notes.append("[an image was attached, but you cannot see images]")
                continue
            try:
                payload = await turn.download(ref)
            except MediaError as exc:
                log.warning("image download failed: %s", exc)
                notes.append("[an image was attached, but it could not be downloaded]")
                continue
            kind = image_type(payload.data)
            if kind is None:
                notes.append("[an image was attached in a format that is not supported]")
            elif len(payload.data) > self.settings.image_max_bytes:
                notes.append("[an image was attached, but it is too large]")
            else:
                images.append(f"data:{kind};base64," + base64.b64encode(payload.data).decode("ascii"))
        full = "\n".join([text, *notes]).strip()
        remembered = "\n".join([text, *(["[image]"] * len(refs))]).strip()
        if not images:
            return full, remembered
        parts: list[dict[str, Any]] = [{"type": "text", "text": full}] if full else []
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
        return parts, remembered

    def _messages(self, key: Hashable, content: Any) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if self.settings.system_prompt:
            messages.append({"role": "system", "content": self.settings.system_prompt})
        for user, answer in self.memory.history(key):
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": content})
        return messages

    async def _answer(self, turn: Turn, messages: list[dict[str, Any]]) -> str:
        """Stream the answer into one reply; return it ('' when it failed or was empty)."""
        if self.uses_fake and not self._announced:
            log.info("the bundled fake model answers (set OPENAI_BASE_URL or OPENAI_API_KEY for a real one)")
            self._announced = True
        splitter = ThinkSplitter()
        async with turn.stream() as s:
            writer = AnswerWriter(s, show_reasoning=self.settings.show_reasoning)

            async def on_part(kind: str, text: str) -> None:
                if kind == "reasoning":
                    await writer.add_reasoning(text)
                    return
                for part_kind, part in splitter.feed(text):
                    await (writer.add_reasoning if part_kind == "reasoning" else writer.add_content)(part)

            try:
                finish = await stream_completion(self._client(), self.settings, messages, on_part)
            except LLMError as exc:
                log.warning("model %s: request failed: %s", self.settings.model, exc)
                await writer.end(exc.note)
                return ""
            for part_kind, part in splitter.close():
                await (writer.add_reasoning if part_kind == "reasoning" else writer.add_content)(part)
            if finish == "max_answer_bytes":
                note = f"The answer was cut at {self.settings.max_answer_bytes} bytes."
            else:
                note = FINISH_NOTES.get(finish or "", "")
            if not writer.answer.strip():
                note = note or EMPTY_ANSWER
            await writer.end(note)
            return writer.answer


def from_cli(*, config_file: str | os.PathLike[str] | None = None) -> OpenAIHandler:
    """``--handler openai``: settings from the environment and the config file's ``[llm]``."""
    return OpenAIHandler.from_env(config_file=config_file)
