from meadow_runtime.migrations import run_env
from membership.models import metadata

run_env(metadata)
