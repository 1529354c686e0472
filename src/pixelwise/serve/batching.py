"""Micro-batching: requests that arrive together share one forward pass in one inference thread.

Requests put a :class:`Job` on an asyncio queue.  One dispatcher task takes the first job, then
keeps collecting for ``batch_wait_ms`` (or until ``max_batch`` jobs), groups the jobs by (model,
image size) and hands each group to a single worker thread, which stacks the images into one
``N x C x H x W`` batch.  Only that thread runs the network, so torch's intra-op thread pool (sized
once at startup) is never shared by concurrent requests -- no oversubscription.  Images above
``whole_image_pixels`` go one at a time through the sliding-window :class:`Predictor` (bounded
memory).  At most ``max_queue`` images wait or run; more get 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from .adapter import ServedModel
from .limits import Limits, ServeError
from .render import renderer_for


@dataclass
class Job:
    """One image waiting for inference (``image``: uint8 ``3 x H x W``)."""

    model: ServedModel
    image: torch.Tensor
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)
    #: inputs besides colour (``depth`` / ``hha`` of the same H x W), for models that take them
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Outcome:
    """Per-image result: ``results`` maps head name -> its renderer's reduced output."""

    results: dict[str, torch.Tensor]
    queue_s: float
    inference_s: float
    batch_size: int
    path: str  # "batched" (whole-image forward) or "sliding" (windows)


class Batcher:
    """Owns the queue, the dispatcher task and the single inference thread."""

    def __init__(self, limits: Limits, device: torch.device) -> None:
        self.limits, self.device = limits, device
        self.pending = 0  # images queued or running
        self.batches = 0
        self._queue: asyncio.Queue[Job] | None = None
        self._task: asyncio.Task | None = None
        self._worker: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixelwise-infer")
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._dispatch(), name="pixelwise-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(ServeError(503, "server is shutting down"))
        if self._worker is not None:
            self._worker.shutdown(wait=True)

    async def submit(self, model: ServedModel, image: torch.Tensor, extra: dict | None = None) -> Outcome:
        """Queue one image and wait for its outcome (503 when full, 504 after ``timeout_s``)."""
        if not self.running or self._queue is None:
            raise ServeError(503, "server is not ready yet", {"Retry-After": "1"})
        if self.pending >= self.limits.max_queue:
            raise ServeError(
                503,
                f"server busy: {self.pending} images queued (--max-queue {self.limits.max_queue}); retry later",
                {"Retry-After": "1"},
            )
        job = Job(model, image, asyncio.get_running_loop().create_future(), extra=dict(extra or {}))
        self.pending += 1
        try:
            self._queue.put_nowait(job)
            return await asyncio.wait_for(asyncio.shield(job.future), self.limits.timeout_s)
        except asyncio.TimeoutError:
            raise ServeError(504, f"inference did not finish within {self.limits.timeout_s:g} s (--timeout)") from None
        finally:
            self.pending -= 1
            if not job.future.done():  # timed out or client gone: skipped if still queued
                job.future.cancel()

    async def _collect(self) -> list[Job]:
        """The first job, then whatever arrives within ``batch_wait_ms`` (up to ``max_batch``)."""
        assert self._queue is not None
        jobs = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.batch_wait_ms / 1000
        while len(jobs) < self.limits.max_batch:
            if not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return jobs

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [j for j in await self._collect() if not j.future.done()]  # timed-out jobs are skipped
            groups: dict[tuple, list[Job]] = {}
            for job in jobs:
                groups.setdefault((job.model.name, tuple(job.image.shape)), []).append(job)
            for group in groups.values():
                h, w = group[0].image.shape[-2:]
                chunks = [group] if h * w <= self.limits.whole_image_pixels else [[j] for j in group]
                for chunk in chunks:
                    try:
                        outcomes = await loop.run_in_executor(self._worker, self._run, chunk)
                    except Exception as e:  # noqa: BLE001 -- delivered to the waiting requests
                        outcomes = [e] * len(chunk)
                    self.batches += 1
                    for job, outcome in zip(chunk, outcomes, strict=False):
                        if job.future.done():
                            continue
                        if isinstance(outcome, BaseException):
                            job.future.set_exception(outcome)
                        else:
                            job.future.set_result(outcome)

    def _run(self, jobs: list[Job]) -> list[Outcome]:
        """In the inference thread: one forward for same-size images, or the sliding window."""
        start = time.perf_counter()
        served = jobs[0].model
        h, w = jobs[0].image.shape[-2:]
        if h * w <= self.limits.whole_image_pixels:
            results = self._forward_batch(served, [{"image": j.image, **j.extra} for j in jobs])
            path = "batched"
        else:
            results = [self._sliding(served, {"image": jobs[0].image, **jobs[0].extra})]
            path = "sliding"
        took = time.perf_counter() - start
        return [Outcome(r, start - j.enqueued, took, len(jobs), path) for j, r in zip(jobs, results, strict=False)]

    @torch.no_grad()
    def _forward_batch(
        self, served: ServedModel, samples: list[dict[str, torch.Tensor]]
    ) -> list[dict[str, torch.Tensor]]:
        """Same-size samples (``image`` and any depth inputs) -> per sample, each head's reduced output."""
        from ..engine.forward import averaged_logits

        model = served.model
        x = model.preprocessing.apply({k: torch.stack([s[k] for s in samples]) for k in samples[0]})
        out = averaged_logits(model, x, dict(model.heads), self.device, flip=served.flip, scales=served.scales)
        per_head = {head.name: renderer_for(head).reduce(out[head.name]) for head in served.heads}
        return [{name: r[i] for name, r in per_head.items()} for i in range(len(samples))]

    def _sliding(self, served: ServedModel, sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Large image: windows of ``tile`` (labels only: the Predictor reduces to class indices)."""
        from ..engine.predict import Options, Predictor

        for head in served.heads:
            if head.kind != "semantic":
                raise ServeError(
                    413,
                    f"images over {self.limits.whole_image_pixels} pixels are only supported for "
                    f"semantic heads; head '{head.name}' is {head.kind}",
                )
        tile = self.limits.tile
        opts = Options(tile=tile, overlap=min(128, tile // 4), flip=served.flip, scales=served.scales)
        return Predictor(served.model, self.device, opts).predict(sample)
