from meadow_runtime.migrations import run_env
from rewards.models import metadata

run_env(metadata)
