from meadow_runtime.migrations import run_env

run_env(None)
