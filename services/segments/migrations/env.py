from meadow_runtime.migrations import run_env
from segments.models import metadata

run_env(metadata)
