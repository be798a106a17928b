"""The fake WeCom long-connection server (wecom_actors.testing) from the outside: media.

Mixed messages with media downloads from the fake media server, and chunked uploads.

Raw client and helpers live in fake_openws_helpers.py; see its docstring for the ground rules.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
import trio
import trio.testing

from wecom_actors.testing import FakeErrcode, open_fake_wecom

from .fake_openws_helpers import BOT, RawClient, connect, decrypt, http_get, push_text

# --- group mixed, duplicate delivery, media ------------------------------------


async def test_group_mixed_message_and_duplicate_delivery() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            image = bytes(range(256)) * 3
            cb = await fake.send_mixed(["@Bot look", image], userid="U", chatid="G")
            frame = await c.recv()
            body = frame["body"]
            assert frame["cmd"] == "aibot_msg_callback" and body == cb.body
            assert (body["chatid"], body["chattype"], body["from"]) == (
                "G",
                "group",
                {"userid": "U"},
            )
            assert (body["aibotid"], body["msgtype"]) == (BOT, "mixed")
            text_item, image_item = body["mixed"]["msg_item"]
            assert text_item == {"msgtype": "text", "text": {"content": "@Bot look"}}
            url, aeskey = image_item["image"]["url"], image_item["image"]["aeskey"]
            assert url.startswith(fake.media_base_url + "/")
            response = await http_get(url)
            assert response.status_code == 200
            assert decrypt(response.content, aeskey) == image
            again = await fake.send_callback("aibot_msg_callback", cb.body)
            duplicate = await c.recv()
            assert duplicate["body"]["msgid"] == cb.msgid == again.msgid
            assert duplicate["headers"]["req_id"] == again.req_id != cb.req_id
            assert (await c.stream(cb.req_id, "S", "seen", True))["errcode"] == 0
            assert [b.content for b in fake.conversation("G")] == ["seen"]
            assert fake.conversation("U") == []


async def test_media_download_decrypts_and_expires(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            payloads = {"image": b"i" * 33, "file": "文件".encode() * 100, "video": b"v" * 32}
            await fake.send_image(payloads["image"])
            await fake.send_file(payloads["file"], filename="报告 1.pdf")
            await fake.send_video(payloads["video"])
            urls = []
            for _ in range(3):
                body = (await c.recv())["body"]
                part = body[body["msgtype"]]
                assert len(part["aeskey"]) == 43  # base64 of 32 bytes, without '=' padding
                response = await http_get(part["url"])
                assert response.status_code == 200
                assert decrypt(response.content, part["aeskey"]) == payloads[body["msgtype"]]
                if body["msgtype"] == "file":
                    disposition = response.headers["content-disposition"]
                    assert "filename*=UTF-8''%E6%8A%A5%E5%91%8A%201.pdf" in disposition
                urls.append(part["url"])
            await trio.sleep(299)
            assert (await http_get(urls[0])).status_code == 200
            await trio.sleep(2)  # media URLs are valid 5 minutes
            for url in urls:
                assert (await http_get(url)).status_code == 404
            assert (await http_get(fake.media_base_url + "/media/nope")).status_code == 404


# --- chunked upload + media reply -------------------------------------------------


async def upload(c: RawClient, data: bytes, chunks: int, mtype: str = "image") -> dict:
    size = -(-len(data) // chunks)
    init = {
        "type": mtype,
        "filename": "a.png",
        "total_size": len(data),
        "total_chunks": chunks,
        "md5": hashlib.md5(data).hexdigest(),
    }
    ack = await c.request("aibot_upload_media_init", init)
    assert ack["errcode"] == 0, ack
    upload_id = ack["body"]["upload_id"]
    for i in reversed(range(chunks)):  # out of order on purpose
        part = base64.b64encode(data[i * size : (i + 1) * size]).decode()
        chunk = {"upload_id": upload_id, "chunk_index": i, "base64_data": part}
        assert (await c.request("aibot_upload_media_chunk", chunk))["errcode"] == 0
    return await c.request("aibot_upload_media_finish", {"upload_id": upload_id})


async def test_chunked_upload_and_media_reply() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            data = bytes(range(256)) * 2344 + b"tail"  # 600068 bytes
            ack = await upload(c, data, 2)
            assert ack["errcode"] == 0 and ack["body"]["type"] == "image"
            assert isinstance(ack["body"]["created_at"], str)
            media_id = ack["body"]["media_id"]
            uploaded = fake.media(media_id)
            assert uploaded is not None and uploaded.data == data and uploaded.type == "image"
            cb = await push_text(fake, c, userid="U")
            reply = {"msgtype": "image", "image": {"media_id": media_id}}
            assert (await c.reply(cb, reply))["errcode"] == 0
            (bubble,) = fake.conversation("U")
            assert (bubble.kind, bubble.media_id) == ("image", media_id)
            wrong_type = {"msgtype": "file", "file": {"media_id": media_id}}
            assert (await c.reply(cb, wrong_type))["errcode"] == FakeErrcode.INVALID_MEDIA_ID
            unknown = {"msgtype": "image", "image": {"media_id": "nope"}}
            assert (await c.reply(cb, unknown))["errcode"] == FakeErrcode.INVALID_MEDIA_ID
            push = {"chatid": "U", "msgtype": "image", "image": {"media_id": media_id}}
            assert (await c.request("aibot_send_msg", push))["errcode"] == 0


async def test_upload_duplicate_chunk_is_idempotent() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            init = {"type": "file", "filename": "x.txt", "total_size": 6, "total_chunks": 2}
            up = (await c.request("aibot_upload_media_init", init))["body"]["upload_id"]
            for i, part in [(0, b"abc"), (0, b"abc"), (1, b"def")]:
                chunk = {
                    "upload_id": up,
                    "chunk_index": i,
                    "base64_data": base64.b64encode(part).decode(),
                }
                assert (await c.request("aibot_upload_media_chunk", chunk))["errcode"] == 0
            ack = await c.request("aibot_upload_media_finish", {"upload_id": up})
            uploaded = fake.media(ack["body"]["media_id"])
            assert uploaded is not None and (uploaded.data, uploaded.filename) == (
                b"abcdef",
                "x.txt",
            )
            ack = await c.request("aibot_upload_media_finish", {"upload_id": up})
            assert ack["errcode"] == FakeErrcode.INVALID_PARAMETER  # consumed


@pytest.mark.parametrize(
    ("init", "chunk", "errcode"),
    [
        ({"type": "pdf"}, None, 40058),
        ({"total_chunks": 101, "total_size": 101}, None, 40058),
        ({"total_chunks": 0}, None, 40058),
        ({"total_size": 0}, None, 40058),
        ({}, {"chunk_index": 2}, 40058),
        ({}, {"chunk_index": -1}, 40058),
        ({}, {"base64_data": "***"}, 40058),
        (
            {"total_size": 600_000},
            {"base64_data": base64.b64encode(b"x" * 524_289).decode()},
            45002,
        ),
        ({}, {"upload_id": "nope"}, 40058),
    ],
)
async def test_upload_errors(init: dict, chunk: dict | None, errcode: int) -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            base = {"type": "file", "filename": "f", "total_size": 4, "total_chunks": 2, **init}
            ack = await c.request("aibot_upload_media_init", base)
            if chunk is None:
                assert ack["errcode"] == errcode
                return
            assert ack["errcode"] == 0
            body = {
                "upload_id": ack["body"]["upload_id"],
                "chunk_index": 0,
                "base64_data": base64.b64encode(b"ab").decode(),
                **chunk,
            }
            assert (await c.request("aibot_upload_media_chunk", body))["errcode"] == errcode
            assert fake.statistics().acks_by_errcode[errcode] == 1


async def test_upload_finish_errors_and_expiry(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:

            async def start(data: bytes, md5: str | None = None) -> str:
                init = {"type": "file", "filename": "f", "total_size": len(data), "total_chunks": 2}
                if md5 is not None:
                    init["md5"] = md5
                return (await c.request("aibot_upload_media_init", init))["body"]["upload_id"]

            async def chunk(up: str, i: int, part: bytes) -> int:
                body = {
                    "upload_id": up,
                    "chunk_index": i,
                    "base64_data": base64.b64encode(part).decode(),
                }
                return (await c.request("aibot_upload_media_chunk", body))["errcode"]

            async def finish(up: str) -> int:
                return (await c.request("aibot_upload_media_finish", {"upload_id": up}))["errcode"]

            up = await start(b"abcd")
            assert await chunk(up, 0, b"ab") == 0
            assert await finish(up) == 40058  # chunk 1 missing
            up = await start(b"abcd", md5=hashlib.md5(b"abcX").hexdigest())
            assert await chunk(up, 0, b"ab") == 0 and await chunk(up, 1, b"cd") == 0
            assert await finish(up) == 40058  # md5 mismatch
            up = await start(b"abcd")
            assert await chunk(up, 0, b"ab") == 0 and await chunk(up, 1, b"c") == 0
            assert await finish(up) == 40058  # total_size mismatch
            up = await start(b"abcd")
            assert await chunk(up, 0, b"ab") == 0
            await trio.sleep(1801)  # an upload session lives 30 minutes
            assert await chunk(up, 1, b"cd") == 40058
            assert await finish(up) == 40058
            assert fake.statistics().acks_by_errcode[0] >= 6


async def test_upload_rate_limit_per_bot() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            init = {"type": "file", "filename": "f", "total_size": 1, "total_chunks": 1}
            for _ in range(30):
                assert (await c.request("aibot_upload_media_init", init))["errcode"] == 0
            assert (await c.request("aibot_upload_media_init", init))["errcode"] == 45009
            assert fake.statistics().acks_by_errcode[45009] == 1
