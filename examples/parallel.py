"""A map task in worker processes: each item cached, retried and recorded on its own.

    python examples/parallel.py            # worker processes (one per core)
    python examples/parallel.py ray        # Ray actors on a local Ray

Run it twice: the second run hits every item. Change one seed and only that
item runs again.
"""

import random
import sys

import sterna
from sterna import Resources, map_task, task, workflow


@task(cache=True, retries=1, requests=Resources(cpu=1))
def simulate(seed: int, steps: int) -> float:
    """A random walk: pure CPU work, so items gain from running in parallel."""
    rng = random.Random(seed)
    position = 0.0
    for _ in range(steps):
        position += rng.uniform(-1.0, 1.0)
    return abs(position)


@task
def summarize(distances: list[float]) -> float:
    return sum(distances) / len(distances)


@workflow
def study(seeds: list[int], steps: int = 200_000) -> float:
    return summarize(distances=map_task(simulate)(seed=seeds, steps=steps))


if __name__ == "__main__":
    executor = sys.argv[1] if len(sys.argv) > 1 else "process"
    run = sterna.run(study, executor=executor, seeds=list(range(12)))
    items = [r for node_id, r in run.nodes.items() if node_id.startswith("map_simulate[")]
    hits = sum(r.cache_status == "hit" for r in items)
    print(f"mean distance {run.outputs:.1f} over {len(items)} walks "
          f"({hits} from the cache) in {run.duration:.2f} s on {executor}")
