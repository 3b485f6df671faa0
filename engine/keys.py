"""TensorDict keys of the rollout buffer, declared once (TorchRL's names).

The buffer has batch size [T, N] with dims named ("time", "env"): GAE runs along "time"
only, never across envs.
"""

OBS = "observation"
ACTION = "action"
LOG_PROB = "action_log_prob"
VALUE = "state_value"
REWARD = ("next", "reward")
TERMINATED = ("next", "terminated")
TRUNCATED = ("next", "truncated")
# V(s_{t+1}) computed from the *final* observation of a truncated episode (0 elsewhere):
# GAE adds gamma * this to the reward so a time limit is bootstrapped, not treated as death.
NEXT_VALUE_TRUNC = ("next", "truncated_value")
ADVANTAGE = "advantage"
VALUE_TARGET = "value_target"

BATCH_DIMS = ("time", "env")
