"""Publishes each line of standard input as a fact, each stored exactly once
even when connections fail, and prints every stored fact as one JSON line.

    echo "Octopuses have three hearts." | python3 publish.py [BASE_URL]

BASE_URL defaults to $FACTSTREAM_URL, else http://localhost:3000;
FACTSTREAM_TOKEN, when set, is sent as a bearer token. Standard library only.
"""

import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid


class Refused(Exception):
    """The service refused the request itself; retrying will not help."""


# docs snippet: publish
def publish(base, info, token=None, attempts=10):
    """Stores one fact and returns it, retrying failed connections and
    answers that say to retry (409, 429, 503) with the same Idempotency-Key,
    so that a retry whose first answer was lost stores nothing twice."""
    key = str(uuid.uuid4())
    body = json.dumps({"info": info}).encode("utf-8")
    for attempt in range(1, attempts + 1):
        delay = min(0.2 * 2**attempt, 5.0)
        req = urllib.request.Request(base.rstrip("/") + "/fact", data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Idempotency-Key", key)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            try:
                reason = f"{err.code} {json.load(err).get('detail')}"
            except ValueError:
                reason = f"{err.code} {err.reason}"
            if err.code not in (409, 429, 503):
                raise Refused(reason) from None
            delay = float(err.headers.get("Retry-After") or delay)
        except (OSError, http.client.HTTPException, ValueError) as err:
            reason = str(err) or type(err).__name__  # the connection failed
        if attempt < attempts:
            print(f"retrying in {delay:.1f} s: {reason}", file=sys.stderr, flush=True)
            time.sleep(delay)
    raise RuntimeError(f"gave up after {attempts} attempts: {reason}")
# docs snippet end


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FACTSTREAM_URL", "http://localhost:3000")
    token = os.environ.get("FACTSTREAM_TOKEN")
    for line in sys.stdin:
        if line.strip():
            fact = publish(base, line.rstrip("\n"), token)
            print(json.dumps(fact, ensure_ascii=False, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    try:
        main()
    except (Refused, RuntimeError) as err:
        sys.exit(f"publish: {err}")
