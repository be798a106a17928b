"""An echo bot on the official ``wecom-aibot-python-sdk`` (1.0.2), run by
tests/test_conformance_sdks.py against the bundled fake WeCom, in its own virtual environment.

Settings from the environment (WECOM_WS_URL, WECOM_BOT_ID, WECOM_BOT_SECRET, HEARTBEAT_MS). The
SDK is used untouched: for a wss:// fake, the harness adds the fake's throwaway CA to the certifi
bundle of this environment, which is where the SDK takes its trust from. It reports what the SDK
tells it as JSON lines on stdout: {"event": ...}.
"""

import asyncio
import hashlib
import json
import os
import signal
import sys

from aibot import WSClient, WSClientOptions


def report(event, **extra):
    print(json.dumps({"event": event, **extra}), flush=True)


class Quiet:
    def debug(self, message, *args): pass
    def info(self, message, *args): pass
    def warn(self, message, *args): pass
    def error(self, message, *args): print(message, *args, file=sys.stderr)


def card(task_id, title):
    return {"card_type": "button_interaction", "main_title": {"title": title, "desc": "python sdk"},
            "button_list": [{"text": "Yes", "key": "yes", "style": 1}, {"text": "No", "key": "no", "style": 2}],
            "task_id": task_id}


async def main():
    client = WSClient(WSClientOptions(
        bot_id=os.environ["WECOM_BOT_ID"], secret=os.environ["WECOM_BOT_SECRET"],
        ws_url=os.environ["WECOM_WS_URL"], heartbeat_interval=int(os.environ.get("HEARTBEAT_MS", "30000")),
        reconnect_interval=200, max_reconnect_attempts=-1, logger=Quiet(),
    ))
    counter = [0]

    def guard(fn):
        async def run(frame):
            try:
                await fn(frame)
            except Exception as exc:  # reported to the harness, which fails the test
                report("handler_error", message=f"{type(exc).__name__}: {exc}")
        return run

    client.on("authenticated", lambda: report("authenticated"))
    client.on("disconnected", lambda reason=None: report("disconnected", reason=str(reason)))
    client.on("reconnecting", lambda attempt=None: report("reconnecting", attempt=attempt))
    client.on("error", lambda err=None: report("error", message=str(err)))
    client.on("event.disconnected_event", lambda frame=None: report("kicked"))

    @client.on("message.text")
    @guard
    async def on_text(frame):
        text = frame["body"]["text"]["content"]
        counter[0] += 1
        sid = f"py-stream-{counter[0]}"
        if text == "/card":
            await client.reply_template_card(frame, card(f"py_card_{counter[0]}", "Python card"))
        elif text.startswith("/push "):
            await client.reply_stream(frame, sid, "pushing", True)
            await client.send_message(frame["body"]["from"]["userid"], {"msgtype": "markdown", "markdown": {"content": text[6:]}})
        else:
            await client.reply_stream(frame, sid, text[: max(1, len(text) // 2)], False)
            await client.reply_stream(frame, sid, text, True)

    for kind in ("image", "file"):
        def make(kind):
            @guard
            async def on_media(frame):
                part = frame["body"][kind]
                data, filename = await client.download_file(part["url"], part.get("aeskey"))
                counter[0] += 1
                await client.reply_stream(frame, f"py-stream-{counter[0]}",
                                          f"{kind} {filename or '-'} md5:{hashlib.md5(data).hexdigest()}", True)
            return on_media
        client.on(f"message.{kind}", make(kind))

    @client.on("event.enter_chat")
    @guard
    async def on_enter(frame):
        await client.reply_welcome(frame, {"msgtype": "text", "text": {"content": "welcome from python"}})

    @client.on("event.template_card_event")
    @guard
    async def on_click(frame):
        ev = frame["body"]["event"]["template_card_event"]
        await client.update_template_card(frame, card(ev["task_id"], f"clicked {ev['event_key']}"))

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await client.connect()
    await stop.wait()
    client.disconnect()
    await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main())
