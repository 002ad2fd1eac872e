"""parallel_run (Azure ML's ParallelRunStep): an entry script's ``init()`` once per worker process
and ``run(mini_batch)`` over mini-batches of files, on local processes or on a Dask cluster.

``driver`` is the step's process; ``local_pool`` and ``dask_pool`` run the mini-batches;
``worker`` is the (standard-library-only) worker process; ``spec`` is what the step module hands
the driver.
"""
