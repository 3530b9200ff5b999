import random
import time

import requests


def get_with_retries(url: str, attempts: int = 5, base: float = 0.5) -> requests.Response:
    """GET that waits longer after each failure (0.5 s, 1 s, 2 s ... plus jitter) before giving up."""
    for attempt in range(attempts):
        try:
            response = requests.get(url, timeout=10)
            if response.status_code < 500:
                return response
        except requests.ConnectionError:
            pass
        time.sleep(base * 2**attempt + random.uniform(0, base))
    raise RuntimeError(f"{url} still failing after {attempts} attempts")
