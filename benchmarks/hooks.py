"""What unused hooks cost per training step: all of a step's, called as the loop calls them.

Renders a default project, resolves its ``engine.hooks.Hooks`` for a module, a
DataModule and a callback that override nothing, and times one step's worth of
hook calls (the ones ``_train_epoch`` and ``AutomaticOptimization`` make per batch: batch
start/end, zero-grad, backward and optimizer-step hooks), spelled as the loop spells
them, against an empty loop.

    python benchmarks/hooks.py        # prints ns per step; the issue asks < 1 µs
"""

from __future__ import annotations

import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = 200_000

# The hooks a training step calls that do nothing unless overridden.
PER_STEP = (
    ("on_train_batch_start", 2),
    ("on_before_zero_grad", 1),
    ("on_before_backward", 1),
    ("on_after_backward", 1),
    ("on_before_optimizer_step", 1),
    ("on_train_batch_end", 3),
)


def per_step_ns(src: Path, package: str) -> tuple[float, float]:
    """(ns per step for the unused hooks, ns per step for an empty loop)."""
    sys.path.insert(0, str(src))
    engine = __import__(f"{package}.engine.hooks", fromlist=["Hooks"])
    module_file = __import__(f"{package}.engine.module", fromlist=["Module"])
    trainer_file = __import__(f"{package}.engine.trainer", fromlist=["Trainer"])

    class Nothing(module_file.Module):
        pass

    class Silent:  # a callback with no hook of a training step
        def on_fit_start(self, trainer, module) -> None:
            pass

    trainer = trainer_file.Trainer(enable_progress_bar=False)
    hooks = engine.Hooks(trainer, Nothing(), module_file.DataModule(), [Silent()])
    calls = [(getattr(hooks, name), (None,) * arity) for name, arity in PER_STEP]
    assert all(call is engine.nothing for call, _ in calls), "a hook resolved to something"
    assert not hooks.transfers  # no transfer hook: the loop moves batches itself

    # As the loop calls them: the batch hooks with one call each; inside the
    # optimizer step (AutomaticOptimization) an identity check instead.
    b = c = None
    h, nothing = hooks, engine.nothing

    def spelled() -> None:
        h.on_train_batch_start(b, c)
        if h.on_before_zero_grad is not nothing:
            h.on_before_zero_grad(b)
        if h.on_before_backward is not nothing:
            h.on_before_backward(b)
        if h.on_after_backward is not nothing:
            h.on_after_backward()
        if h.on_before_optimizer_step is not nothing:
            h.on_before_optimizer_step(b)
        h.on_train_batch_end(b, b, c)

    def empty() -> None:
        pass

    best = min(timeit.repeat(spelled, number=STEPS, repeat=5)) / STEPS * 1e9
    base = min(timeit.repeat(empty, number=STEPS, repeat=5)) / STEPS * 1e9
    return best - base, base


def main() -> None:
    """Render a default project and print the cost."""
    sys.path.insert(0, str(ROOT))
    from scaffold.new import create

    with tempfile.TemporaryDirectory() as tmp:
        project = create(Path(tmp) / "bench-hooks", data={}, defaults=True, use_git=False).path
        cost, base = per_step_ns(project / "src", "bench_hooks")
    print(
        f"unused hooks: {cost:.0f} ns per training step ({len(PER_STEP)} hooks; "
        f"an empty call loop costs {base:.0f} ns and is subtracted)"
    )


if __name__ == "__main__":
    main()
