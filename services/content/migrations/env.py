from meadow_runtime.migrations import run_env
from content.models import metadata

run_env(metadata)
