"""Follows a factstream service and prints every fact as one JSON line, once
and in order, across disconnects and server restarts.

    python3 subscribe.py [BASE_URL]   (default: $FACTSTREAM_URL, else http://localhost:3000)

FACTSTREAM_TOKEN, when set, is sent as a bearer token. Standard library only.
"""

import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request


# docs snippet: events
def events(base, token=None):
    """Yields (event type, data) for every event of the stream, resuming
    after the last event seen (Last-Event-ID) whenever the connection ends."""
    last_id, retry = None, 3.0
    while True:
        req = urllib.request.Request(base.rstrip("/") + "/events", headers={"Accept": "text/event-stream"})
        if last_id is not None:
            req.add_header("Last-Event-ID", last_id)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=60) as stream:
                event, data, id_buffer = "", [], last_id
                for raw in stream:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if line == "":  # a blank line dispatches the event
                        # The position moves only once an event is whole.
                        last_id = id_buffer
                        if data:
                            yield event or "message", "\n".join(data)
                        event, data = "", []
                        continue
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "data":
                        data.append(value)
                    elif field == "event":
                        event = value
                    elif field == "id":
                        id_buffer = value
                    elif field == "retry" and value.isdigit():
                        retry = int(value) / 1000
                    # Lines starting with ":" (keepalives) are comments.
        except urllib.error.HTTPError as err:
            if err.code not in (429, 503):  # anything else will not go away
                raise
        except (OSError, http.client.HTTPException):
            pass  # the connection failed or was cut: resume
        time.sleep(retry)
# docs snippet end


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FACTSTREAM_URL", "http://localhost:3000")
    # docs snippet: print
    for event, data in events(base, os.environ.get("FACTSTREAM_TOKEN")):
        if event == "message":
            # The first events hold arrays of facts, every later one a
            # single fact: concatenating what arrives shows each fact once.
            value = json.loads(data)
            for fact in value if isinstance(value, list) else [value]:
                print(json.dumps(fact, ensure_ascii=False, separators=(",", ":")), flush=True)
        elif event in ("truncated", "deleted"):
            print(f"{event}: {data}", file=sys.stderr, flush=True)
    # docs snippet end


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except urllib.error.HTTPError as err:
        sys.exit(f"subscribe: {err.code} {err.read().decode('utf-8', 'replace')}")
