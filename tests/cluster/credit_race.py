"""One process of the credit race: THREADS threads each send REQUESTS speech requests of TEXT through the
Serve proxy at URL with the key in `VOICEWIRE_TEST_KEY`, all released at once; prints the answers
counted by status as JSON.

Run as a separate process (tests/cluster/test_ray_serve.py starts two), so the charges come from
several client processes through both replicas at the same time."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter

import httpx


def main(url: str, threads: int, requests: int, text: str) -> None:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120, headers={"x-api-key": os.environ["VOICEWIRE_TEST_KEY"]}) as client:
            start.wait()
            for _ in range(requests):
                status = client.post("/v1/chatterbox-tts", json={"text": text, "output_format": "pcm"}).status_code
                with lock:
                    statuses[status] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps({str(status): count for status, count in statuses.items()}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
