"""Local servers that speak the providers' billing APIs, Slack webhooks and Secret Manager.

The demo, the integration tests and the benchmarks run the real production code against these::

    from simulator import Simulator, SlackReceiver, SecretManagerFake

    with Simulator.start(clock="2026-11-28T18:00:00Z") as sim, SlackReceiver.start() as slack:
        env = {**sim.env(), "SLACK_WEBHOOK_URL": slack.hook_url}
        ...                                  # run a check against sim.url
        assert report.mtd_usd == sim.expected_mtd("openai/prod")

Standard library only, so it imports and starts fast. Binds to 127.0.0.1 only. See README.md here.
"""

from simulator.faults import PROVIDER_FAULT_MODES, SECRET_FAULT_MODES, SLACK_FAULT_MODES
from simulator.providers_server import Simulator
from simulator.scenario import Account, Scenario, ScenarioError
from simulator.secret_manager import SecretManagerFake, crc32c
from simulator.slack_receiver import SlackReceiver, render_terminal

__all__ = [
    "PROVIDER_FAULT_MODES",
    "SECRET_FAULT_MODES",
    "SLACK_FAULT_MODES",
    "Account",
    "Scenario",
    "ScenarioError",
    "SecretManagerFake",
    "Simulator",
    "SlackReceiver",
    "crc32c",
    "render_terminal",
]
