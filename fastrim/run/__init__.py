"""Running the pipeline over many logs: batch.py finds the logs and gathers
one row per log; an executor maps the pipeline over them (local.py: worker
processes on this machine); work.py is what runs in a worker; pool.py the
crash-tolerant process pool; progress.py the bar on a terminal."""
