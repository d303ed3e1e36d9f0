from content.models import metadata
from meadow_runtime.migrations import run_env

run_env(metadata)
