"""From checkpoint to trading: a trained FX agent on new bars, exported policies and paper trading.

* :mod:`envs.fx.live.agent`: :class:`Agent` loads from a checkpoint alone (no training data, no
  config file) and answers ``act(history, account)``; :class:`StreamingAgent` is fed one closed
  bar at a time (``on_bar(bar) -> Decision``) and decides exactly as the backtest does.
* :mod:`envs.fx.live.export` / :mod:`envs.fx.live.artifact`: write / run one ONNX or
  ``torch.export`` file holding the feature normalisation, the policy and the mapping to a
  target position (``python -m engine.export``).
* :mod:`envs.fx.live.broker`, :mod:`envs.fx.live.journal`, :mod:`envs.fx.live.feed`,
  :mod:`envs.fx.live.paper`: the broker interface (the shape of a REST broker such as OANDA v20)
  with a simulated broker, the write-ahead SQLite journal, bar feeds (a file or stdin lines) and
  the crash-safe paper-trading loop (``python -m engine.paper``).
* :mod:`envs.fx.live.latency`: per-decision latency (``python -m engine.bench latency``).

This package sits beside :mod:`envs.fx.research`: it may import the engine core and the simulator.
"""

from envs.fx.live.agent import AccountState, Agent, Bar, Decision, StreamingAgent

__all__ = ["AccountState", "Agent", "Bar", "Decision", "StreamingAgent"]
