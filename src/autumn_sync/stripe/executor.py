"""Runs Stripe changes with bounded concurrency: a change starts once those it depends on
are done; the first failure stops new work, lets running requests finish, and is raised."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from graphlib import TopologicalSorter

from autumn_sync.plan.changes import Change
from autumn_sync.plan.order import dependency_graph
from autumn_sync.stripe.apply import APPLIERS, StripeWriter

# Enough requests in flight to fill a 100 req/s limit at Stripe's usual 250-300 ms a request
# (benchmarks/stripe_apply.py); past the limit the gateway backs off on 429s, and it keeps
# at most `StripeConfig.per_endpoint` requests to one endpoint in flight.
DEFAULT_WORKERS = 32


class StripeApplyFailed(Exception):
    """A Stripe change failed; `done` lists the changes that were carried out."""

    def __init__(self, change: Change, error: Exception, done: list[Change]) -> None:
        super().__init__(f"{change.address}: {error}")
        self.change = change
        self.error = error
        self.done = done


def run_stripe_changes(
    changes: Sequence[Change],
    writer: StripeWriter,
    workers: int = DEFAULT_WORKERS,
    on_done: Callable[[Change], None] | None = None,
) -> list[Change]:
    """Apply `changes` (all Stripe changes), dependencies first, `workers` at a time."""
    by_address = {c.address: c for c in changes}
    graph = dependency_graph(changes)
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for address, deps in graph.items():
        sorter.add(address, *(d for d in deps if d in by_address))
    sorter.prepare()
    done: list[Change] = []
    running: dict[Future[None], Change] = {}
    failure: tuple[Change, Exception] | None = None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while (sorter.is_active() and failure is None) or running:
            if failure is None:
                for address in sorter.get_ready():
                    change = by_address[address]
                    running[pool.submit(APPLIERS.apply, writer, change)] = change
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                change = running.pop(future)
                error = future.exception()
                if error is not None:
                    failure = failure or (change, error)  # type: ignore[assignment]
                    continue
                sorter.done(change.address)
                done.append(change)
                if on_done is not None:
                    on_done(change)
    if failure is not None:
        raise StripeApplyFailed(failure[0], failure[1], done)
    return done
