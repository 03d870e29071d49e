"""Startup of the SIP Server stub: its internal components, and the backup
initialization check as an explicit state machine.

The check (``backup-init-check``) runs only for a backup.  It ends in exactly one
verdict, reported as soon as it is certain: ``RUNNING`` once every component has
initialized, ``SERVICE_UNAVAILABLE`` as soon as one fails, when
``backup-init-check-timeout`` runs out first, or when the SIP port cannot be
opened.  The verdict is final until the next start (see ``docs/sipserver-stub.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from automat import TypeMachineBuilder
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from lca_common.protocol.messages import ApplicationStatus
from sipserver_stub.fixture import Component, ComponentPlan, ComponentResult

Verdict = Callable[[ApplicationStatus, str], None]
"""Called once with the check's outcome and a one-line reason."""


class ComponentStartup:
    """Initializes the four internal components as their plans say, on the clock.

    A component with ``after: 0`` ends during :meth:`start`; ``hang`` never ends.
    """

    def __init__(
        self,
        clock: IReactorTime,
        plans: Mapping[Component, ComponentPlan],
        on_completed: Callable[[Component], None],
        on_failed: Callable[[Component], None],
    ) -> None:
        self.clock = clock
        self.plans = plans
        self.on_completed = on_completed
        self.on_failed = on_failed
        self._timers: list[IDelayedCall] = []

    def start(
        self, elapsed: float = 0.0, deadline: tuple[float, Callable[[], None]] | None = None
    ) -> None:
        """Begin every component's initialization, in the documented order.

        ``elapsed``: seconds already past since the start was asked for (a process that
        took a while to come up); delays count from then, and those already over end
        now, in the order they would have.  ``deadline``: ``(seconds, call)``, another
        delay counted from the same instant (the backup check's timeout); when it too
        is already over, ``call`` runs in that same order, after the components due at
        the same instant (a component done exactly at the timeout is in time).  One
        not yet over is left to its owner's timer.
        """
        due: list[tuple[float, int, Callable[[], None]]] = []
        for component in Component:
            plan = self.plans[component]
            if plan.result is ComponentResult.HANG:
                continue
            remaining = plan.after - elapsed
            if plan.after <= 0 or remaining <= 0:
                due.append((plan.after, 0, partial(self._end, component)))
            else:
                self._timers.append(self.clock.callLater(remaining, self._end, component))
        if deadline is not None and deadline[0] <= elapsed:
            due.append((deadline[0], 1, deadline[1]))
        for _, _, end in sorted(due, key=lambda item: item[:2]):
            end()

    def _end(self, component: Component) -> None:
        if self.plans[component].result is ComponentResult.OK:
            self.on_completed(component)
        else:
            self.on_failed(component)

    def stop(self) -> None:
        """Cancel every initialization still under way."""
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()


class CheckInputs(Protocol):
    """What can happen to a backup initialization check."""

    def begin(self) -> None:
        """The backup started; the timeout starts now."""

    def component_completed(self, component: Component) -> None:
        """One component finished initializing."""

    def all_completed(self) -> None:
        """The last pending component finished initializing."""

    def component_failed(self, component: Component) -> None:
        """One component failed to initialize."""

    def port_unavailable(self, reason: str) -> None:
        """The SIP port could not be opened."""

    def timed_out(self) -> None:
        """``backup-init-check-timeout`` ran out."""

    def abandon(self) -> None:
        """The check no longer matters (promoted to primary, or stopping)."""


@dataclass
class CheckCore:
    """What the check works with: the clock, the timeout, and where the verdict goes."""

    clock: IReactorTime
    timeout: float
    verdict: Verdict
    pending: set[Component] = field(default_factory=lambda: set(Component))
    elapsed: float = 0.0
    """Seconds of the timeout already past when the check begins (see ``ComponentStartup``)."""


@dataclass
class Checking:
    """Data of the ``checking`` state: the timeout timer lives and dies with it."""

    timer: IDelayedCall | None = None

    def cancel(self) -> None:
        """Stop the timer, whichever of its two steps is pending."""
        if self.timer is not None and self.timer.active():
            self.timer.cancel()


def _start_timer(inputs: CheckInputs, core: CheckCore) -> Checking:
    data = Checking()

    def deadline() -> None:
        # A component that completes exactly at the timeout is in time: time out only
        # after everything else due at this same instant has run.
        data.timer = core.clock.callLater(0, inputs.timed_out)

    # Begun after its timeout (a late process), the check times out at once, unless
    # whoever catches up the components has timed it out already, in the order the
    # delays would have ended (``ComponentStartup.start``'s ``deadline``).
    data.timer = core.clock.callLater(max(0.0, core.timeout - core.elapsed), deadline)
    return data


builder = TypeMachineBuilder(CheckInputs, CheckCore)
idle = builder.state("idle")
checking = builder.state("checking", _start_timer)
passed = builder.state("passed")
failed = builder.state("failed")
abandoned = builder.state("abandoned")


@idle.upon(CheckInputs.begin).to(checking)
def _begin(inputs: CheckInputs, core: CheckCore) -> None:
    pass


@idle.upon(CheckInputs.abandon).to(abandoned)
def _abandon_before(inputs: CheckInputs, core: CheckCore) -> None:
    pass


@checking.upon(CheckInputs.component_completed).loop()
def _completed(inputs: CheckInputs, core: CheckCore, data: Checking, component: Component) -> None:
    core.pending.discard(component)
    if not core.pending:
        inputs.all_completed()  # queued by Automat: runs after this transition


@checking.upon(CheckInputs.all_completed).to(passed)
def _passed(inputs: CheckInputs, core: CheckCore, data: Checking) -> None:
    data.cancel()
    core.verdict(ApplicationStatus.RUNNING, "all internal components initialized")


@checking.upon(CheckInputs.component_failed).to(failed)
def _failed(inputs: CheckInputs, core: CheckCore, data: Checking, component: Component) -> None:
    data.cancel()
    core.verdict(ApplicationStatus.SERVICE_UNAVAILABLE, f"{component.label} failed to initialize")


@checking.upon(CheckInputs.port_unavailable).to(failed)
def _port(inputs: CheckInputs, core: CheckCore, data: Checking, reason: str) -> None:
    data.cancel()
    core.verdict(ApplicationStatus.SERVICE_UNAVAILABLE, f"SIP port check failed: {reason}")


@checking.upon(CheckInputs.timed_out).to(failed)
def _timed_out(inputs: CheckInputs, core: CheckCore, data: Checking) -> None:
    names = ", ".join(c.label for c in Component if c in core.pending)
    core.verdict(
        ApplicationStatus.SERVICE_UNAVAILABLE,
        f"not initialized within backup-init-check-timeout ({core.timeout:g} s): {names}",
    )


@checking.upon(CheckInputs.abandon).to(abandoned)
def _abandon(inputs: CheckInputs, core: CheckCore, data: Checking) -> None:
    data.cancel()


# Once decided, late outcomes change nothing: the verdict holds until restart.
for _state in (passed, failed, abandoned):
    for _input in (
        CheckInputs.component_completed,
        CheckInputs.component_failed,
    ):
        _state.upon(_input).loop().returns(None)
    _state.upon(CheckInputs.port_unavailable).loop().returns(None)
    _state.upon(CheckInputs.timed_out).loop().returns(None)
    _state.upon(CheckInputs.abandon).loop().returns(None)
for _input in (CheckInputs.component_completed, CheckInputs.component_failed):
    idle.upon(_input).loop().returns(None)

BackupInitCheck = builder.build()
"""Build one check with ``BackupInitCheck(CheckCore(clock, timeout, verdict))``."""
